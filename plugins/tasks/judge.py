"""Satisfaction-judge validation from config (``recux task=judge``): fit the rating baselines and the LM judge
(recux.lm_judge) on a seeded random split of the dataset's ratings and report Spearman with the held-out
ratings (recux.judge_validation). The dataset is loaded and preprocessed as in any run (so the item and user
codes are those of offline runs with the same preprocessing); the ``split`` group is not used: the task splits
the ratings itself (``test_fraction``, seed ``split_seed``, default the run's seed). The judge uses the
``encoder`` group over the item texts and the ``finetune`` group (scratch counts as frozen: the encoder stays
as it is, the judge's head trains from scratch).

Written into the run folder: results.json (``metrics``: ``spearman/<row>`` and ``rmse/<row>``; ``judge``: the
whole result with the bootstrap comparisons), judge_table.md, and judge/ (the fitted judge, for the
``judged_satisfaction`` metric: ``metrics=judged metrics.judge=<run folder>/judge``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from recux import registry, stages
from recux.errors import ConfigError
from recux.registry import register
from recux.task import Task

log = logging.getLogger("recux")


@register("task", "judge")
class JudgeTask(Task):
    """Validate the LM satisfaction judge and the rating baselines against held-out ratings."""

    def __init__(self, test_fraction: float = 0.2, split_seed: int | None = None, bootstrap: int = 1000,
                 ablation: bool = True, judge: dict[str, Any] | None = None) -> None:
        """judge: JudgeConfig settings (rank, lr, weight_decay, batch_size, max_epochs, patience, max_steps,
        encode_per_step, ...)."""
        from recux.lm_judge import JudgeConfig

        self.settings = dict(test_fraction=float(test_fraction), bootstrap=int(bootstrap), ablation=bool(ablation))
        self.split_seed = split_seed
        try:
            self.config = JudgeConfig(**dict(judge or {}))
        except TypeError as exc:
            raise ConfigError(f"task.judge: {exc}; see recux.lm_judge.JudgeConfig for the settings") from None
        self.config.check()

    def run(self, spec: stages.RunSpec, run_dir: Path) -> dict[str, Any]:
        from recux import judge_validation as jv
        from recux.embedding_cache import cached_embeddings
        from recux.item_text import render_item_texts
        from recux.results import RunArtifacts
        from recux.text_context import build_encoder, item_text_template

        t0 = time.perf_counter()
        stages.seed_everything(spec.seed)
        data = stages.preprocess(spec, stages.load_dataset(spec))
        if data.interactions.rating is None:
            raise ConfigError(f"task=judge needs explicit ratings; dataset '{data.name}' (after preprocessing) has "
                              "none. Use dataset=ml-100k with preprocess=default")
        name = "frozen" if spec.finetune.name == "scratch" else spec.finetune.name
        strategy = registry.build("finetune", name, {} if name != spec.finetune.name else spec.finetune.params)
        encoder, template = build_encoder(spec.resolved), item_text_template(spec.resolved)
        texts = render_item_texts(data.item_features, template, data.n_items, f"dataset '{data.name}'")
        feats = cached_embeddings(encoder, texts, template)
        settings = jv.Settings(seed=spec.seed if self.split_seed is None else int(self.split_seed),
                               judge_base=self.config.base, **self.settings)
        result, fitted = jv.run(data, settings, feats, self.config, strategy, encoder, texts)
        text = "\n".join([jv.table(result["rows"]), "", *jv.comparisons(result)]) + "\n"
        log.info("judge validation:\n%s", text)
        metrics = {f"spearman/{r['model']}": r["spearman"] for r in result["rows"]}
        metrics.update({f"rmse/{r['model']}": r["rmse"] for r in result["rows"] if r["rmse"] is not None})
        record = {"status": "ok", "task": "judge", "label": f"judge-{name}", "seed": spec.seed,
                  "dataset": {"name": data.name}, "protocol": f"random rating split {settings.test_fraction}",
                  "metrics": metrics, "judge": result, "config": spec.resolved,
                  "seconds": time.perf_counter() - t0}
        from recux.tracking import make_tracker

        tracker = make_tracker(spec.resolved.get("logger"), run_dir, spec.resolved, name=f"judge-{name}-s{spec.seed}",
                               group=f"judge-{data.name}", tags=[data.name, "judge"])
        try:
            with RunArtifacts(run_dir) as art:
                art.path("judge_table.md").write_text(text)
                if fitted is not None:
                    fitted.meta.update(jv.judge_meta(data, settings, encoder, template, strategy))
                    fitted.save(art.path("judge"))
                art.set_results(record)
            tracker.summary({f"test/{k}": v for k, v in metrics.items()})
            tracker.log_table("judge/validation", TABLE_COLUMNS, table_rows(result["rows"]))
            tracker.finish(0)
        except BaseException:
            tracker.finish(1)
            raise
        return record


TABLE_COLUMNS = ["model", "spearman", "rmse"]


def table_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """The validation table's rows for W&B: each judge's Spearman and RMSE (None where it has none)."""
    return [[r["model"], r["spearman"], r["rmse"]] for r in rows]
