"""Built-in finetune plugins."""

from recux.plugins.finetune import scratch  # noqa: F401
