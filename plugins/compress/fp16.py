"""float16 storage of a serving module: every floating-point parameter (embedding tables, Linear weights and
biases, layer norms) is stored as IEEE half precision; scores are computed in float32 from the fp16-rounded
values (upcast once when compressing), so only the storage and the rounding change, not the arithmetic."""

from __future__ import annotations

from typing import Any

from recux.compression import Compressor
from recux.registry import register
from recux.tensor_codecs import decode, fp16


@register("compress", "fp16")
class Float16(Compressor):
    """float16: parameters stored in half precision, scored in float32."""

    name = "fp16"

    def compress(self, module: Any) -> dict[str, dict[str, Any]]:
        import torch

        encoded = {}
        for name, p in module.named_parameters():
            if p.is_floating_point():
                enc = fp16(p)
                with torch.no_grad():
                    p.copy_(decode(enc))
                encoded[name] = enc
        return encoded
