"""Built-in datasets plugins: importing this package registers them."""

from recux.plugins.datasets import files, movielens, obd, synthetic  # noqa: F401
