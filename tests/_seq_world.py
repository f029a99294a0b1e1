"""A small synthetic world with a strong sequential signal for sequential-model tests: each user's next item
is usually the next unseen item code after the previous one (i -> i + 1), sometimes a random jump, so
order carries the signal and popularity little. Split leave-last-one-out by time, as the runner does."""

from __future__ import annotations

import numpy as np

from recux.data import Dataset, Interactions, Split
from recux.evaluation import Validator
from recux.model import FitContext
from recux.plugins.finetune.scratch import Scratch
from recux.splitting import LeaveLastOut

CPU_TRAINER = {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False}


def make_seq_world(n_users: int = 200, n_items: int = 60, p_next: float = 0.85, min_len: int = 8,
                   max_len: int = 20, seed: int = 0) -> tuple[Dataset, Split]:
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for u in range(n_users):
        n = int(rng.integers(min_len, max_len + 1))
        seen = np.zeros(n_items, dtype=bool)
        cur = int(rng.integers(n_items))
        for t in range(n):
            seen[cur] = True
            users.append(u)
            items.append(cur)
            times.append(1_000 * u + t)
            if rng.random() < p_next:  # the next unseen code after cur
                nxt = (cur + 1) % n_items
                while seen[nxt]:
                    nxt = (nxt + 1) % n_items
            else:
                nxt = int(rng.choice(np.flatnonzero(~seen)))
            cur = nxt
    perm = rng.permutation(len(users))  # row order must not matter: timestamps order each user
    inter = Interactions(user=np.asarray(users)[perm], item=np.asarray(items)[perm], n_users=n_users,
                         n_items=n_items, timestamp=np.asarray(times, dtype=np.int64)[perm])
    ds = Dataset("seq-world", inter, user_ids=np.arange(n_users), item_ids=np.arange(n_items))
    return ds, LeaveLastOut().split(inter, seed=0)


def seq_context(ds: Dataset, split: Split, seed: int = 0, **kw) -> FitContext:
    """FitContext with a real validation-NDCG@10 validator (training items masked)."""
    train, valid = split.train.csr(), split.valid.csr()
    users = np.flatnonzero(np.diff(valid.indptr))
    kw.setdefault("trainer", dict(CPU_TRAINER))
    return FitContext(dataset=ds, split=split, finetune=Scratch(), seed=seed,
                      validate=Validator(users, train, valid, k=10), **kw)


def train_plus_valid(split: Split) -> Interactions:
    a, b = split.train, split.valid
    return Interactions(user=np.r_[a.user, b.user], item=np.r_[a.item, b.item], n_users=a.n_users,
                        n_items=a.n_items, timestamp=np.r_[a.timestamp, b.timestamp])


def loo_test_ndcg(model, split: Split) -> float:
    """Test NDCG@10 as the runner measures it: condition on train + valid, mask both, rank the test item."""
    model.condition_on(train_plus_valid(split))
    seen = split.train.csr() + split.valid.csr()
    test = split.test.csr()
    users = np.flatnonzero(np.diff(test.indptr))
    return Validator(users, seen, test, k=10)(model.score)["ndcg@10"]


def warm_up_validation(ds: Dataset, split: Split) -> None:
    """The first numba-parallel validation in a process changes MKL's threading, so a fit that contains it
    differs from later same-seed fits by ~1e-5 (fresh processes always agree): run one before fitting."""
    seq_context(ds, split).validate(lambda users: np.zeros((len(users), split.n_items), np.float32))
