"""The replay task: requests and their histories against a plain-Python construction (no leakage), windows that
partition the requests, drift measures against hand computation and scipy, alerts that fire exactly past their
thresholds, windowed metrics against a plain-Python recomputation, and the whole task from the config."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from scipy.spatial.distance import jensenshannon

from recux import registry
from recux.data import Interactions, Split
from recux.errors import ConfigError
from recux.model import Recommender
from recux.pipeline import run_experiment
from recux.plugins.tasks import _replay_monitor as mon
from recux.plugins.tasks._replay_stream import assign_windows, build_stream, micro_batches, parse_span, serve
from recux.stages import RunSpec, prepare_data
from tests._compose import compose_cfg

WORLD = ["dataset=synthetic", "dataset.n_users=120", "dataset.n_items=50", "logger=none",
         "trainer.enable_progress_bar=false", "task=replay", "split=global_temporal", "task.window.size=40",
         "task.warmup=0", "task.alert_min_requests=0"]


def _split(seed=0, n_users=12, n_items=15, n=160, span=40) -> Split:
    """A small log with many timestamp ties, cut in time: the latest quarter is test, the one before valid."""
    rng = np.random.default_rng(seed)
    inter = Interactions(user=rng.integers(0, n_users, n), item=rng.integers(0, n_items, n), n_users=n_users,
                         n_items=n_items, timestamp=rng.integers(0, span, n))
    ts = inter.timestamp
    part = np.where(ts < span // 2, 0, np.where(ts < 3 * span // 4, 1, 2))
    return Split(*(inter.subset(np.flatnonzero(part == p)) for p in range(3)), protocol="test",
                 time_ordered=True)


def _rows(split: Split):
    """Every (user, item, timestamp) row of the split, as plain tuples."""
    out = []
    for part in (split.train, split.valid, split.test):
        out += list(zip(part.user.tolist(), part.item.tolist(), part.timestamp.tolist(), strict=True))
    return out


# ---------------------------------------------------------------------------------------------------- requests


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_requests_targets_and_histories_match_a_plain_construction(seed):
    split = _split(seed)
    stream = build_stream(split)
    test = list(zip(split.test.user.tolist(), split.test.item.tolist(), split.test.timestamp.tolist(),
                    strict=True))
    expected = sorted({(t, u) for u, _, t in test})  # replay order: time, then user
    assert list(zip(stream.ts.tolist(), stream.user.tolist(), strict=True)) == expected
    every = _rows(split)
    history = stream.history_csr()
    for r, (t, u) in enumerate(expected):
        targets = {i for uu, i, tt in test if (uu, tt) == (u, t)}
        assert set(stream.targets[r].indices.tolist()) == targets
        rows = stream.history_rows(np.array([r]))
        seen = sorted(zip(stream.log.item[rows].tolist(), stream.log.timestamp[rows].tolist(), strict=True))
        assert seen == sorted((i, tt) for uu, i, tt in every if uu == u and tt < t)  # strictly before t
        assert (stream.log.user[rows] == u).all()
        assert set(history[r].indices.tolist()) == {i for i, _ in seen}
        assert stream.history_len[r] == len(seen)


class _Recorder(Recommender):
    """Ranks the items after the largest item code in the user's conditioned history first (cyclically), and
    records each scoring call: the users and the rows it could see."""

    def __init__(self, n_users, n_items):
        self.n_users, self.n_items, self.calls, self.hist = n_users, n_items, [], None

    def fit(self, ctx):
        raise AssertionError("the replay never refits")

    def condition_on(self, history):
        self.hist = history

    def score(self, users):
        self.calls.append((users.copy(), self.hist))
        last = np.array([self.hist.item[self.hist.user == u].max(initial=-1) for u in users])
        return -((np.arange(self.n_items)[None, :] - last[:, None] - 1) % self.n_items).astype(np.float32)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_serving_conditions_each_request_on_exactly_its_past(batch_size):
    split = _split(3)
    stream = build_stream(split)
    model = _Recorder(split.train.n_users, split.train.n_items)
    served = serve(model, stream, stream.history_csr(), k=5, batch_size=batch_size, warmup=0)
    every = _rows(split)
    r = 0
    for users, hist in model.calls:
        assert len(set(users.tolist())) == len(users) <= batch_size  # no user twice in a micro-batch
        for u in users.tolist():
            t = int(stream.ts[r])
            assert stream.user[r] == u
            seen = sorted(zip(hist.item[hist.user == u].tolist(), hist.timestamp[hist.user == u].tolist(),
                              strict=True))
            assert seen == sorted((i, tt) for uu, i, tt in every if uu == u and tt < t)  # nothing at or after t
            r += 1
    assert r == len(stream)
    # the answers: the model's rule over the plain history, the history masked, -1 padding when fewer than 5
    n = split.train.n_items
    for r, (u, t) in enumerate(zip(stream.user.tolist(), stream.ts.tolist(), strict=True)):
        seen = {i for uu, i, tt in every if uu == u and tt < t}
        top = sorted((i for i in range(n) if i not in seen), key=lambda i: (i - max(seen, default=-1) - 1) % n)
        assert served.topk[r].tolist() == (top + [-1] * 5)[:5]


def test_micro_batches_are_consecutive_bounded_and_never_repeat_a_user():
    users = np.array([0, 1, 0, 2, 3, 4, 5, 5, 1])
    batches = micro_batches(users, 3)
    assert batches == [(0, 2), (2, 5), (5, 7), (7, 9)]


# ---------------------------------------------------------------------------------------------------- windows


@pytest.mark.parametrize(("n", "size"), [(333, 1), (333, 7), (333, 50), (333, 500), (701, 100), (749, 100),
                                         (750, 100), (800, 100)])
def test_request_windows_partition_the_requests_in_order(n, size):
    ts = np.sort(np.random.default_rng(0).integers(0, 1000, n))
    window, starts = assign_windows(ts, "requests", size)
    assert starts is None
    sizes = np.bincount(window)
    assert sizes.sum() == n and (sizes > 0).all() and (np.diff(window) >= 0).all()  # consecutive blocks
    # plain rule: blocks of `size`; a remainder under half a block joins the last full block
    full, rest = divmod(n, size)
    expected = [size] * full + [rest] if rest >= size / 2 or not full else [size] * (full - 1) + [size + rest]
    assert sizes.tolist() == [s for s in expected if s]


@pytest.mark.parametrize("span", [1, 37, 400, "1h"])
def test_time_windows_partition_the_requests_by_span(span):
    ts = np.sort(np.random.default_rng(1).integers(0, 5000, 300)) + 10**9
    window, starts = assign_windows(ts, "time", span)
    seconds = parse_span(span)
    # plain rule: request r is in the span floor((t_r - t_0) / seconds); empty spans are dropped
    spans = [(t - int(ts[0])) // seconds for t in ts.tolist()]
    dense = {s: w for w, s in enumerate(sorted(set(spans)))}
    assert window.tolist() == [dense[s] for s in spans]
    for w, start in enumerate(starts.tolist()):
        inside = ts[window == w]
        assert len(inside) and (inside >= start).all() and (inside < start + seconds).all()


def test_parse_span_units_and_refusals():
    assert [parse_span(x) for x in (90, "90s", "2m", "3h", "7d", "1w")] == [90, 90, 120, 10800, 604800, 604800]
    for bad in ("7 days", "0d", -5, "x"):
        with pytest.raises(ConfigError, match="task.window.size"):
            parse_span(bad)
    with pytest.raises(ConfigError, match="task.window.by"):
        assign_windows(np.zeros(3, np.int64), "sessions", 10)
    with pytest.raises(ConfigError, match="positive number of requests"):
        assign_windows(np.zeros(3, np.int64), "requests", "7d")


# ---------------------------------------------------------------------------------------------------- drift


def test_drift_is_zero_for_identical_distributions():
    for counts, eps in ((np.array([3.0, 1.0, 5.0, 2.0]), 0.0), (np.array([3.0, 0.0, 5.0, 2.0]), 1e-4)):
        d = mon.drift(counts, counts, eps)
        assert d == {"psi": 0.0, "kl": 0.0, "js": 0.0}
    assert mon.drift(np.array([3.0, 1.0]), np.array([6.0, 2.0]), 0.0) == pytest.approx(  # shares are what count
        {"psi": 0.0, "kl": 0.0, "js": 0.0}, abs=1e-15)


def test_drift_equals_hand_computed_values():
    p, q = np.array([1.0, 1.0]), np.array([9.0, 1.0])  # shares 0.5/0.5 against 0.9/0.1
    kl_pq = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    kl_qp = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert mon.kl(p, q) == pytest.approx(kl_pq, rel=1e-12)
    assert mon.psi(p, q) == pytest.approx((0.5 - 0.9) * math.log(0.5 / 0.9) + (0.5 - 0.1) * math.log(0.5 / 0.1))
    assert mon.psi(p, q) == pytest.approx(kl_pq + kl_qp)  # PSI is the symmetrised KL
    m = np.array([0.7, 0.3])
    js = (0.5 * (0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3))
          + 0.5 * (0.9 * math.log(0.9 / 0.7) + 0.1 * math.log(0.1 / 0.3))) / math.log(2)
    assert mon.js(p, q) == pytest.approx(js, rel=1e-12)
    assert mon.js(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, rel=1e-9)
    assert m.sum() == 1.0


def test_smoothing_keeps_empty_bins_finite_and_histogram_counts_each_value_once():
    assert math.isfinite(mon.psi(np.array([4.0, 0.0]), np.array([0.0, 4.0]), eps=1e-4))
    values = np.array([0, 1, 1, 2, 5, 9, 9, 12])
    edges = np.array([1.0, 5.0, 9.0])
    plain = [sum(v < 1 for v in values), sum(1 <= v < 5 for v in values), sum(5 <= v < 9 for v in values),
             sum(v >= 9 for v in values)]
    assert mon.histogram(values, edges).tolist() == plain
    assert math.isnan(mon.drift(np.zeros(3), np.ones(3), 1e-4)["psi"])  # an empty window: no value


# ---------------------------------------------------------------------------------------------------- alerts


def _table(values, column="ndcg@10"):
    return [{"window": w, column: v} for w, v in enumerate(values)]


def test_an_above_alert_fires_exactly_past_its_bound():
    bound = 100.0
    rows = _table([bound, np.nextafter(bound, np.inf), 99.0, math.nan, 250.0], "latency_p99_ms")
    alert = mon.Alert.of("lat", {"column": "latency_p99_ms", "above": bound})
    fired, bounds = mon.apply_alerts([alert], rows, {})
    assert [f["window"] for f in fired] == [1, 4] and bounds == {"latency_p99_ms": [bound]}
    assert [r["alert"] for r in rows] == [False, True, False, False, True]
    assert rows[1]["alerts"] == "lat" and rows[0]["alerts"] == ""


def test_drop_alerts_compare_with_the_first_window_or_the_validation_value():
    first = 0.2
    edge = (1 - 0.25) * first
    rows = _table([first, edge, np.nextafter(edge, 0), 0.19, 0.01])
    drop = mon.Alert.of("drop", {"column": "ndcg@10", "drop": 0.25, "reference": "first_window"})
    fired, _ = mon.apply_alerts([drop], rows, {})
    assert [f["window"] for f in fired] == [2, 4]
    assert fired[0]["threshold"] == pytest.approx(edge)
    val = mon.Alert.of("val", {"column": "ndcg@10", "drop": 0.5, "reference": "validation"})
    fired, _ = mon.apply_alerts([val, drop], rows, {"ndcg@10": 0.4})  # bound 0.2: only values below it
    assert sorted((f["alert"], f["window"]) for f in fired) == [("drop", 2), ("drop", 4), ("val", 1), ("val", 2),
                                                                   ("val", 3), ("val", 4)]
    assert rows[2]["alerts"] == "val,drop"
    below = mon.Alert.of("low", {"column": "ndcg@10", "below": 0.19})
    assert [f["window"] for f in mon.apply_alerts([below], rows, {})[0]] == [1, 2, 4]
    for w, row in enumerate(rows):  # windows with fewer requests than the minimum stay quiet
        row["n_requests"] = 10 * w
    assert [f["window"] for f in mon.apply_alerts([below], rows, {}, min_requests=20)[0]] == [2, 4]
    assert [f["window"] for f in mon.apply_alerts([below], rows, {}, min_requests=21)[0]] == [4]


@pytest.mark.parametrize("rule", [{"column": "x"}, {"column": "x", "above": 1, "below": 0}, {"above": 1},
                                  {"column": "x", "drop": 1.5}, {"column": "x", "drop": 0.1, "reference": "last"},
                                  {"column": "x", "above": 1, "bound": 2}])
def test_malformed_alert_rules_are_refused(rule):
    with pytest.raises(ConfigError, match="task.alerts.a"):
        mon.Alert.of("a", rule)


# ---------------------------------------------------------------------------------------------------- the task


def _replay(tmp_path, extra, name="run"):
    cfg = compose_cfg(WORLD + extra)
    return run_experiment(cfg, tmp_path / name), tmp_path / name, cfg


def _plain_window_metrics(requests: pl.DataFrame, test: pl.DataFrame, k: int, n_items: int) -> list[dict]:
    """hit/recall/ndcg@k (mean over requests) and coverage@k of each window, from the saved lists and the test
    split, in plain Python."""
    targets: dict = {}
    for u, i, t in test.select("user_id", "item_id", "timestamp").iter_rows():
        targets.setdefault((u, t), set()).add(i)
    out = []
    for w in sorted(set(requests["window"].to_list())):
        part = requests.filter(pl.col("window") == w)
        hit, recall, ndcg, shown = [], [], [], set()
        for u, t, top in part.select("user_id", "timestamp", "topk").iter_rows():
            top, rel = list(top)[:k], targets[(u, t)]
            gains = [1 / math.log2(r + 2) for r, i in enumerate(top) if i in rel]
            ideal = sum(1 / math.log2(r + 2) for r in range(min(len(rel), k)))
            hit.append(float(bool(gains)))
            recall.append(len(gains) / len(rel))
            ndcg.append(sum(gains) / ideal)
            shown |= set(top)
        out.append({"hit": np.mean(hit), "recall": np.mean(recall), "ndcg": np.mean(ndcg),
                    "coverage": len(shown) / n_items, "n": part.height})
    return out


@pytest.mark.parametrize("model", ["pop", "ease"])
def test_window_metrics_equal_a_plain_recomputation(tmp_path, model):
    record, run_dir, _ = _replay(tmp_path, [f"model={model}"])
    requests = pl.read_parquet(run_dir / "replay_requests.parquet")
    windows = pl.read_parquet(run_dir / "replay_windows.parquet")
    test = pl.read_parquet(run_dir / "split" / "test.parquet")
    assert windows.height == record["replay"]["n_windows"] == math.ceil(requests.height / 40)
    assert windows["n_requests"].sum() == requests.height == record["replay"]["n_requests"]
    for k in (5, 10):
        plain = _plain_window_metrics(requests, test, k, record["dataset"]["n_items"])
        for row, ref in zip(windows.iter_rows(named=True), plain, strict=True):
            assert row["n_requests"] == ref["n"]
            for m in ("hit", "recall", "ndcg", "coverage"):
                assert row[f"{m}@{k}"] == pytest.approx(ref[m], abs=1e-9), (m, k, row["window"])
    # the whole replay's metrics: every request as one window
    (whole,) = _plain_window_metrics(requests.with_columns(window=pl.lit(0)), test, 10, record["dataset"]["n_items"])
    for m in ("hit", "recall", "ndcg", "coverage"):
        assert record["metrics"][f"{m}@10"] == pytest.approx(whole[m], abs=1e-9)


class _Spy(Recommender):
    """Popularity that records what it was fitted on and what it was conditioned on at every scoring call."""

    runs: list = []

    def fit(self, ctx):
        self.n_users, self.n_items = ctx.split.train.n_users, ctx.split.train.n_items
        self.fitted_on, self.calls, self.hist = ctx.split.train, [], None
        self.pop = np.bincount(ctx.split.train.item, minlength=self.n_items).astype(np.float32)
        _Spy.runs.append(self)

    def condition_on(self, history):
        self.hist = history

    def score(self, users):
        self.calls.append((users.copy(), self.hist))
        return np.tile(self.pop, (len(users), 1))


def test_the_model_is_fitted_on_train_only_and_never_sees_a_request_future(tmp_path, monkeypatch):
    registry.get("model", "pop")  # plugins loaded before the stand-in entry is added
    monkeypatch.setitem(registry._REGISTRY["model"], "replay_spy",
                        registry.PluginInfo("model", "replay_spy", _Spy, "spy", {"training": "closed_form"}))
    _Spy.runs.clear()
    record, run_dir, cfg = _replay(tmp_path, ["model=pop", "model.name=replay_spy", "task.warmup=3"])
    (spy,) = _Spy.runs
    split = prepare_data(RunSpec.from_config(cfg)).split  # the same seeded split, rebuilt
    fitted = sorted(zip(spy.fitted_on.user.tolist(), spy.fitted_on.item.tolist(),
                        spy.fitted_on.timestamp.tolist(), strict=True))
    assert fitted == sorted(zip(split.train.user.tolist(), split.train.item.tolist(),
                                split.train.timestamp.tolist(), strict=True))
    assert split.train.timestamp.max() < split.test.timestamp.min()
    stream, valid = build_stream(split), build_stream(split, "valid")
    assert len(stream) == record["replay"]["n_requests"]
    assert len(valid) == record["replay"]["validation"]["n_requests"] > 0
    conditioned = [c for c in spy.calls if c[1] is not None]  # not the fit's validation (before any conditioning)
    # first the validation period's replay: each request sees only rows before it, never a test row
    for r, (users, hist) in enumerate(conditioned[:len(valid)]):
        assert users.tolist() == [valid.user[r]]
        assert hist.timestamp.max(initial=-1) < min(valid.ts[r], split.test.timestamp.min())
    # then the 3 untimed warm-up requests and the replay (the record's own validation comes after)
    calls = conditioned[len(valid) + 3:len(valid) + 3 + len(stream)]
    for r, (users, hist) in enumerate(calls):
        assert users.tolist() == [stream.user[r]]
        assert hist.timestamp[hist.user == users[0]].max(initial=-1) < stream.ts[r]  # nothing at or after t
        own = hist.user == users[0]
        assert own.sum() == stream.history_len[r]  # and everything before it
    # recommendations never repeat what the user consumed before the request
    requests = pl.read_parquet(run_dir / "replay_requests.parquet")
    everything = pl.concat([pl.read_parquet(run_dir / "split" / f"{p}.parquet") for p in ("train", "valid", "test")])
    for u, t, top in requests.select("user_id", "timestamp", "topk").iter_rows():
        before = set(everything.filter((pl.col("user_id") == u) & (pl.col("timestamp") < t))["item_id"].to_list())
        assert not before & set(top)


def test_the_task_composes_runs_end_to_end_and_writes_its_outputs(tmp_path, recorder):
    record, run_dir, _ = _replay(tmp_path, ["model=sasrec", "model.max_epochs=2", "model.hidden_size=16",
                                            "model.inner_size=16", "logger=wandb", "task.window.size=60",
                                            "task.alerts.latency_p99.above=0"])
    for name in ("replay_windows.parquet", "replay_windows.csv", "replay_requests.parquet", "replay_metrics.png",
                 "replay_drift.png", "replay_latency.png", "replay_report.md", "results.json"):
        assert (run_dir / name).stat().st_size > 0, name
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["task"] == "replay" and saved["replay"]["n_windows"] == record["replay"]["n_windows"]
    windows = pl.read_csv(run_dir / "replay_windows.csv")
    assert windows.height == saved["replay"]["n_windows"] == math.ceil(saved["replay"]["n_requests"] / 60)
    # latency above 0 ms in every window: the alert fires everywhere, and the report lists it
    assert saved["replay"]["alert_windows"] == list(range(windows.height))
    assert windows["alert"].to_list() == [True] * windows.height
    assert "latency_p99" in (run_dir / "replay_report.md").read_text()
    # W&B: one log step per window (after the training epochs), the whole replay in the summary
    (wb,) = recorder.runs
    steps = [r for r in wb.logged if "replay/window" in r]
    assert [r["replay/window"] for r in steps] == list(range(windows.height))
    assert [r["replay/ndcg@10"] for r in steps] == pytest.approx(windows["ndcg@10"].to_list())
    assert wb.summary["test/ndcg@10"] == pytest.approx(saved["metrics"]["ndcg@10"])
    assert wb.summary["replay/n_alert_windows"] == windows.height


@pytest.mark.parametrize(("extra", "match"), [
    (["split=random"], "not time-ordered"),
    (["task.window.by=sessions"], "task.window.by"),
    (["task.alerts.latency_p99.column=latency_p95_ms"], "not a window column"),
    (["task.alerts.below_validation.column=latency_p99_ms"], "validation value"),
    (["+task.alerts.two={column: ndcg@10, above: 1, below: 0}"], "exactly one of"),
    (["metrics=graded"], "graded"),
])
def test_bad_settings_are_refused_before_fitting(tmp_path, extra, match):
    with pytest.raises(ConfigError, match=match):
        _replay(tmp_path, ["model=pop", *extra])
