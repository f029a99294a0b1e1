"""The judge validation protocol (issue 11, section 3): Spearman between each judge's scores and held-out
ratings on a seeded random split of the ratings (recux.rating_eval), pooled over all held-out ratings, beside
RMSE where the scores are ratings.

Rows: popularity, the frozen user-profile judge (recux.rating_models.TextProfile), item mean, user + item means,
regularised biases, biased MF (32 factors, ALS), Bayesian MF (Gibbs sampling, recux.rating_models.BayesianMF),
the Bayesian factorization machine (Gibbs sampling over user and item ids, the implicit feedback of the training
ratings and, if chosen, the dataset's user/item attributes; recux.rating_models.BayesianFM), the LM judge
(recux.lm_judge) on the base ``Settings.judge_base`` and, as an ablation, the same judge with the item text
embeddings replaced by random unit vectors of the same shape (any gain of the LM judge over it is the text's, not
the network's); optionally the LM judge on Bayesian MF (``bpmf_judge``) and on biased MF (``mf_judge``) too.
The biases' lambdas, MF's reg, Bayesian MF's factors and the Bayesian FM's factors, implicit weighting and side
features are chosen on 10% of the TRAINING ratings by RMSE (``select``); the held-out part is used once, for the
table (``Settings.validation`` scores on that training-side 10% instead, for choosing settings). The LM judge is
compared with its own base (the LM's increment), with biased MF and with the ablation, and the Bayesian models
with biased MF and each other, by a paired bootstrap over users (recux.rating_eval.paired_bootstrap_spearman).
Used by scripts/judge_validation.py and by ``recux task=judge`` (plugins/tasks/judge.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recux.data import Dataset, Interactions

# Measured on this machine kind (issue 11): Spearman on ML-100K, random 80/20 split of the ratings.
REFERENCE = {"popularity": 0.235, "text_profile": 0.240, "item_mean": 0.418, "user_item_means": 0.517,
             "biases": 0.540, "biased_mf": 0.573}
REFERENCE_MF_RMSE = 0.922
BIAS_GRID = (1.0, 2.0, 5.0, 10.0, 25.0)
MF_REG_GRID = (0.05, 0.08, 0.1, 0.15, 0.2)
BPMF_FACTOR_GRID = (10, 20)
BFM_GRID = {"factors": (5, 10, 20), "norm": ("sqrt", "sum"), "side": (False, True)}
BASES = ("bayesian_fm", "bayesian_mf", "biased_mf")


@dataclass
class Settings:
    seed: int = 42  # seed of the rating split (and of the bootstrap)
    test_fraction: float = 0.2
    bootstrap: int = 1000  # user resamples of the Spearman-difference CIs
    judge: bool = True  # fit the LM judge (False: ratings-only baselines)
    ablation: bool = True  # also fit the judge on random item vectors
    judge_base: str = "bayesian_fm"  # the LM judge's ratings-only base: bayesian_fm | bayesian_mf | biased_mf
    mf_judge: bool = False  # also fit the LM judge on biased MF (when judge_base is another)
    bpmf_judge: bool = False  # also fit the LM judge on Bayesian MF (when judge_base is another)
    validation: bool = False  # score on the training-side validation (10% of train) instead of the held-out part
    bfm_side: str = "auto"  # the Bayesian FM's side features: auto (chosen on validation) | yes | no


def inner_split(train: Interactions, seed: int) -> tuple[Interactions, Interactions]:
    """The training-side validation: 10% of the training ratings (seed + 1), the rest to fit on."""
    from recux.rating_eval import random_rating_split

    return random_rating_split(train, 0.1, seed + 1)


def select(train: Interactions, seed: int, side: tuple[Any, Any] = (None, None), bfm_side: str = "auto"
           ) -> dict[str, Any]:
    """Biases' (lam_u, lam_i), MF's reg, Bayesian MF's factors and the Bayesian FM's (factors, norm, side
    features) with the lowest RMSE on 10% of the training ratings (``inner_split``); ``validation`` records
    the RMSE and Spearman there of every Bayesian FM candidate and of the chosen Bayesian MF. ``side``: the
    (user, item) side features (recux.rating_models.side_features), None where there are none; ``bfm_side``:
    auto (with or without them, whichever validates better), yes or no."""
    from recux.rating_eval import rmse, spearman
    from recux.rating_models import BayesianMF, BiasedMF, Biases

    fit, val = inner_split(train, seed)
    args = (fit.user, fit.item, fit.rating, fit.n_users, fit.n_items)

    def err(model: Any) -> float:
        return rmse(model.fit(*args).predict(val.user, val.item), val.rating)

    lam = min(((a, b) for a in BIAS_GRID for b in BIAS_GRID), key=lambda ab: err(Biases(lam_u=ab[0], lam_i=ab[1])))
    reg = min(MF_REG_GRID, key=lambda r: err(BiasedMF(reg=r)))
    k = min(BPMF_FACTOR_GRID, key=lambda f: err(BayesianMF(factors=f)))
    scored = []
    for params in _bfm_candidates(side):
        pred = bfm_model(params, side).fit(*args).predict(val.user, val.item)
        scored.append({**params, "rmse": rmse(pred, val.rating), "spearman": spearman(pred, val.rating)})
    bpmf = BayesianMF(factors=k).fit(*args).predict(val.user, val.item)
    allowed = [c for c in scored if bfm_side == "auto" or c["side"] == (bfm_side == "yes")]
    best = min(allowed, key=lambda c: c["rmse"])
    return {"biases": {"lam_u": lam[0], "lam_i": lam[1]}, "biased_mf": {"reg": reg}, "bayesian_mf": {"factors": k},
            "bayesian_fm": {key: best[key] for key in BFM_GRID},
            "validation": {"bayesian_fm": scored, "bayesian_mf": {"factors": k, "rmse": rmse(bpmf, val.rating),
                                                                  "spearman": spearman(bpmf, val.rating)}}}


def _bfm_candidates(side: tuple[Any, Any]) -> list[dict[str, Any]]:  # side features tried where there are any
    with_side = (False, True) if any(x is not None for x in side) else (False,)
    return [{"factors": f, "norm": n, "side": s} for f in BFM_GRID["factors"] for n in BFM_GRID["norm"]
            for s in with_side]


def bfm_model(params: dict[str, Any], side: tuple[Any, Any]) -> Any:
    """The Bayesian FM of the chosen ``params`` (factors, norm, side) with the side features if chosen."""
    from recux.rating_models import BayesianFM

    return BayesianFM(**model_kwargs("bayesian_fm", params, side))


def model_kwargs(base: str, params: dict[str, Any], side: tuple[Any, Any]) -> dict[str, Any]:
    """The rating model's settings from the chosen ``params`` (for bayesian_fm, ``side`` becomes the
    user_side/item_side features)."""
    if base != "bayesian_fm":
        return dict(params)
    out = {k: v for k, v in params.items() if k != "side"}
    if params.get("side"):
        out["user_side"], out["item_side"] = side
    return out


def side_of(data: Dataset) -> tuple[Any, Any]:
    """(user, item) side features of ``data`` from its feature frames (recux.rating_models.side_features)."""
    from recux.rating_models import side_features

    return (None if data.user_features is None else side_features(data.user_features, "user_id"),
            None if data.item_features is None else side_features(data.item_features, "item_id"))


def row(name: str, pred: np.ndarray, test: Interactions, seconds: float, is_rating: bool) -> dict[str, Any]:
    from recux.rating_eval import rmse, spearman

    return {"model": name, "spearman": spearman(pred, test.rating), "rmse": rmse(pred, test.rating) if is_rating
            else None, "reference": REFERENCE.get(name), "seconds": seconds}


def baselines(train: Interactions, test: Interactions, feats: np.ndarray | None, chosen: dict[str, Any],
              side: tuple[Any, Any] = (None, None)
              ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray], dict[str, Any]]:
    """(table rows, held-out predictions, fitted models), by model name."""
    from recux import rating_models as rm

    models: list[tuple[str, Any, bool]] = [("popularity", rm.Popularity(), False)]
    if feats is not None:
        models.append(("text_profile", rm.TextProfile(feats), False))
    models += [("item_mean", rm.ItemMean(), True), ("user_item_means", rm.UserItemMeans(), True),
               ("biases", rm.Biases(**chosen["biases"]), True),
               ("biased_mf", rm.BiasedMF(**chosen["biased_mf"]), True),
               ("bayesian_mf", rm.BayesianMF(**chosen["bayesian_mf"]), True)]
    if "bayesian_fm" in chosen:
        models.append(("bayesian_fm", bfm_model(chosen["bayesian_fm"], side), True))
    rows, preds, fitted = [], {}, {}
    for name, model, is_rating in models:
        t0 = time.perf_counter()
        fitted[name] = model.fit(train.user, train.item, train.rating, train.n_users, train.n_items)
        preds[name] = model.predict(test.user, test.item)
        rows.append(row(name, preds[name], test, time.perf_counter() - t0, is_rating))
    return rows, preds, fitted


def fit_judge_row(name: str, train: Interactions, test: Interactions, feats: np.ndarray, config: Any,
                  strategy: Any, text: Any = None, texts: list[str] | None = None, init: Any = None,
                  base: Any = None) -> tuple[dict[str, Any], np.ndarray, Any]:
    """(table row with the training record, held-out predictions, the fitted judge); ``base``: see
    recux.lm_judge.fit_judge."""
    from recux.lm_judge import fit_judge

    t0 = time.perf_counter()
    fitted, record = fit_judge(train, feats, config, strategy=strategy, text=text, texts=texts, init=init,
                               base=base)
    pred = fitted.predict(test.user, test.item)
    out = row(name, pred, test, time.perf_counter() - t0, True)
    out["training"] = {k: record[k] for k in ("best_valid_rmse", "valid_rmse_of_base", "steps", "train_seconds",
                                              "base_seconds", "finetune", "trainable_params", "epochs")}
    return out, pred, fitted


def compare(a: np.ndarray, b: np.ndarray, test: Interactions, n: int, seed: int) -> dict[str, Any]:
    from recux.rating_eval import paired_bootstrap_spearman

    return asdict(paired_bootstrap_spearman(a, b, test.rating, test.user, n_resamples=n, seed=seed))


def random_vectors(shape: tuple[int, int], seed: int) -> np.ndarray:
    rnd = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return rnd / np.linalg.norm(rnd, axis=1, keepdims=True)


def run(data: Dataset, settings: Settings, feats: np.ndarray | None = None, judge_config: Any = None,
        strategy: Any = None, text: Any = None, texts: list[str] | None = None, init: Any = None
        ) -> tuple[dict[str, Any], Any]:
    """The whole protocol on ``data`` (ratings needed): (result dict with ``rows`` and the comparisons, the
    fitted LM judge or None). ``feats``: the item text embeddings (None: ratings-only rows); ``strategy``: the
    judge's fine-tuning strategy (one with the encoder in the network also needs ``text`` and ``texts``);
    ``init``: a fitted judge (same split and settings) whose head the LM judge starts from."""
    from recux.errors import ConfigError
    from recux.rating_eval import random_rating_split

    if settings.judge_base not in BASES:
        raise ConfigError(f"judge_base={settings.judge_base!r}; choose one of {', '.join(BASES)}")
    if settings.bfm_side not in ("auto", "yes", "no"):
        raise ConfigError(f"bfm_side={settings.bfm_side!r}; choose auto, yes or no")
    t_start = time.perf_counter()
    train, test = random_rating_split(data.interactions, settings.test_fraction, settings.seed)
    if settings.validation:  # everything on the training side: the held-out part is not touched
        train, test = inner_split(train, settings.seed)
    side = side_of(data)
    if settings.bfm_side == "yes" and all(x is None for x in side):
        raise ConfigError("bfm_side=yes but the dataset has no user or item features; use auto or no")
    chosen = select(train, settings.seed, side, settings.bfm_side)
    rows, preds, models = baselines(train, test, feats, chosen, side)
    n, seed = settings.bootstrap, settings.seed
    result: dict[str, Any] = {"settings": asdict(settings), "n_train": len(train), "n_test": len(test),
                              "selected": chosen, "reference_mf_rmse": REFERENCE_MF_RMSE,
                              "bayesian_mf_vs_biased_mf": compare(preds["bayesian_mf"], preds["biased_mf"], test,
                                                                  n, seed),
                              "bayesian_fm_vs_biased_mf": compare(preds["bayesian_fm"], preds["biased_mf"], test,
                                                                  n, seed),
                              "bayesian_fm_vs_bayesian_mf": compare(preds["bayesian_fm"], preds["bayesian_mf"],
                                                                    test, n, seed)}
    fitted = None
    if settings.judge and feats is not None:
        fitted = _judges(settings, train, test, feats, judge_config, strategy, text, texts, init, chosen, preds,
                         models, rows, result, side)
    result["rows"] = rows
    result["seconds"] = time.perf_counter() - t_start
    return result, fitted


def _judge_config(judge_config: Any, base: str, chosen: dict[str, Any], side: tuple[Any, Any]) -> Any:
    from dataclasses import replace

    from recux.lm_judge import JudgeConfig

    return replace(judge_config or JudgeConfig(), base=base, mf=model_kwargs(base, chosen[base], side))


def _judges(settings: Settings, train: Interactions, test: Interactions, feats: np.ndarray, judge_config: Any,
            strategy: Any, text: Any, texts: list[str] | None, init: Any, chosen: dict[str, Any],
            preds: dict[str, np.ndarray], models: dict[str, Any], rows: list, result: dict[str, Any],
            side: tuple[Any, Any]) -> Any:
    """The LM judge rows (on ``settings.judge_base``; the random-vector ablation; optionally on biased MF) and
    their bootstrap comparisons, appended to ``rows`` and ``result``; returns the main fitted judge."""
    from recux import registry
    from recux.lm_judge import oof_base

    base_name = settings.judge_base
    cfg = _judge_config(judge_config, base_name, chosen, side)
    base = (oof_base(train, cfg.folds, cfg.seed, cfg.mf, base_name), models[base_name])
    in_net = bool(getattr(strategy, "encoder_in_net", False))
    name = f"lm_judge_{getattr(strategy, 'name', 'frozen')}" + ("_from_init" if init is not None else "")
    out, pred, fitted = fit_judge_row(name, train, test, feats, cfg, strategy, text if in_net else None,
                                      texts if in_net else None, init, base)
    out["base"] = base_name
    rows.append(out)
    n, seed = settings.bootstrap, settings.seed
    result["judge_vs_base"] = compare(pred, preds[base_name], test, n, seed)
    result["judge_vs_biased_mf"] = compare(pred, preds["biased_mf"], test, n, seed)
    if settings.ablation:
        ab, ab_pred, _ = fit_judge_row("judge_random_vectors", train, test, random_vectors(feats.shape, seed), cfg,
                                       registry.build("finetune", "frozen", {}), base=base)
        ab["base"] = base_name
        rows.append(ab)
        result["judge_vs_random_vectors"] = compare(pred, ab_pred, test, n, seed)
    others = [(flag, other) for flag, other in ((settings.bpmf_judge, "bayesian_mf"), (settings.mf_judge, "biased_mf"))
              if flag and other != base_name]
    for _, other in others:
        o_cfg = _judge_config(judge_config, other, chosen, side)
        o_out, o_pred, _ = fit_judge_row(f"{name}_on_{other}", train, test, feats, o_cfg, strategy,
                                         text if in_net else None, texts if in_net else None)
        o_out["base"] = other
        rows.append(o_out)
        key = "mf_judge_vs_biased_mf" if other == "biased_mf" else f"judge_on_{other}_vs_{other}"
        result[key] = compare(o_pred, preds[other], test, n, seed)
        result[f"judge_vs_judge_on_{other}"] = compare(pred, o_pred, test, n, seed)
    return fitted


def table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the rows (Spearman, the reference and the difference, RMSE, seconds)."""
    lines = ["| model | Spearman | reference | diff | RMSE | seconds |", "|---|---|---|---|---|---|"]
    for r in rows:
        ref = r["reference"]
        diff = f"{r['spearman'] - ref:+.3f}" if ref is not None else ""
        rmse = f"{r['rmse']:.3f}" if r["rmse"] is not None else "—"
        lines.append(f"| {r['model']} | {r['spearman']:.3f} | {'' if ref is None else f'{ref:.3f}'} | {diff} | "
                     f"{rmse} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def comparisons(result: dict[str, Any]) -> list[str]:
    lines = []
    for key in ("bayesian_mf_vs_biased_mf", "bayesian_fm_vs_biased_mf", "bayesian_fm_vs_bayesian_mf", "judge_vs_base", "judge_vs_biased_mf", "judge_vs_random_vectors",
                "judge_on_bayesian_mf_vs_bayesian_mf", "judge_vs_judge_on_bayesian_mf", "mf_judge_vs_biased_mf",
                "judge_vs_judge_on_biased_mf"):
        if key in result:
            c = result[key]
            lines.append(f"{key}: Spearman diff {c['diff']:+.4f}, 95% CI [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] "
                         f"(paired bootstrap over {c['n_users']} users, {c['n_resamples']} resamples; share of "
                         f"resamples <= 0: {c['p_not_better']:.3f})")
    return lines


def judge_meta(data: Dataset, settings: Settings, encoder: Any, template: str, strategy: Any) -> dict[str, Any]:
    """What a saved judge records about where it came from (the metric checks ``item_ids``)."""
    return {"dataset": data.name, "split_seed": settings.seed, "test_fraction": settings.test_fraction,
            "encoder": encoder.identity(), "template": template, "finetune": getattr(strategy, "name", "frozen"),
            "item_ids": [str(x) for x in data.item_ids], "user_ids": [str(x) for x in data.user_ids]}
