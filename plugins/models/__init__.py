"""Built-in models plugins."""

from plugins.models import bpr, ease, ials, itemknn, multvae, popularity, random  # noqa: F401
