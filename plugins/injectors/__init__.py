"""Built-in injector plugins: perturbations of the training data (noise, sparsity, shilling attacks)."""

from recux.plugins.injectors import noise, shilling, sparsity  # noqa: F401
