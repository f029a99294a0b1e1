"""Built-in text encoder plugins."""

from recux.plugins.encoders import hf  # noqa: F401
