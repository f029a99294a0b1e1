"""The leaderboard's UX view (issue 10, section 3): Pareto optimality against a brute-force dominance check, the
UX table of real (tiny, synthetic) runs against plain polars/numpy over their results.json, the Pareto plot
file and link, the W&B table and image, and sections without UX metrics left exactly as they were."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recux.cli.leaderboard import main
from recux.leaderboard import UxConfig, pareto_optimal
from recux.pipeline import run_experiment
from tests._compose import compose_cfg
from tests.test_leaderboard import write_run

PNG = b"\x89PNG\r\n\x1a\n"


def dominated_brute_force(points: np.ndarray, higher: list[bool]) -> list[bool]:
    """Point i is dominated when some j is at least as good on every objective and better on one."""
    out = []
    for i in range(len(points)):
        dominated = False
        for j in range(len(points)):
            ge = [(points[j][d] >= points[i][d]) if h else (points[j][d] <= points[i][d]) for d, h in enumerate(higher)]
            gt = [(points[j][d] > points[i][d]) if h else (points[j][d] < points[i][d]) for d, h in enumerate(higher)]
            dominated |= all(ge) and any(gt)
        out.append(dominated)
    return out


@st.composite
def point_sets(draw):
    d = draw(st.integers(1, 4))
    n = draw(st.integers(1, 14))
    coarse = draw(st.booleans())  # few distinct values: many ties and duplicate points
    values = st.integers(0, 3).map(float) if coarse else st.floats(-1e6, 1e6, allow_nan=False)
    pts = np.array(draw(st.lists(st.lists(values, min_size=d, max_size=d), min_size=n, max_size=n)))
    return pts, draw(st.lists(st.booleans(), min_size=d, max_size=d))


@settings(max_examples=300, deadline=None)
@given(point_sets())
def test_pareto_optimal_is_exactly_the_undominated_points(case):
    pts, higher = case
    got = pareto_optimal(pts, higher)
    assert got.tolist() == [not d for d in dominated_brute_force(pts, higher)]
    assert got.any()  # a finite set always has an optimal point


def test_pareto_refuses_non_finite_or_misshaped_points():
    with pytest.raises(ValueError, match="finite"):
        pareto_optimal(np.array([[1.0, math.nan]]), [True, True])
    with pytest.raises(ValueError, match="one column per direction"):
        pareto_optimal(np.zeros((3, 2)), [True])


# ---- the UX view of real runs --------------------------------------------------------------------------------

WORLD = ["dataset=synthetic", "dataset.n_items=150", "logger=none", "eval.efficiency=false"]  # no serving view
UX_ARGS = ["--metrics", "ndcg@10,recall@10", "--ux-metrics", "ndcg@10,novelty@10,ild@10,arp@10,coverage@10,gini@10",
           "--ux-pareto", "ild@10|novelty@10,arp@10"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """World A (120 users, the default metric set: novelty, arp, coverage, gini besides accuracy): 4 models x 2
    seeds; world B (100 users, accuracy metrics only): 2 models x 1 seed. Two sections of one dataset."""
    root = tmp_path_factory.mktemp("ux") / "runs"
    plan = [("a", ["dataset.n_users=120"], ("pop", "itemknn", "random", "ease"), (0, 1)),
            ("b", ["dataset.n_users=100", "metrics=accuracy"], ("pop", "itemknn"), (0,))]  # fmt: skip
    for world, extra, models, seeds in plan:
        for model in models:
            for seed in seeds:
                overrides = [*WORLD, *extra, f"model={model}", f"seed={seed}"]
                run_experiment(compose_cfg(overrides), root / f"{world}_{model}_{seed}", overrides)
    return root


def cli(tmp_path: Path, roots, *args: str, name: str = "lb") -> Path:
    out = tmp_path / name
    assert main([*map(str, roots), "--out", str(out), "--no-wandb", *args]) == 0
    return out


def ux_blocks(md: str) -> dict[str, str]:
    """Section heading -> the text of its "### UX view" block (sections without one are absent)."""
    out = {}
    for section in md.split("\n## ")[1:]:
        heading, _, body = section.partition("\n")
        if "\n### UX view\n" in body:
            out[heading] = body.split("\n### UX view\n", 1)[1]
    return out


def md_table(block: str) -> tuple[list[str], list[list[str]]]:
    lines = [ln for ln in block.splitlines() if ln.startswith("| ")]
    split = lambda ln: [c.strip() for c in ln.strip().strip("|").split(" | ")]  # noqa: E731
    return split(lines[0]), [split(ln) for ln in lines[1:]]


def without_ux_blocks(md: str) -> str:
    """The Markdown with every UX block (heading to the end of its section) and the Built line removed."""
    md = re.sub(r"\n\n### UX view\n.*?(?=\n\n## |\Z)", "", md, flags=re.S)
    return "\n".join(ln for ln in md.splitlines() if not ln.startswith("Built "))


def results_frame(root: Path) -> pl.DataFrame:
    """One row per run: label, n_users and every numeric metric, read straight from results.json."""
    rows = []
    for path in sorted(root.rglob("results.json")):
        data = json.loads(path.read_text())
        rows.append({"label": data["label"], "n_users": data["dataset"]["n_users"], **data["metrics"],
                     "_directions": json.dumps(data["directions"])})  # fmt: skip
    return pl.DataFrame(rows, infer_schema_length=None)


def test_ux_view_means_equal_polars_over_results_json(runs, tmp_path):
    out = cli(tmp_path, [runs], *UX_ARGS)
    md = (out / "synthetic.md").read_text()
    blocks = ux_blocks(md)
    assert len(blocks) == 1  # world B has no UX metric beyond its accuracy table
    block = next(iter(blocks.values()))
    header, rows = md_table(block)
    frame = results_frame(runs).filter(pl.col("n_users") == 120)
    directions = json.loads(frame["_directions"][0])
    cols = ["ndcg@10", "novelty@10", "arp@10", "coverage@10", "gini@10"]  # configured order; ild@10 is absent
    assert header == ["#", "Variant", *[f"{m} {'↑' if directions[m] else '↓'}" for m in cols], "n seeds",
                      "Pareto-optimal (ndcg@10 vs)"]  # fmt: skip
    stats = frame.group_by("label").agg(
        *[pl.col(m).mean().alias(f"{m}_mean") for m in cols], *[pl.col(m).std(ddof=1).alias(f"{m}_std") for m in cols]
    )
    by_label = {r["label"]: r for r in stats.iter_rows(named=True)}
    assert sorted(r[1] for r in rows) == sorted(by_label) == ["ease", "itemknn", "pop", "random"]
    for j, m in enumerate(cols, start=2):
        best = (max if directions[m] else min)(r[f"{m}_mean"] for r in by_label.values())
        for row in rows:
            s = by_label[row[1]]
            assert row[j].replace("**", "") == f"{s[f'{m}_mean']:.4f} ± {s[f'{m}_std']:.4f}", (m, row)
            assert row[j].startswith("**") == (s[f"{m}_mean"] == best), (m, row)
    # Pareto: ndcg@10 against novelty@10 (ild@10, the first choice, is absent) and arp@10, by brute force
    for row in rows:
        expected = []
        for m in ("novelty@10", "arp@10"):
            pts = np.array([[by_label[r[1]]["ndcg@10_mean"], by_label[r[1]][f"{m}_mean"]] for r in rows])
            if not dominated_brute_force(pts, [True, directions[m]])[[r[1] for r in rows].index(row[1])]:
                expected.append(m)
        assert row[-1] == (", ".join(expected) or "—")
    # the plot: one PNG for the section with a UX view, linked from it and listed in the manifest
    pngs = sorted(p.name for p in out.glob("*_ux_*.png"))
    assert len(pngs) == 1 and (out / pngs[0]).read_bytes()[:8] == PNG
    assert f"]({pngs[0]})" in block
    assert pngs[0] in json.loads((out / "synthetic.manifest.json").read_text())["files"]


def test_ux_view_only_adds_a_block_and_default_runs_get_none(runs, tmp_path):
    with_ux = (cli(tmp_path, [runs], *UX_ARGS, name="ux") / "synthetic.md").read_text()
    no_ux = (cli(tmp_path, [runs], *UX_ARGS, "--no-ux", name="noux") / "synthetic.md").read_text()
    assert ux_blocks(with_ux) and not ux_blocks(no_ux)
    assert without_ux_blocks(with_ux) == without_ux_blocks(no_ux)
    # the default columns show novelty/arp/coverage/gini already: no UX view, no UX plot, same files as --no-ux
    default = cli(tmp_path, [runs], name="default")
    plain = cli(tmp_path, [runs], "--no-ux", name="plain")
    assert sorted(p.name for p in default.iterdir()) == sorted(p.name for p in plain.iterdir())
    assert not list(default.glob("*_ux_*"))
    drop_built = lambda p: [ln for ln in p.read_text().splitlines() if not ln.startswith("Built ")]  # noqa: E731
    assert drop_built(default / "synthetic.md") == drop_built(plain / "synthetic.md")
    assert (default / "synthetic.csv").read_bytes() == (plain / "synthetic.csv").read_bytes()


def test_no_plots_means_no_link_and_bad_ux_options_exit_2(runs, tmp_path, capsys):
    out = cli(tmp_path, [runs], *UX_ARGS, "--no-plots")
    (block,) = ux_blocks((out / "synthetic.md").read_text()).values()
    assert "](" not in block and not list(out.glob("*.png"))
    assert main([str(runs), "--out", str(tmp_path / "x"), "--no-wandb", "--ux-metrics", " , "]) == 2
    assert "--ux-metrics" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# ---- the agreed UX metric names (written by hand: the metrics are on other branches) --------------------------


def test_default_ux_columns_directions_and_semantic_ild_fallback(tmp_path):
    """Runs recording the agreed issue-10 names without their directions: the default view shows them in the
    default order; gaps and miscalibration count as lower-is-better; semantic_ild@10 stands in for ild@10."""
    rng = np.random.default_rng(3)
    names = ["semantic_ild@10", "miscalibration@10", "aplt@10", "personalisation@10",
             "fairness/activity/gap/ndcg@10", "fairness/gender/gap/ndcg@10"]  # fmt: skip
    values = {}
    for label in ("a", "b", "c"):
        for seed in (0, 1):
            m = {"ndcg@10": float(rng.uniform(0.1, 0.4)), **{n: float(rng.uniform(0, 1)) for n in names}}
            values[label, seed] = m
            write_run(tmp_path / "runs", label=label, vhash=f"{label:0<12}", seed=seed, metrics=m)
    out = cli(tmp_path, [tmp_path / "runs"])
    (block,) = ux_blocks((out / "toy.md").read_text()).values()
    header, rows = md_table(block)
    lower = {"miscalibration@10", "fairness/activity/gap/ndcg@10", "fairness/gender/gap/ndcg@10"}
    assert header[2:-2] == [f"{m} {'↓' if m in lower else '↑'}" for m in ["ndcg@10", *names]]
    for j, m in enumerate(["ndcg@10", *names], start=2):
        means = {lab: np.mean([values[lab, s][m] for s in (0, 1)]) for lab in "abc"}
        best = (min if m in lower else max)(means.values())
        assert [r[j].startswith("**") for r in rows] == [means[r[1]] == best for r in rows]
    assert header[-1] == "Pareto-optimal (ndcg@10 vs)"
    assert len(list(out.glob("toy_ux_*.png"))) == 1 and "semantic_ild@10, miscalibration@10, aplt@10" in block
    cfg = UxConfig.from_options(None, "ild@10|semantic_ild@10, aplt@10")
    assert cfg.pareto == (("ild@10", "semantic_ild@10"), ("aplt@10",)) and cfg.accuracy == "ndcg@10"


def test_wandb_gets_the_ux_table_and_pareto_plot(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "lb"
    assert main([str(runs), "--out", str(out), *UX_ARGS]) == 0
    tables = {p: json.loads(p.read_text()) for p in (out / ".wandb").rglob("*.table.json")}
    ux_tables = [t for path, t in tables.items() if "leaderboard_ux" in path.parts]
    assert len(tables) == 3 and len(ux_tables) == 1  # two sections' leaderboards, one UX view
    (ux,) = ux_tables
    csv = pl.read_csv(out / "synthetic.csv")
    for row in ux["data"]:
        rec = dict(zip(ux["columns"], row, strict=True))
        ref = csv.filter(pl.col("variant") == rec["variant"]).row(0, named=True)
        assert rec["novelty@10_mean"] == pytest.approx(ref["novelty@10_mean"], rel=1e-12)
    images = list((out / ".wandb").rglob("media/images/**/*.png"))
    assert len(images) == 1 and images[0].read_bytes()[:8] == PNG
    assert "WANDB_DIR" not in os.environ
