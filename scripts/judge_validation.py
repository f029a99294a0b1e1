"""Validate rating judges on ML-100K (issue 11, section 3): Spearman between each judge's scores and held-out
ratings on a seeded random 80/20 split of the ratings, pooled over all held-out ratings, beside RMSE where the
scores are ratings, and the issue's reference values.

Rows: popularity (training rating count), the frozen MiniLM user-profile judge (recux.rating_models.TextProfile),
item mean, user + item means, regularised user/item biases, biased MF (ALS, 32 factors), the LM judge
(recux.lm_judge: a text residual on top of biased MF) and, as an ablation, the same judge with the item text
embeddings replaced by random unit vectors of the same shape (so any gain of the LM judge over it is the text's,
not the network's). Hyper-parameters of the biases (lambda) and of MF (reg) are chosen on 10% of the TRAINING
ratings by RMSE; the held-out 20% is used once, for the table. The LM judge is compared with biased MF by a
paired bootstrap over users (recux.rating_eval.paired_bootstrap_spearman).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/judge_validation.py                # frozen MiniLM
    OMP_NUM_THREADS=1 .venv/bin/python scripts/judge_validation.py --finetune lora --max-steps 200
    .venv/bin/python scripts/judge_validation.py --save-judge runs/judge-ml100k   # for judged_satisfaction
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE = {"popularity": 0.235, "text_profile": 0.240, "item_mean": 0.418, "user_item_means": 0.517,
             "biases": 0.540, "biased_mf": 0.573}
REFERENCE_MF_RMSE = 0.922
BIAS_GRID = (1.0, 2.0, 5.0, 10.0, 25.0)
MF_REG_GRID = (0.05, 0.08, 0.1, 0.15, 0.2)
TEMPLATE = "{title} ({release_year}): {genres}"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=42, help="seed of the 80/20 rating split")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--bootstrap", type=int, default=1000, help="user resamples for the Spearman-difference CI")
    p.add_argument("--finetune", default="frozen", help="frozen | lora | full (the LM judge's strategy)")
    p.add_argument("--max-steps", type=int, default=None, help="cap on the judge's optimiser steps")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--encode-per-step", type=int, default=64)
    p.add_argument("--encoder-model", default=None, help="Hugging Face name or folder (default: packaged MiniLM)")
    p.add_argument("--no-judge", action="store_true", help="only the rating baselines")
    p.add_argument("--no-ablation", action="store_true", help="skip the random-vector ablation of the judge")
    p.add_argument("--save-judge", default=None, help="folder to save the fitted LM judge in")
    p.add_argument("--no-download", action="store_true", help="use only a local or cached ML-100K")
    p.add_argument("--out", default=None, help="write the table and settings as JSON here")
    return p.parse_args(argv)


def load(seed: int, fraction: float, download: bool = True) -> tuple[Any, Any, Any]:
    from recux import registry
    from recux.rating_eval import random_rating_split

    data = registry.build("dataset", "ml-100k", {"download": download}).load()
    train, test = random_rating_split(data.interactions, fraction, seed)
    return data, train, test


def select(train: Any, seed: int) -> dict[str, Any]:
    """Biases' (lam_u, lam_i) and MF's reg with the lowest RMSE on 10% of the training ratings."""
    from recux.rating_eval import random_rating_split, rmse
    from recux.rating_models import BiasedMF, Biases

    fit, val = random_rating_split(train, 0.1, seed + 1)
    args = (fit.user, fit.item, fit.rating, fit.n_users, fit.n_items)

    def err(model: Any) -> float:
        return rmse(model.fit(*args).predict(val.user, val.item), val.rating)

    lam = min(((a, b) for a in BIAS_GRID for b in BIAS_GRID), key=lambda ab: err(Biases(lam_u=ab[0], lam_i=ab[1])))
    reg = min(MF_REG_GRID, key=lambda r: err(BiasedMF(reg=r)))
    return {"biases": {"lam_u": lam[0], "lam_i": lam[1]}, "biased_mf": {"reg": reg}}


def item_embeddings(data: Any, model: str | None) -> tuple[Any, list[str], np.ndarray]:
    from recux import registry
    from recux.embedding_cache import cached_embeddings
    from recux.item_text import render_item_texts

    encoder = registry.build("encoder", "hf", {} if model is None else {"model": model})
    texts = render_item_texts(data.item_features, TEMPLATE, data.n_items, "ml-100k")
    return encoder, texts, cached_embeddings(encoder, texts, TEMPLATE)


def row(name: str, pred: np.ndarray, test: Any, seconds: float, is_rating: bool) -> dict[str, Any]:
    from recux.rating_eval import rmse, spearman

    return {"model": name, "spearman": spearman(pred, test.rating), "rmse": rmse(pred, test.rating) if is_rating
            else None, "reference": REFERENCE.get(name), "seconds": seconds}


def baselines(train: Any, test: Any, feats: np.ndarray | None, chosen: dict[str, Any]
              ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    from recux import rating_models as rm

    models: list[tuple[str, Any, bool]] = [("popularity", rm.Popularity(), False)]
    if feats is not None:
        models.append(("text_profile", rm.TextProfile(feats), False))
    models += [("item_mean", rm.ItemMean(), True), ("user_item_means", rm.UserItemMeans(), True),
               ("biases", rm.Biases(**chosen["biases"]), True), ("biased_mf", rm.BiasedMF(**chosen["biased_mf"]),
                                                                  True)]
    rows, preds = [], {}
    for name, model, is_rating in models:
        t0 = time.perf_counter()
        preds[name] = model.fit(train.user, train.item, train.rating, train.n_users, train.n_items).predict(
            test.user, test.item)
        rows.append(row(name, preds[name], test, time.perf_counter() - t0, is_rating))
    return rows, preds


def judge(name: str, train: Any, test: Any, feats: np.ndarray, args: argparse.Namespace, mf: dict[str, Any],
          text: Any = None, texts: list[str] | None = None) -> tuple[dict[str, Any], np.ndarray, Any]:
    from recux import registry
    from recux.lm_judge import JudgeConfig, fit_judge

    strategy = registry.build("finetune", args.finetune if text is not None else "frozen", {})
    cfg = JudgeConfig(max_steps=args.max_steps, batch_size=args.batch_size, encode_per_step=args.encode_per_step,
                      mf=mf)
    t0 = time.perf_counter()
    fitted, record = fit_judge(train, feats, cfg, strategy=strategy, text=text, texts=texts)
    pred = fitted.predict(test.user, test.item)
    out = row(name, pred, test, time.perf_counter() - t0, True)
    out["training"] = {k: record[k] for k in ("best_valid_rmse", "valid_rmse_of_base", "steps", "train_seconds",
                                              "base_seconds", "finetune", "trainable_params", "epochs")}
    return out, pred, fitted


def compare(a: np.ndarray, b: np.ndarray, test: Any, n: int, seed: int) -> dict[str, Any]:
    from dataclasses import asdict

    from recux.rating_eval import paired_bootstrap_spearman

    return asdict(paired_bootstrap_spearman(a, b, test.rating, test.user, n_resamples=n, seed=seed))


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | Spearman | reference | diff | RMSE | seconds |", "|---|---|---|---|---|---|"]
    for r in rows:
        ref = r["reference"]
        diff = f"{r['spearman'] - ref:+.3f}" if ref is not None else ""
        rmse = f"{r['rmse']:.3f}" if r["rmse"] is not None else "—"
        lines.append(f"| {r['model']} | {r['spearman']:.3f} | {'' if ref is None else f'{ref:.3f}'} | {diff} | "
                     f"{rmse} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    t_start = time.perf_counter()
    data, train, test = load(args.seed, args.test_fraction, not args.no_download)
    chosen = select(train, args.seed)
    encoder, texts, feats = (None, None, None) if args.no_judge else item_embeddings(data, args.encoder_model)
    rows, preds = baselines(train, test, feats, chosen)
    result: dict[str, Any] = {"seed": args.seed, "test_fraction": args.test_fraction, "n_train": len(train),
                              "n_test": len(test), "selected": chosen, "reference_mf_rmse": REFERENCE_MF_RMSE}
    if not args.no_judge:
        in_net = args.finetune != "frozen"
        out, pred, fitted = judge(f"lm_judge_{args.finetune}", train, test, feats, args, chosen["biased_mf"],
                                  encoder if in_net else None, texts if in_net else None)
        rows.append(out)
        result["judge_vs_biased_mf"] = compare(pred, preds["biased_mf"], test, args.bootstrap, args.seed)
        if not args.no_ablation:
            rnd = np.random.default_rng(args.seed).normal(size=feats.shape).astype(np.float32)
            rnd /= np.linalg.norm(rnd, axis=1, keepdims=True)
            ab_args = argparse.Namespace(**{**vars(args), "finetune": "frozen"})
            ab, ab_pred, _ = judge("judge_random_vectors", train, test, rnd, ab_args, chosen["biased_mf"])
            rows.append(ab)
            result["judge_vs_random_vectors"] = compare(pred, ab_pred, test, args.bootstrap, args.seed)
        if args.save_judge:
            fitted.meta.update({"dataset": "ml-100k", "split_seed": args.seed, "encoder": encoder.identity(),
                                "template": TEMPLATE, "item_ids": [str(x) for x in data.item_ids],
                                "user_ids": [str(x) for x in data.user_ids], "finetune": args.finetune})
            fitted.save(args.save_judge)
    result["rows"] = rows
    result["seconds"] = time.perf_counter() - t_start
    print(table(rows))
    for key in ("judge_vs_biased_mf", "judge_vs_random_vectors"):
        if key in result:
            c = result[key]
            print(f"{key}: Spearman diff {c['diff']:+.4f}, 95% CI [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] "
                  f"(paired bootstrap over {c['n_users']} users, {c['n_resamples']} resamples; "
                  f"share of resamples <= 0: {c['p_not_better']:.3f})")
    print(f"selected on 10% of train: {chosen}; wall time {result['seconds']:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
