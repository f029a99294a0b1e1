"""Built-in task plugins (kinds of experiment)."""

from recux.plugins.tasks import (  # noqa: F401
    ab_test,
    cold_start,
    continual,
    judge,
    offline_ranking,
    ope,
    replay,
    robustness,
)
