"""A small synthetic world for model tests: latent-factor preferences plus item popularity, a seeded
per-user train/valid/test split, and FitContext/held-out-NDCG helpers built on the real Validator."""

from __future__ import annotations

import numpy as np

from recux.data import Dataset, Interactions, Split
from recux.evaluation import Validator
from recux.model import FitContext
from recux.plugins.finetune.scratch import Scratch

CPU_TRAINER = {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False}


def make_world(n_users: int = 300, n_items: int = 200, dim: int = 6, seed: int = 0) -> tuple[Dataset, Split]:
    """Users pick 15-45 items without replacement by softmax(taste . item + popularity) (Gumbel top-k);
    each user's picks are shuffled and cut 70/15/15 into train/valid/test."""
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(n_users, dim))
    item = rng.normal(size=(n_items, dim))
    pop = rng.normal(scale=1.0, size=n_items)
    logits = 2.0 * taste @ item.T / np.sqrt(dim) + pop
    noisy = logits + rng.gumbel(size=logits.shape)
    order = np.argsort(-noisy, axis=1)
    users, items, parts = [], [], []
    for u in range(n_users):
        n = int(rng.integers(15, 46))
        picks = rng.permutation(order[u, :n])
        n_tr, n_va = int(0.7 * n), int(0.15 * n)
        users.append(np.full(n, u))
        items.append(picks)
        parts.append(np.r_[np.zeros(n_tr, int), np.ones(n_va, int), np.full(n - n_tr - n_va, 2)])
    user, it, part = np.concatenate(users), np.concatenate(items), np.concatenate(parts)
    inter = Interactions(user=user, item=it, n_users=n_users, n_items=n_items)
    ds = Dataset("world", inter, user_ids=np.arange(n_users), item_ids=np.arange(n_items),
                 true_scores=logits.astype(np.float32))
    parts = [inter.subset(part == k) for k in range(3)]
    split = Split(*parts, protocol="random_70_15_15")
    return ds, split


def fit_context(ds: Dataset, split: Split, seed: int = 0, **kw) -> FitContext:
    """FitContext with a real validation-NDCG@10 validator (training items masked)."""
    train, valid = split.train.csr(), split.valid.csr()
    users = np.flatnonzero(np.diff(valid.indptr))
    kw.setdefault("trainer", dict(CPU_TRAINER))
    return FitContext(dataset=ds, split=split, finetune=Scratch(), seed=seed,
                      validate=Validator(users, train, valid, k=10), **kw)


def heldout_ndcg(model, split: Split) -> float:
    """Held-out NDCG@10 on test users, training and validation items masked (as the caller does)."""
    seen = split.train.csr() + split.valid.csr()
    test = split.test.csr()
    users = np.flatnonzero(np.diff(test.indptr))
    return Validator(users, seen, test, k=10)(model.score)["ndcg@10"]
