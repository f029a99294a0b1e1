"""Choose the LM judge's settings on the TRAINING side only (issue 11, section 3): the outer split of
scripts/judge_validation.py, then its training ratings cut again (recux.judge_validation.inner_split); the base
is chosen on the inner training part (recux.judge_validation.select) and fitted once, and every judge setting in
the grid is fitted on the inner training part and scored (Spearman, RMSE) on the inner validation part. The
held-out part of the outer split is never read. Prints one line per setting; --out writes them as JSON.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/judge_tune.py --grid heads=1,2 lr=0.001,0.0003
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=42, help="seed of the outer 80/20 rating split")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--judge-base", default="bayesian_fm", help="bayesian_fm | bayesian_mf | biased_mf")
    p.add_argument("--bfm-side", default="auto", choices=("auto", "yes", "no"))
    p.add_argument("--grid", nargs="*", default=[], help="JudgeConfig settings as name=v1,v2 (all combinations)")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


def grid(specs: list[str]) -> list[dict[str, Any]]:
    """All combinations of name=v1,v2 settings (numbers parsed as int, then float)."""
    axes = []
    for spec in specs:
        name, _, values = spec.partition("=")
        axes.append([(name, _number(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)]


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    from dataclasses import replace

    from judge_validation import TEMPLATE, load  # this script's folder is on sys.path

    from recux import judge_validation as jv
    from recux import registry
    from recux.embedding_cache import cached_embeddings
    from recux.item_text import render_item_texts
    from recux.lm_judge import JudgeConfig, oof_base

    args = parse(argv)
    data, outer_train, _ = load(args.seed, args.test_fraction, not args.no_download)
    train, val = jv.inner_split(outer_train, args.seed)
    side = jv.side_of(data)
    chosen = jv.select(train, args.seed, side, args.bfm_side)
    base_cfg = jv._judge_config(JudgeConfig(), args.judge_base, chosen, side)
    rows, preds, models = jv.baselines(train, val, None, chosen, side)
    base = (oof_base(train, base_cfg.folds, base_cfg.seed, base_cfg.mf, args.judge_base), models[args.judge_base])
    encoder = registry.build("encoder", "hf", {})
    feats = cached_embeddings(encoder, render_item_texts(data.item_features, TEMPLATE, data.n_items, "ml-100k"),
                              TEMPLATE)
    base_row = next(r for r in rows if r["model"] == args.judge_base)
    out = [{"setting": "base", "spearman": base_row["spearman"], "rmse": base_row["rmse"]}]
    print(f"base {args.judge_base} {chosen[args.judge_base]}: Spearman {base_row['spearman']:.4f} "
          f"RMSE {base_row['rmse']:.4f}", flush=True)
    for setting in grid(args.grid) or [{}]:
        cfg = replace(base_cfg, **setting)
        row, _, _ = jv.fit_judge_row("judge", train, val, feats, cfg, registry.build("finetune", "frozen", {}),
                                     base=base)
        out.append({"setting": setting, "spearman": row["spearman"], "rmse": row["rmse"],
                    "epochs": len(row["training"]["epochs"]), "seconds": row["seconds"]})
        print(f"{setting}: Spearman {row['spearman']:.4f} RMSE {row['rmse']:.4f} ({row['seconds']:.0f} s)",
              flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"selected": chosen, "rows": out}, indent=2, default=float))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
