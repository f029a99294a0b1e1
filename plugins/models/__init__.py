"""Built-in models plugins."""

from plugins.models import bpr, ease, ials, itemknn, lightgcn, multvae, popularity, random  # noqa: F401
