"""Robustness: the offline_ranking run on the clean data, then one refit per configured variant of the
training data (noise, sparsity, shilling attacks; recux.injection), each scored on the same validation and test
sets with the same seed, and the clean model's perturbation stability (recux.stability).

Recorded in results.json (plain names: the clean run, as offline_ranking records it):

- ``robustness/<variant>/<metric>``: the metric after training on the variant's data;
  ``robustness/<variant>/delta/<metric>`` = variant - clean; ``robustness/<variant>/relative/<metric>`` =
  (variant - clean) / clean (null when the clean value is 0). Lower-is-better metrics keep their direction.
- attacks: ``robustness/<variant>/target_hit@k``: the hit ratio of the attack's target items (Mobasher et al.
  2007): for each target item, the share of the real test users whose top k holds it, averaged over the targets;
  ``robustness/<variant>/clean_target_hit@k`` the same items in the clean run's lists, and
  ``robustness/<variant>/target_hit_lift@k`` = attacked - clean (the exposure the attack bought; lower is
  better for the defender). Fake users are never evaluated (they have no test items).
- ``stability/<edit>/jaccard@k`` and ``stability/<edit>/rbo@k`` for edits remove/add (null, with a note in
  ``robustness.stability``, for a model that cannot score an edited history without refitting, e.g. BPR).

``robustness`` in results.json holds each variant's injection record (counts, target items), fit seconds and
validation metrics (``timing.eval_seconds`` includes the variants' fits and the stability measurement). The variants and stability settings are task settings: part of the data hash, so runs with
other variants form another leaderboard section.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recux import stability, stages
from recux.errors import ConfigError
from recux.injection import apply_injections
from recux.plugins.tasks.offline_ranking import OfflineRanking
from recux.registry import register

NOT_FOLDABLE = ("not measured: the model cannot score an edited history without refitting "
                "(score_with_history returns None; e.g. BPR learns each user's vector in training)")


def target_hit(topk: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Mean over target items of the share of rows whose first k items hold the target."""
    lists = topk[:, :k]
    return float(np.mean([(lists == t).any(axis=1).mean() for t in targets])) if len(lists) else float("nan")


def degradation(clean: dict[str, float], variant: dict[str, float], prefix: str) -> dict[str, float | None]:
    """``<prefix>/<m>``, ``<prefix>/delta/<m>`` (variant - clean) and ``<prefix>/relative/<m>`` ((variant -
    clean) / clean, None when clean is 0 or either is missing) for each clean metric."""
    out: dict[str, float | None] = {}
    for m, c in clean.items():
        v = variant.get(m)
        ok = v is not None and c is not None and np.isfinite(v) and np.isfinite(c)
        out[f"{prefix}/{m}"] = v
        out[f"{prefix}/delta/{m}"] = float(v - c) if ok else None
        out[f"{prefix}/relative/{m}"] = float((v - c) / c) if ok and c != 0 else None
    return out


@register("task", "robustness")
class Robustness(OfflineRanking):
    """Clean run, one refit per injected variant of the training data (degradation, attack exposure lift) and
    the perturbation stability of the clean model's lists."""

    def __init__(self, variants: dict[str, Any] | None = None, stability: dict[str, Any] | None = None) -> None:
        self.variants = dict(variants or {})
        for name, cfgs in self.variants.items():
            check_variant(name, cfgs)
        self.stability = stability_settings(stability)

    def _evaluate_more(self, spec, metrics, ranking, fitted, model_info, data, state) -> dict[str, Any]:
        stab = None
        if self.stability.enabled:
            history = stages.concat(data.split.train, data.split.valid)
            stab = stability_measure(fitted.model, history, data, spec, self.stability)
        runs = {name: self._variant(spec, metrics, model_info, data, ranking, name, cfgs)
                for name, cfgs in self.variants.items()}
        return {"stability": stab, "variants": runs}

    def _variant(self, spec, metrics, model_info, data, clean_ranking, name, cfgs) -> dict[str, Any]:
        """Fit on the variant's training data (same seed) and score it on the unchanged test set."""
        inj = apply_injections(cfgs, data.dataset, data.split, spec.seed, setting=f"task.variants.{name}")
        vdata = stages.prepared_from_split(inj.dataset, inj.split)
        vdata.graded_test, vdata.metric_embeddings = data.graded_test, data.metric_embeddings
        if not np.array_equal(vdata.test_users, data.test_users):
            raise RuntimeError(f"variant {name} changed the test users")  # injection touches training only
        stages.seed_everything(spec.seed)
        with tempfile.TemporaryDirectory(prefix=f"recux-robust-{name}-") as tmp:
            t0 = time.perf_counter()
            fitted = stages.fit(spec, model_info, vdata, Path(tmp))
            fit_seconds = time.perf_counter() - t0
            ranking = stages.rank(spec, fitted.model, vdata)
        report = stages.evaluate(spec, metrics, ranking, vdata)
        hits = {}
        if inj.targets is not None:
            for k in spec.ks:
                hits[k] = (target_hit(ranking.topk, inj.targets, k), target_hit(clean_ranking.topk, inj.targets, k))
        return {"report": report, "injection": inj.info, "hits": hits, "fit_seconds": round(fit_seconds, 4),
                "valid_metrics": stages.best_validation(fitted)}

    def _add_to_record(self, record, report, more, data, state) -> None:
        add_to_record(record, report, more, self.stability)


def check_variant(name: str, cfgs: Any) -> None:
    """A variant is a non-empty list of injector configs whose injectors build (refused before any fitting)."""
    from recux.injection import build_injector, injector_specs

    if not cfgs or not isinstance(cfgs, (Sequence, Mapping)) or isinstance(cfgs, str):
        raise ConfigError(f"task.variants.{name} must be a list of injector configs, e.g. "
                          f"[{{name: noise, rate: 0.1}}]; got {cfgs!r}")
    for key, injector, params in injector_specs(cfgs, f"task.variants.{name}"):
        build_injector(injector, params, f"task.variants.{name}[{key}]")


def stability_settings(node: dict[str, Any] | None) -> stability.StabilitySettings:
    return stability.StabilitySettings.of(node)


def stability_measure(model, history, data, spec, settings) -> dict[str, float] | None:
    return stability.measure(model, history, data.test_users, stages.known_items(spec, data), spec.ks, settings,
                             spec.seed, spec.batch_size)


def add_to_record(record, report, more: dict[str, Any], settings: stability.StabilitySettings) -> None:
    """Each variant's metrics, degradations and target hits, and the stability metrics, into the record."""
    clean, directions = dict(report.means), dict(report.directions)
    summary: dict[str, Any] = {}
    for name, run in more["variants"].items():
        prefix = f"robustness/{name}"
        rows = degradation(clean, run["report"].means, prefix)
        for m, higher in directions.items():
            for key in (f"{prefix}/{m}", f"{prefix}/delta/{m}", f"{prefix}/relative/{m}"):
                record.directions[key] = higher
        for k, (hit, base) in run["hits"].items():
            rows.update({f"{prefix}/target_hit@{k}": hit, f"{prefix}/clean_target_hit@{k}": base,
                         f"{prefix}/target_hit_lift@{k}": hit - base})
            for key in ("target_hit", "clean_target_hit", "target_hit_lift"):
                record.directions[f"{prefix}/{key}@{k}"] = False  # the defender's view: less exposure is better
        record.metrics.update(rows)
        summary[name] = {"injection": run["injection"], "fit_seconds": run["fit_seconds"],
                         "users_evaluated": run["report"].n_evaluated, "valid_metrics": run["valid_metrics"]}
    stab = more["stability"]
    note = None
    if stab is not None:
        record.metrics.update(stab)
        record.directions.update({k: True for k in stab})
    elif settings.enabled:
        note = NOT_FOLDABLE
    record.extra["robustness"] = {
        "variants": summary,
        "stability": {"edits": list(settings.edits), "rbo_p": settings.rbo_p, "enabled": settings.enabled,
                      "rbo": "extrapolated (Webber, Moffat & Zobel 2010, eq. 32)",
                      "history": "train + valid (what the test ranking conditions on)",
                      **({"note": note} if note else {})},
    }
