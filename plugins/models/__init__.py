"""Built-in models plugins."""

from recux.plugins.models import (  # noqa: F401
    bert4rec,
    bpr,
    ease,
    ials,
    itemknn,
    lightgcn,
    lm_sasrec,
    multvae,
    popularity,
    random,
    sasrec,
)
