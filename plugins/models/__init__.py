"""Built-in models plugins."""

from recux.plugins.models import (  # noqa: F401
    bert4rec,
    bpr,
    content,
    ease,
    hybrid,
    ials,
    itemknn,
    lightgcn,
    lm_sasrec,
    multvae,
    popularity,
    random,
    sasrec,
    two_tower,
)
