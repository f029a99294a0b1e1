"""Built-in metrics plugins: top-k accuracy, beyond-accuracy (coverage, popularity, Gini, novelty), and
popularity bias / long tail / personalisation / item-side exposure (exposure)."""

from recux.plugins.metrics import accuracy, beyond, exposure  # noqa: F401  (importing registers the plugins)
