"""Built-in metrics plugins: top-k accuracy, beyond-accuracy (coverage, popularity, Gini, novelty), and
popularity bias / long tail / personalisation / item-side exposure (exposure), list content: diversity,
unexpectedness, serendipity, calibration (diversity)."""

from recux.plugins.metrics import accuracy, beyond, diversity, exposure, judged  # noqa: F401  (importing registers the plugins)
