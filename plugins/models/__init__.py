"""Built-in models plugins."""

from plugins.models import bert4rec, bpr, ease, ials, itemknn, lightgcn, multvae, popularity, random, sasrec  # noqa: F401
