"""Validate rating judges on ML-100K (issue 11, section 3): the protocol of recux.judge_validation — Spearman
of each judge's scores with held-out ratings (seeded random 80/20 split of the ratings), RMSE, the issue's
reference values, and paired user-bootstrap CIs of the LM judge's Spearman difference to its ratings-only base
(the Bayesian FM by default: the LM's own increment), to biased MF and to the random-vector ablation. Prints a markdown table; --out writes everything as JSON; --save-judge keeps the fitted
LM judge for the judged_satisfaction metric.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/judge_validation.py                # frozen MiniLM on Bayesian FM
    OMP_NUM_THREADS=1 .venv/bin/python scripts/judge_validation.py --bpmf-judge --mf-judge  # + on BPMF, biased MF
    OMP_NUM_THREADS=1 .venv/bin/python scripts/judge_validation.py --validation   # on 10% of train (choosing)
    OMP_NUM_THREADS=1 .venv/bin/python scripts/judge_validation.py --finetune lora --max-steps 60 --no-ablation
    .venv/bin/python scripts/judge_validation.py --save-judge runs/judge-ml100k   # for judged_satisfaction
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TEMPLATE = "{title} ({release_year}): {genres}"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=42, help="seed of the 80/20 rating split")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--bootstrap", type=int, default=1000, help="user resamples for the Spearman-difference CI")
    p.add_argument("--finetune", default="frozen", help="frozen | lora | full (the LM judge's strategy)")
    p.add_argument("--max-steps", type=int, default=None, help="cap on the judge's optimiser steps")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--patience", type=int, default=3, help="epochs without a better validation RMSE")
    p.add_argument("--heads", type=int, default=2, help="heads of the judge's text-neighbourhood term")
    p.add_argument("--encode-per-step", type=int, default=64)
    p.add_argument("--encoder-model", default=None, help="Hugging Face name or folder (default: packaged MiniLM)")
    p.add_argument("--judge-base", default="bayesian_fm", help="the judge's ratings-only base: bayesian_fm | "
                   "bayesian_mf | biased_mf")
    p.add_argument("--mf-judge", action="store_true", help="also fit the judge on biased MF (another row)")
    p.add_argument("--bpmf-judge", action="store_true", help="also fit the judge on Bayesian MF (another row)")
    p.add_argument("--bfm-side", default="auto", choices=("auto", "yes", "no"), help="the Bayesian FM's user/item "
                   "side features (demographics, genres, year): auto = chosen on the training-side validation")
    p.add_argument("--validation", action="store_true", help="score on the training-side validation (10%% of "
                   "the training ratings; the held-out part is not touched), for choosing settings")
    p.add_argument("--no-judge", action="store_true", help="only the rating baselines")
    p.add_argument("--no-ablation", action="store_true", help="skip the random-vector ablation of the judge")
    p.add_argument("--no-download", action="store_true", help="use only a local or cached ML-100K")
    p.add_argument("--init-from", default=None, help="a saved judge (same split) whose head the judge starts from")
    p.add_argument("--save-judge", default=None, help="folder to save the fitted LM judge in")
    p.add_argument("--out", default=None, help="write the table and settings as JSON here")
    return p.parse_args(argv)


def load(seed: int, fraction: float, download: bool = True) -> tuple[Any, Any, Any]:
    from recux import registry
    from recux.rating_eval import random_rating_split

    data = registry.build("dataset", "ml-100k", {"download": download}).load()
    train, test = random_rating_split(data.interactions, fraction, seed)
    return data, train, test


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from recux import judge_validation as jv
    from recux import registry
    from recux.lm_judge import JudgeConfig

    args = parse(argv)
    data, _, _ = load(args.seed, args.test_fraction, not args.no_download)
    settings = jv.Settings(seed=args.seed, test_fraction=args.test_fraction, bootstrap=args.bootstrap,
                           judge=not args.no_judge, ablation=not args.no_ablation, judge_base=args.judge_base,
                           mf_judge=args.mf_judge, bpmf_judge=args.bpmf_judge, validation=args.validation,
                           bfm_side=args.bfm_side)
    encoder = texts = feats = None
    if settings.judge:
        from recux.embedding_cache import cached_embeddings
        from recux.item_text import render_item_texts

        encoder = registry.build("encoder", "hf", {} if args.encoder_model is None else {"model": args.encoder_model})
        texts = render_item_texts(data.item_features, TEMPLATE, data.n_items, "ml-100k")
        feats = cached_embeddings(encoder, texts, TEMPLATE)
    strategy = registry.build("finetune", args.finetune, {})
    cfg = JudgeConfig(max_steps=args.max_steps, batch_size=args.batch_size, encode_per_step=args.encode_per_step,
                      heads=args.heads, patience=args.patience)
    init = None
    if args.init_from:
        from recux.lm_judge import Judge

        init = Judge.load(args.init_from)
    result, fitted = jv.run(data, settings, feats, cfg, strategy, encoder, texts, init)
    print(jv.table(result["rows"]))
    for line in jv.comparisons(result):
        print(line)
    print(f"selected on 10% of train: {result['selected']}; wall time {result['seconds']:.0f} s")
    if args.save_judge and fitted is not None:
        fitted.meta.update(jv.judge_meta(data, settings, encoder, TEMPLATE, strategy))
        fitted.save(args.save_judge)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
