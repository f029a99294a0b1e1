"""Built-in models plugins."""

from plugins.models import bpr, itemknn, popularity, random  # noqa: F401
