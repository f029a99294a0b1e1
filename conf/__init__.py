"""recux's Hydra configs, shipped as package data and read by Hydra as ``pkg://recux.conf``."""
