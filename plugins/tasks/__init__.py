"""Built-in task plugins (kinds of experiment)."""

from recux.plugins.tasks import continual, offline_ranking  # noqa: F401
