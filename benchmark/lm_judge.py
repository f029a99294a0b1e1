"""A language-model satisfaction judge: (a user's rated history, an item) -> predicted rating, trained on
training ratings with a fine-tuning strategy (frozen, lora, full) over a text encoder.

Design (the network and its formula: recux._judge_net). The prediction is a residual on top of a
ratings-only model (``base``: ``bayesian_fm``, recux.rating_models.BayesianFM, ``bayesian_mf``, BayesianMF, or
``biased_mf``, BiasedMF; all predict mu + b_u + b_i + p_u . q_i): the language model must ADD to what the
ratings alone give. Stacking without leakage:

- the base prediction of each training rating is out-of-fold: the training ratings are cut into ``folds``
  random folds and each fold's base comes from an MF fitted on the other folds; test pairs get the MF fitted
  on all training ratings;
- a training rating is left out of its own user's history (the text user vector of (u, i) never contains
  r_ui);
- ``valid_fraction`` of the training ratings are kept out of the loss and pick the epoch (early stopping on
  their RMSE); nothing held out for evaluation is seen.

Inference needs no torch: ``Judge`` holds the head's weights, the final item features (the encoder's outputs,
fine-tuned or not), the MF model and the training ratings, and predicts in numpy; ``save``/``load`` write and
read them (a folder with judge.json and arrays.npz), so a metric can load a fitted judge cheaply.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recux.data import Interactions
from recux.errors import ConfigError
from recux.rating_models import RatingModel, build

FORMAT = "recux-lm-judge/1"


@dataclass
class JudgeConfig:
    rank: int = 16  # dimensions of the text user/item factors
    heads: int = 2  # attention heads of the text-similarity neighbourhood term (2: chosen on training-side validation)
    lr: float = 3e-4  # lr and weight decay: chosen on the training-side validation with the Bayesian FM base
    weight_decay: float = 0.1
    batch_size: int = 1024
    max_epochs: int = 30
    patience: int = 3
    max_steps: int | None = None  # cap on optimiser steps (short measured runs with the encoder in the loop)
    valid_fraction: float = 0.1
    folds: int = 5
    encode_per_step: int = 64
    seed: int = 0
    base: str = "bayesian_fm"  # the ratings-only base model: bayesian_fm | bayesian_mf | biased_mf (recux.rating_models)
    mf: dict[str, Any] = field(default_factory=dict)  # the base model's settings

    def check(self) -> None:
        if int(self.heads) < 1 or int(self.rank) < 1 or int(self.batch_size) < 1 or int(self.max_epochs) < 1 or int(self.folds) < 2:
            raise ConfigError(f"judge: heads, rank, batch_size, max_epochs must be >= 1 and folds >= 2; got {self.rank}, "
                              f"{self.batch_size}, {self.max_epochs}, {self.folds}")
        if self.base not in ("bayesian_fm", "bayesian_mf", "biased_mf"):
            raise ConfigError(f"judge: base={self.base!r}; choose bayesian_fm, bayesian_mf or biased_mf")
        if not 0.0 < float(self.valid_fraction) < 0.5 or float(self.lr) <= 0:
            raise ConfigError(f"judge: valid_fraction must be in (0, 0.5) and lr > 0; got {self.valid_fraction}, "
                              f"{self.lr}")


def ratings_csr(train: Interactions) -> sp.csr_matrix:
    m = sp.csr_matrix((train.rating.astype(np.float32), (train.user, train.item)),
                      shape=(train.n_users, train.n_items))
    m.sum_duplicates()
    m.sort_indices()
    return m


def errors_csr(train: Interactions, base: np.ndarray) -> sp.csr_matrix:
    """The ratings' pattern holding r - base (the base model's out-of-fold error) of each training rating."""
    m = sp.csr_matrix(((train.rating - base).astype(np.float32), (train.user, train.item)),
                      shape=(train.n_users, train.n_items))
    m.sort_indices()
    return m


def oof_base(train: Interactions, folds: int, seed: int, mf: dict[str, Any], base: str = "biased_mf"
             ) -> np.ndarray:
    """Out-of-fold prediction of every training rating by the base model ``base`` with settings ``mf``."""
    fold = np.random.default_rng(seed).integers(0, folds, len(train))
    out = np.empty(len(train))
    for f in range(folds):
        rest, this = fold != f, fold == f
        model = build(base, **mf).fit(train.user[rest], train.item[rest], train.rating[rest], train.n_users,
                                      train.n_items)
        out[this] = model.predict(train.user[this], train.item[this])
    return out


def fit_base(train: Interactions, cfg: JudgeConfig) -> tuple[np.ndarray, RatingModel]:
    """(out-of-fold base predictions of the training ratings, the base model fitted on all of them)."""
    oof = oof_base(train, cfg.folds, cfg.seed, cfg.mf, cfg.base)
    return oof, build(cfg.base, **cfg.mf).fit(train.user, train.item, train.rating, train.n_users, train.n_items)


class Judge:
    """A fitted judge: ``predict(users, items)`` in numpy (full training history; see ``_judge_net``)."""

    def __init__(self, head: dict[str, np.ndarray], mf: RatingModel, ratings: sp.csr_matrix, errors: sp.csr_matrix,
                 meta: dict[str, Any] | None = None) -> None:
        self.head, self.mf, self.ratings, self.meta = head, mf, ratings.tocsr(), dict(meta or {})
        self.errors = errors.tocsr()
        self._z = self._user_factors()

    def _user_factors(self) -> np.ndarray:
        h, R = self.head, self.ratings
        C = R.copy()
        C.data[:] = 1.0
        F = h["feats"].astype(np.float64)
        agg_r, agg_c = R @ F, C @ F
        n = np.diff(R.indptr).astype(np.float64)
        rbar = np.divide(np.asarray(R.sum(axis=1)).ravel(), n, out=np.zeros_like(n), where=n > 0)
        scale = 1.0 / np.sqrt(np.maximum(n, 1.0))
        return scale[:, None] * ((agg_r - rbar[:, None] * agg_c) @ h["B"].T + agg_c @ h["D"].T)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users, items = np.asarray(users), np.asarray(items)
        h = self.head
        f = h["feats"][items].astype(np.float64)
        text = np.einsum("nr,nr->n", f @ h["A"].T, self._z[users]) + f @ h["w"]
        text += self._neighbours(users, items)
        return float(h["a"]) * self.mf.predict(users, items) + float(h["c"]) + text

    def _neighbours(self, users: np.ndarray, items: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """sum_h beta_h sum_{j in H_u} softmax_j(gamma_h cos(p_h * f_i, p_h * f_j)) e_uj over the whole training
        history H_u."""
        h = self.head
        P, gamma, beta = np.atleast_2d(h["P"]), np.atleast_1d(h["gamma"]), np.atleast_1d(h["beta"])
        out = np.zeros(len(users))
        for s in range(0, len(users), chunk):
            u, i = users[s:s + chunk], items[s:s + chunk]
            mask = (self.ratings[u] != 0).toarray()
            errors = self.errors[u].toarray()
            for p, gam, bet in zip(P, gamma, beta, strict=True):
                g = h["feats"].astype(np.float64) * p.astype(np.float64)
                g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
                logits = np.where(mask, float(gam) * (g[i] @ g.T), -np.inf)
                top = logits.max(axis=1, keepdims=True)
                w = np.where(mask, np.exp(logits - np.where(np.isfinite(top), top, 0.0)), 0.0)
                den = w.sum(axis=1)
                num = (w * errors).sum(axis=1)
                out[s:s + chunk] += float(bet) * np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        return out

    @property
    def n_users(self) -> int:
        return self.ratings.shape[0]

    @property
    def n_items(self) -> int:
        return self.ratings.shape[1]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        R = self.ratings
        np.savez(folder / "arrays.npz", **{f"head_{k}": v for k, v in self.head.items()},
                 mf_P=self.mf.P, mf_Q=self.mf.Q, mf_bu=self.mf.bu, mf_bi=self.mf.bi,
                 r_indptr=R.indptr, r_indices=R.indices, r_data=R.data, e_data=self.errors.data)
        meta = {"format": FORMAT, "n_users": self.n_users, "n_items": self.n_items, "mf_mu": self.mf.mu,
                "base": self.mf.name, "mf": self.mf.params(), **self.meta}
        (folder / "judge.json").write_text(json.dumps(meta, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Judge:
        folder = Path(folder)
        meta_path = folder / "judge.json"
        if not meta_path.exists():
            raise ConfigError(f"no fitted judge at {folder} (judge.json missing): fit one with "
                              "scripts/judge_validation.py --save-judge FOLDER")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{meta_path} has format {meta.get('format')!r}, expected {FORMAT!r}")
        z = np.load(folder / "arrays.npz")
        mf = build(meta.get("base", "biased_mf"), **meta["mf"])
        mf.mu, mf.P, mf.Q, mf.bu, mf.bi = float(meta["mf_mu"]), z["mf_P"], z["mf_Q"], z["mf_bu"], z["mf_bi"]
        R = sp.csr_matrix((z["r_data"], z["r_indices"], z["r_indptr"]), shape=(meta["n_users"], meta["n_items"]))
        E = sp.csr_matrix((z["e_data"], z["r_indices"], z["r_indptr"]), shape=R.shape)
        head = {k[len("head_"):]: z[k] for k in z.files if k.startswith("head_")}
        rest = {k: v for k, v in meta.items() if k not in ("format", "n_users", "n_items", "mf_mu", "base", "mf")}
        return cls(head, mf, R, E, rest)


def fit_judge(train: Interactions, feats: np.ndarray, cfg: JudgeConfig | None = None, strategy: Any = None,
              text: Any = None, texts: list[str] | None = None, init: Judge | None = None,
              base: tuple[np.ndarray, RatingModel] | None = None) -> tuple[Judge, dict[str, Any]]:
    """Fit the judge on ``train`` ratings with item text embeddings ``feats`` (n_items, d). ``strategy``: a
    fine-tuning strategy (recux.finetune); one with ``encoder_in_net`` needs ``text`` (the encoder plugin)
    and ``texts`` (item texts in code order). ``init``: a fitted judge whose head weights the network starts
    from (the two-stage recipe: frozen to convergence, then a few lora/full epochs); it must come from the same
    training ratings and settings. ``base``: (out-of-fold base predictions of the training ratings, the base
    fitted on all of them) from ``fit_base`` with the same settings, to share one base between fits.
    Returns the judge and a training record."""
    import torch

    from recux._judge_net import JudgeNet
    from recux.finetune import prepare_in_place

    cfg = cfg or JudgeConfig()
    cfg.check()
    if train.rating is None:
        raise ConfigError("the judge is trained on ratings: the training interactions have none")
    if feats.shape[0] != train.n_items:
        raise ConfigError(f"judge: {feats.shape[0]} item embeddings for {train.n_items} items")
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    base_tr, mf = base if base is not None else fit_base(train, cfg)
    t_base = time.perf_counter() - t0
    in_net = bool(getattr(strategy, "encoder_in_net", False))
    if in_net and (text is None or texts is None):
        raise ConfigError(f"finetune={strategy.name} trains the encoder: fit_judge needs text= and texts=")
    R = ratings_csr(train)
    E = errors_csr(train, base_tr)
    net = JudgeNet(feats, R, E, cfg.rank, encoder=text.module().train() if in_net else None, text=text,
                   texts=texts, encode_per_step=cfg.encode_per_step, seed=cfg.seed, heads=cfg.heads)
    if init is not None:
        _start_from(net, init, train)
    if strategy is not None:
        prepare_in_place(strategy, net)
    params = strategy.trainable_parameters(net) if strategy is not None else list(net.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    record = _train(net, opt, train, base_tr, cfg)
    config = {**asdict(cfg), "mf": mf.params()}  # JSON-safe: side-feature matrices are not settings
    record.update(base_seconds=t_base, finetune=None if strategy is None else strategy.describe(),
                  trainable_params=sum(p.numel() for p in net.parameters() if p.requires_grad), config=config)
    return Judge(record.pop("best_head"), mf, R, E, {"config": config}), record


def _start_from(net: Any, init: Judge, train: Interactions) -> None:
    """Copy ``init``'s head weights (not its item features: the bank starts from this run's encoder) into net."""
    import torch

    if init.ratings.shape != (train.n_users, train.n_items) or init.ratings.nnz != len(train):
        raise ConfigError(f"judge init: the starting judge was fitted on {init.ratings.nnz} ratings of "
                          f"{init.ratings.shape}, this fit has {len(train)} of {(train.n_users, train.n_items)}; "
                          "start from a judge fitted on the same training ratings")
    with torch.no_grad():
        for name, value in init.head.items():
            if name != "feats":
                target = getattr(net, name)
                if tuple(target.shape) != tuple(np.shape(value)):
                    raise ConfigError(f"judge init: {name} has shape {np.shape(value)}, the network "
                                      f"{tuple(target.shape)}; use the starting judge's rank and heads")
                target.copy_(torch.as_tensor(np.asarray(value), dtype=target.dtype))


def _train(net: Any, opt: Any, train: Interactions, base: np.ndarray, cfg: JudgeConfig) -> dict[str, Any]:
    import torch

    from recux.optim import group_warmup, restore_lr

    rng = np.random.default_rng(cfg.seed + 1)
    valid = rng.random(len(train)) < cfg.valid_fraction
    tensors = [torch.as_tensor(np.asarray(v)) for v in (train.user.astype(np.int64), train.item.astype(np.int64),
                                                        base.astype(np.float32), train.rating.astype(np.float32))]
    u, i, b, r = tensors
    fit_idx, val_idx = np.flatnonzero(~valid), np.flatnonzero(valid)
    best, best_rmse, bad, step, history = None, float("inf"), 0, 0, []
    t0 = time.perf_counter()
    for epoch in range(cfg.max_epochs):
        net.train()
        order = rng.permutation(fit_idx)
        for start in range(0, len(order), cfg.batch_size):
            idx = torch.as_tensor(order[start:start + cfg.batch_size])
            fresh = net.fresh(i[idx])
            loss = torch.mean((net(u[idx], i[idx], b[idx], r[idx], fresh) - r[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            saved = group_warmup(opt, step)
            opt.step()
            restore_lr(saved)
            step += 1
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        net.refresh_bank()
        with torch.no_grad():
            net.eval()
            vi = torch.as_tensor(val_idx)
            pred = net(u[vi], i[vi], b[vi], r[vi])
            val_rmse = float(torch.sqrt(torch.mean((pred - r[vi]) ** 2)))
        history.append({"epoch": epoch, "valid_rmse": val_rmse, "steps": step,
                        "seconds": time.perf_counter() - t0})
        if val_rmse < best_rmse - 1e-5:
            best, best_rmse, bad = net.head_arrays(), val_rmse, 0
        else:
            bad += 1
        if bad >= cfg.patience or (cfg.max_steps is not None and step >= cfg.max_steps):
            break
    base_rmse = float(np.sqrt(np.mean((base[val_idx] - train.rating[val_idx]) ** 2)))
    return {"best_head": best, "best_valid_rmse": best_rmse, "valid_rmse_of_base": base_rmse, "epochs": history,
            "steps": step, "train_seconds": time.perf_counter() - t0}
