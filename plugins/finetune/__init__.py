"""Built-in finetune plugins."""

from recux.plugins.finetune import adalora, frozen, full, lora, scratch  # noqa: F401
