"""int8 post-training quantisation of a serving module.

- nn.Linear layers (SASRec's attention and feed-forward): torch dynamic quantisation
  (``torch.ao.quantization.quantize_dynamic``, per-output-channel symmetric qint8 weights): the scores are
  computed by int8 GEMMs (fbgemm) with each input quantised on the fly (uint8, per tensor, 7-bit range).
- nn.Embedding tables (BPR's user/item tables, LightGCN's final embeddings, SASRec's token and position
  embeddings): per-row symmetric int8 (``recux.compression.int8_rows``); stored as int8 + one float32 scale per
  row, and scored from the dequantised float32 values (q * scale), computed once when compressing.
- Everything else (biases, layer norms) stays float32.
"""

from __future__ import annotations

from typing import Any

from recux.compression import Compressor, weight_modules
from recux.registry import register
from recux.tensor_codecs import decode, dense, int8_of_quantized, int8_rows


@register("compress", "int8")
class Int8(Compressor):
    """int8: dynamic quantisation of Linear layers and per-row int8 embedding tables."""

    name = "int8"

    def compress(self, module: Any) -> dict[str, dict[str, Any]]:
        import torch
        from torch import nn
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        encoded: dict[str, dict[str, Any]] = {}
        for name, m in weight_modules(module):
            if isinstance(m, nn.Embedding):
                enc = int8_rows(m.weight)
                with torch.no_grad():
                    m.weight.copy_(decode(enc))
                encoded[f"{name}.weight"] = enc
        if any(isinstance(m, nn.Linear) for _, m in weight_modules(module)):
            quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
            for name, m in module.named_modules():
                if isinstance(m, torch.ao.nn.quantized.dynamic.Linear):
                    encoded[f"{name}.weight"] = int8_of_quantized(m.weight())
                    if m.bias() is not None:
                        encoded[f"{name}.bias"] = dense(m.bias())
        return encoded
