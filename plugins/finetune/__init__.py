"""Built-in finetune plugins."""

from plugins.finetune import scratch  # noqa: F401
