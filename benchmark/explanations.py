"""The explanation stage of a ranking run (``explainer=...``; recux.explain): explain each test user's top
recommended items, run the deletion test (recux.faithfulness), and write

- ``explanations.parquet``: user_id, rank, item_id, explaining_rank, explaining_item_id, weight: the top
  ``settings.keep`` explaining history items of each of the top ``settings.items`` recommended items;
- ``explanation_faithfulness.parquet``: per user the mean score and rank drops, explainer and random deletion
  (what the leaderboard pairs over seeds);
- ``explanations.md``: a readable sample (item titles where the dataset has them) and the faithfulness table;
- in results.json: ``explanations`` (settings, method, the paired comparisons) and flat metrics
  ``explain/<explainer>/{score,rank}_drop[_random]@m<m>`` and ``..._vs_random@m<m>`` (the mean difference).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from recux.explain import Attribution, ExplainSetup
from recux.faithfulness import MEASURES, Deletion, deletion_test, summarize

FILE = "explanations.parquet"
FAITHFULNESS_FILE = "explanation_faithfulness.parquet"
REPORT_FILE = "explanations.md"


def explained_users(users: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Row indices into ``users`` of the explained users: all, or a seeded sample of ``limit`` (sorted)."""
    if limit is None or limit >= len(users):
        return np.arange(len(users))
    return np.sort(np.random.default_rng([int(seed), 17]).choice(len(users), size=limit, replace=False))


def explain_all(setup: ExplainSetup, model: Any, users: np.ndarray,
                items: np.ndarray) -> tuple[list[np.ndarray], list[Attribution]]:
    """The users' histories and their attributions, ``settings.batch_users`` users at a time."""
    explainer, step = setup.build(), setup.settings.batch_users
    histories = model.history(users)
    atts: list[Attribution] = []
    for start in range(0, len(users), step):
        atts += explainer.explain(model, users[start:start + step], histories[start:start + step],
                                  items[start:start + step])
    return histories, atts


def explanation_frame(users: np.ndarray, items: np.ndarray, atts: list[Attribution], keep: int,
                      dataset: Any) -> pl.DataFrame:
    """One row per (user, recommended item, explaining item) for the top ``keep`` explaining items."""
    cols: dict[str, list] = {k: [] for k in ("user_id", "rank", "item_id", "explaining_rank",
                                             "explaining_item_id", "weight")}
    for u, row, att in zip(users, items, atts, strict=True):
        for r, item in enumerate(row):
            if item < 0:
                continue
            top = att.top(r, keep)
            w = att.weights[r, np.searchsorted(att.candidates, top)] if len(top) else np.zeros(0)
            for j, (e, weight) in enumerate(zip(top, w, strict=True)):
                cols["user_id"].append(dataset.user_ids[u])
                cols["rank"].append(r + 1)
                cols["item_id"].append(dataset.item_ids[item])
                cols["explaining_rank"].append(j + 1)
                cols["explaining_item_id"].append(dataset.item_ids[e])
                cols["weight"].append(float(weight))
    return pl.DataFrame(cols, schema_overrides={"rank": pl.Int32, "explaining_rank": pl.Int32,
                                                "weight": pl.Float64})


def faithfulness_frame(d: Deletion, dataset: Any) -> pl.DataFrame:
    return pl.DataFrame({"user_id": dataset.user_ids[d.users],
                         **{f"{m}{s}": getattr(d, f"{m}{s}") for m in MEASURES for s in ("", "_random")}})


def add_to_record(record: Any, setup: ExplainSetup, summary: dict[str, Any], method: str) -> None:
    """Flat metrics (higher = more faithful) and the ``explanations`` section."""
    m, prefix = setup.settings.m, f"explain/{setup.name}"
    for measure in MEASURES:
        s = summary[measure]
        for key, value in ((f"{measure}@m{m}", s["explainer"]), (f"{measure}_random@m{m}", s["random"]),
                           (f"{measure}_vs_random@m{m}", s["difference"])):
            record.metrics[f"{prefix}/{key}"] = value
            record.directions[f"{prefix}/{key}"] = True
    record.extra["explanations"] = {"explainer": setup.name, "params": setup.params, "method": method,
                                    "settings": setup.settings.to_dict(), "deletion_test": summary,
                                    "files": {"explanations": FILE, "faithfulness": FAITHFULNESS_FILE,
                                              "report": REPORT_FILE}}
    record.files = {**record.files, "explanations": FILE}


def item_titles(dataset: Any) -> np.ndarray:
    """A display name per item code: the ``title`` feature where the dataset has one, else the raw id."""
    feats = dataset.item_features
    if feats is not None and "title" in feats.columns and feats.height == dataset.n_items:
        return np.array([str(t) if t is not None else str(i) for t, i in zip(feats["title"].to_list(),
                                                                              dataset.item_ids, strict=True)])
    return np.array([str(i) for i in dataset.item_ids])


def render_report(setup: ExplainSetup, method: str, summary: dict[str, Any], sample: pl.DataFrame,
                  titles: dict[Any, str], label: str) -> str:
    """explanations.md: the faithfulness table, then the sample of explained recommendations."""
    s, m = setup.settings, setup.settings.m
    lines = [f"# Explanations: {label}, explainer `{setup.name}`", "", method, "",
             f"## Faithfulness (deletion test, m = {m}, {s.random_draws} random draws)", "",
             f"{summary['users_tested']} user(s) tested ({summary['users_excluded']} without an explained item "
             f"that has more than {m} history items to delete); mean over each user's top {s.items} items.", "",
             "| measure | explainer deletion | random deletion | difference [95% CI] | p (t / W / perm) |",
             "|:---|---:|---:|---:|---:|"]
    for measure in MEASURES:
        t = summary[measure]
        lines.append(f"| {measure.replace('_', ' ')} | {_f(t['explainer'])} | {_f(t['random'])} | "
                     f"{_f(t['difference'])} [{_f(t['ci_low'])}, {_f(t['ci_high'])}] | "
                     f"{_p(t['p_ttest'])} / {_p(t['p_wilcoxon'])} / {_p(t['p_permutation'])} |")
    lines += ["", "## Sample", ""]
    for (user,), part in sample.group_by(["user_id"], maintain_order=True):
        lines += [f"### User {user}", ""]
        for (rank, item), rows in part.group_by(["rank", "item_id"], maintain_order=True):
            why = "; ".join(f"{titles.get(e, e)} ({w:+.3g})"
                            for e, w in zip(rows["explaining_item_id"], rows["weight"], strict=True))
            lines.append(f"{rank}. **{titles.get(item, item)}**, because of: {why}")
        lines.append("")
    return "\n".join(lines)


def _f(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.4g}"


def _p(p: float) -> str:
    return "n/a" if p is None or math.isnan(p) else (f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}")


def run_explanations(setup: ExplainSetup, model: Any, ranking: Any, data: Any, known: Any, art: Any,
                     record: Any, seed: int) -> dict[str, Any]:
    """The whole stage (after ranking: the model is conditioned as for the test ranking); returns the
    deletion test's summary."""
    s = setup.settings
    rows = explained_users(ranking.users, s.users, seed)
    users, items = np.asarray(ranking.users)[rows], np.asarray(ranking.topk)[rows, :s.items].astype(np.int64)
    histories, atts = explain_all(setup, model, users, items)
    deletion = deletion_test(model, users, histories, items, atts, known, s.m, s.random_draws, seed)
    summary = summarize(deletion, seed)
    method = setup.build().describe()
    frame = explanation_frame(users, items, atts, s.keep, data.dataset)
    frame.write_parquet(art.path(FILE))
    faithfulness_frame(deletion, data.dataset).write_parquet(art.path(FAITHFULNESS_FILE))
    sample_users = frame["user_id"].unique(maintain_order=True).head(s.report_users)
    sample = frame.filter(pl.col("user_id").is_in(sample_users.to_list()) & (pl.col("rank") <= s.report_items))
    titles = dict(zip(data.dataset.item_ids.tolist(), item_titles(data.dataset).tolist(), strict=True))
    art.path(REPORT_FILE).write_text(render_report(setup, method, summary, sample, titles, record.label) + "\n")
    add_to_record(record, setup, summary, method)
    return summary
