"""Built-in metrics plugins: top-k accuracy and beyond-accuracy (coverage, popularity, Gini, novelty)."""

from recux.plugins.metrics import accuracy, beyond, diversity  # noqa: F401  (importing registers the plugins)
