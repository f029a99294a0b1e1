"""recux: measure how users would experience a recommender, not only its accuracy."""

__version__ = "0.1.0"
