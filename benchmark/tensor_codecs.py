"""Compact encodings of the tensors of a compressed model (recux.compression); ``decode`` inverts each.

- ``int8``: per-row symmetric quantisation, q = round(w / s) in [-127, 127] with s = max_j |w_j| / 127 per row.
- ``sparse``: a bit mask of the non-zeros (packed, 1 bit per element) and their float32 values; used when it is
  smaller than the dense tensor (sparsity above 1/32).
- ``fp16``: IEEE half precision.
- ``dense``: the tensor as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def int8_rows(w: Any) -> dict[str, Any]:
    """Per-row symmetric int8: scale s_r = max_j |w_rj| / 127 (1 for an all-zero row), q = round(w / s)."""
    import torch

    w2 = w.detach().float().reshape(w.shape[0], -1)
    top = w2.abs().amax(dim=1)
    scale = torch.where(top > 0, top / 127.0, torch.ones_like(top))
    q = torch.round(w2 / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return {"kind": "int8", "q": q.reshape(w.shape), "scale": scale.float()}


def int8_of_quantized(qweight: Any) -> dict[str, Any]:
    """The int8 encoding of a per-channel symmetric torch quantised weight (zero points must be 0)."""
    import torch

    zeros = qweight.q_per_channel_zero_points()
    if bool((zeros != 0).any()):
        raise ValueError("int8_of_quantized: the weight is not symmetric (non-zero zero points)")
    return {"kind": "int8", "q": qweight.int_repr().to(torch.int8), "scale": qweight.q_per_channel_scales().float()}


def magnitude_prune(w: Any, sparsity: float) -> Any:
    """``w`` with its round(sparsity * numel) smallest-magnitude entries set to zero (ties: lower flat index
    first), so the fraction of zeros is exactly that count over numel (plus any zeros outside it)."""
    import torch

    flat = w.detach().reshape(-1)
    k = int(round(float(sparsity) * flat.numel()))
    out = flat.clone()
    if k:
        order = torch.argsort(flat.abs(), stable=True)
        out[order[:k]] = 0
    return out.reshape(w.shape)


def sparse_or_dense(w: Any) -> dict[str, Any]:
    """A bit-mask + values encoding when it takes fewer bytes than the dense tensor, else dense."""
    import torch

    t = w.detach().float().contiguous()
    nz = (t != 0).reshape(-1)
    values = t.reshape(-1)[nz]
    mask = np.packbits(nz.numpy())
    if mask.nbytes + values.numel() * 4 >= t.numel() * 4:
        return {"kind": "dense", "value": t}
    return {"kind": "sparse", "mask": torch.from_numpy(mask), "values": values, "shape": list(t.shape)}


def fp16(w: Any) -> dict[str, Any]:
    import torch

    return {"kind": "fp16", "value": w.detach().to(torch.float16)}


def dense(w: Any) -> dict[str, Any]:
    return {"kind": "dense", "value": w.detach()}


def decode(enc: Mapping[str, Any]) -> Any:
    """The float32 tensor (dense: as stored) an encoding stands for."""
    import torch

    kind = enc["kind"]
    if kind == "int8":
        q = enc["q"].float()
        return (q.reshape(q.shape[0], -1) * enc["scale"][:, None]).reshape(q.shape)
    if kind == "sparse":
        n = int(np.prod(enc["shape"]))
        nz = torch.from_numpy(np.unpackbits(enc["mask"].numpy(), count=n).astype(bool))
        out = torch.zeros(n, dtype=torch.float32)
        out[nz] = enc["values"]
        return out.reshape(enc["shape"])
    if kind == "fp16":
        return enc["value"].float()
    if kind == "dense":
        return enc["value"]
    raise ValueError(f"unknown encoding {kind!r}")


def stored_elements(enc: Mapping[str, Any]) -> int:
    """Numbers an encoding stores as model parameters (a sparse tensor: its non-zeros)."""
    if enc["kind"] == "int8":
        return int(enc["q"].numel())
    if enc["kind"] == "sparse":
        return int(enc["values"].numel())
    return int(enc["value"].numel())
