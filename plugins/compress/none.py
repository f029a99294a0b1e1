"""No compression: the fitted model is ranked as it is (the default)."""

from __future__ import annotations

from recux.compression import Compressor
from recux.registry import register


@register("compress", "none")
class NoCompression(Compressor):
    """Rank with the fitted model as it is (the stage returns it untouched; results unchanged)."""

    name = "none"

    def compress(self, module):
        return {}
