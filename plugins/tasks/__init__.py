"""Built-in task plugins (kinds of experiment)."""

from recux.plugins.tasks import (
    cold_start,  # noqa: F401
    offline_ranking,  # noqa: F401
)
