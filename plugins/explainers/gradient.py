"""Gradient x input for the transformer sequence models (SASRec, LM-SASRec, BERT4Rec): the weight of the history
item at position t of the sequence the model reads (its last max_len items) for recommended item i is

    a_t = x_t . d s(u, i) / d x_t,

x_t the input item vector at t (SASRec/BERT4Rec: the item's ID embedding; LM-SASRec: its projected text vector
plus ID embedding; the position embedding, dropout-free eval mode and the output item vectors are held fixed),
s(u, i) the item's logit. An item read at several positions gets the sum of its a_t. Gradient x input is the
first-order Taylor term of s at x (Shrikumar, Greenside, Shcherbina and Kundaje 2016, "Not Just a Black Box:
Learning Important Features Through Propagating Activation Differences", arXiv:1605.01713; Ancona, Ceolini,
Oztireli and Gross 2018, "Towards better understanding of gradient-based attribution methods for Deep Neural
Networks", ICLR). Unlike last-layer attention weights, which need not track what changes the output (Jain and
Wallace 2019, "Attention is not Explanation", NAACL), it measures the score's sensitivity directly; the
deletion test says how faithful it is here. Items older than the model's window get no weight (it does not read
them). torch is imported only when explaining."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recux.explain import Attribution, Explainer
from recux.registry import register


@register("explainer", "gradient", models=("sasrec", "lm_sasrec", "bert4rec"))
class GradientXInput(Explainer):
    """Gradient x input: x_t . ds(u,i)/dx_t over the input item vectors of the sequence the model reads."""

    def explain(self, model: Any, users: np.ndarray, histories: Sequence[np.ndarray],
                items: np.ndarray) -> list[Attribution]:
        rows = model.sequence_rows(histories)  # (n_users, L) tokens: item code + 1, 0 padding (+ a mask token)
        per_position = position_attributions(model.net, rows, items)  # (n_users, n, L)
        real = (rows >= 1) & (rows <= model.n_items)
        out = []
        for r in range(len(rows)):
            tokens = rows[r][real[r]]
            cand, inverse = np.unique(tokens - 1, return_inverse=True)
            w = np.zeros((items.shape[1], len(cand)))
            np.add.at(w.T, inverse, per_position[r][:, real[r]].T)
            out.append(Attribution(cand, w * (items[r] >= 0)[:, None]))
        return out


def position_attributions(net: Any, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(n_users, n, L) x_t . ds/dx_t for each user row and each of its items (-1 items: 0), in eval mode."""
    import torch

    device = net.seqs.device
    n_users, n = items.shape
    seqs = torch.as_tensor(np.repeat(rows, n, axis=0), dtype=torch.long, device=device)  # row per (user, item)
    targets = torch.as_tensor(np.where(items >= 0, items, 0).reshape(-1), dtype=torch.long, device=device)
    was = net.training
    net.eval()
    try:
        with torch.enable_grad():
            x = net.item_inputs(seqs).detach().requires_grad_(True)
            scores = net.score_from_inputs(seqs, x)
            scores.gather(1, targets[:, None]).sum().backward()
        a = (x * x.grad).sum(-1).detach().cpu().double().numpy()
    finally:
        net.train(was)
    return a.reshape(n_users, n, -1) * (items >= 0)[:, :, None]
