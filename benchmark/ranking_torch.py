"""Top-k of a torch score block on its own device (a GPU), with the tie rule of ``recux.ranking``: higher score
first, among equal scores the lower item code; -inf and NaN scores are ineligible and pad the tail with item -1
(score -inf). Only the (rows x k) int32 items and float32 scores are copied to the host.

How the tie rule is kept with ``torch.topk`` (whose order among equal values is unspecified):
  1. ``torch.topk`` gives each row's k-th largest value v_k. When exactly k scores are >= v_k, the top-k *set*
     is those items whatever the tie rule (a row with more, i.e. a tie across the cut, or with ineligible
     scores among its first k, is redone by a stable descending sort, which keeps equal scores in item order).
  2. Within the set, sorting by item code and then stably by score (descending) gives the rule's order.
torch is imported by callers only (this module is loaded when a block is ranked on the device).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch


def mask_on_device(block: torch.Tensor, exclude: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set block[b, j] = -inf for every item j of exclude[rows[b]] (in place; index pairs sent once)."""
    from recux.ranking import excluded_pairs

    r, idx = excluded_pairs(exclude, rows)
    if len(r):
        dev = block.device
        block[torch.from_numpy(r).to(dev), torch.from_numpy(idx.astype(np.int64)).to(dev)] = float("-inf")


def topk_rows(block: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(items int64, scores float32) of each row's top k on the block's device, by the tie rule; -1 / -inf
    pad rows with fewer than k eligible scores. ``block`` is float32 with NaN already replaced by -inf."""
    n, n_cols = block.shape
    width = min(k, n_cols)
    vals, idx = torch.topk(block, width, dim=1, largest=True, sorted=True)
    if width:
        kth = vals[:, -1:]
        redo = ((block >= kth).sum(dim=1) > width) | torch.isneginf(kth[:, 0])
        if bool(redo.any()):  # a tie across the cut (or padding): the stable sort keeps equal scores by item
            rows = torch.nonzero(redo).squeeze(1)
            s, i = torch.sort(block[rows], dim=1, descending=True, stable=True)
            vals[rows], idx[rows] = s[:, :width], i[:, :width]
        order = torch.argsort(idx, dim=1)  # item order, then a stable sort by score: the tie rule
        idx, vals = idx.gather(1, order), vals.gather(1, order)
        order = torch.sort(vals, dim=1, descending=True, stable=True).indices
        idx, vals = idx.gather(1, order), vals.gather(1, order)
    idx = torch.where(torch.isneginf(vals), torch.full_like(idx, -1), idx)
    if width < k:
        idx = torch.cat([idx, idx.new_full((n, k - width), -1)], dim=1)
        vals = torch.cat([vals, vals.new_full((n, k - width), float("-inf"))], dim=1)
    return idx, vals


def device_topk(block: Any, k: int, exclude: sp.csr_matrix | None, rows: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """The top k of a torch score block on its device (``exclude[rows[b]]`` masked for row b), returned to
    the host as (int32 items, float32 scores), like ``recux.ranking.topk_from_scores``."""
    with torch.no_grad():
        # float32 first, as the host path does (float64 scores that round equal tie there too); a private
        # copy, since masking writes into it and the model may hand out a view of its own state
        scores = block.detach().to(torch.float32, copy=True)
        scores = scores.masked_fill_(torch.isnan(scores), float("-inf"))
        if exclude is not None:
            mask_on_device(scores, exclude, rows)
        idx, vals = topk_rows(scores, k)
        return idx.to(torch.int32).cpu().numpy(), vals.cpu().numpy()
