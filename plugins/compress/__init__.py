"""Built-in compress plugins: post-training compression of a fitted model's serving module (recux.compression)."""

from recux.plugins.compress import fp16, int8, none, prune  # noqa: F401
