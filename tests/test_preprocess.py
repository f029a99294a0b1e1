"""Preprocessing against a plain-Python reference: threshold, duplicates, iterative k-core, re-coding."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recux.data import Dataset
from recux.errors import ConfigError, DataError
from recux.preprocess import Preprocess


def make_ds(rows, with_rating=True, with_time=True) -> Dataset:
    cols = {"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows]}
    if with_rating:
        cols["rating"] = [float(r[2]) for r in rows]
    if with_time:
        cols["timestamp"] = [r[3] for r in rows]
    items = pl.DataFrame(
        {"item_id": sorted({r[1] for r in rows}), "title": [f"t{i}" for i in sorted({r[1] for r in rows})]}
    )
    return Dataset.from_frame(
        "toy",
        pl.DataFrame(cols, schema_overrides={"user_id": pl.Int64, "item_id": pl.Int64}),
        item_features=items,
    )


def reference(rows, threshold, min_user, min_item, duplicates):
    """Straightforward implementation with dicts and loops; returns the kept (u, i, r, t) rows."""
    rows = [(u, i, r, t, n) for n, (u, i, r, t) in enumerate(rows)]
    if threshold is not None:
        rows = [x for x in rows if x[2] >= threshold]
    if duplicates in ("keep_last", "keep_first"):
        best = {}
        for x in rows:
            key = (x[0], x[1])
            if key not in best:
                best[key] = x
            else:
                newer = (x[3], x[4]) > (best[key][3], best[key][4])
                if newer == (duplicates == "keep_last"):
                    best[key] = x
        rows = [x for x in rows if best[(x[0], x[1])] is x]
    changed = True
    while changed:
        uc = Counter(x[0] for x in rows)
        ic = Counter(x[1] for x in rows)
        kept = [x for x in rows if uc[x[0]] >= min_user and ic[x[1]] >= min_item]
        changed = len(kept) != len(rows)
        rows = kept
    return sorted((u, i, r, t) for u, i, r, t, _ in rows)


rows_strategy = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 9), st.integers(1, 5), st.integers(0, 6)),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(
    rows=rows_strategy,
    threshold=st.sampled_from([None, 2.0, 3.0, 4.0]),
    min_user=st.integers(0, 4),
    min_item=st.integers(0, 4),
    duplicates=st.sampled_from(["keep_last", "keep_first", "keep_all"]),
)
def test_matches_reference(rows, threshold, min_user, min_item, duplicates):
    expected = reference(rows, threshold, min_user, min_item, duplicates)
    prep = Preprocess(threshold, min_user, min_item, duplicates)
    if not expected:
        with pytest.raises(DataError):
            prep.apply(make_ds(rows))
        return
    out = prep.apply(make_ds(rows))
    got = sorted((u, i, float(r), t) for u, i, r, t in out.to_frame().iter_rows())
    assert got == [(u, i, float(r), t) for u, i, r, t in expected]
    # Dense codes over exactly the surviving users/items, raw ids sorted, features aligned.
    assert out.user_ids.tolist() == sorted({x[0] for x in expected})
    assert out.item_ids.tolist() == sorted({x[1] for x in expected})
    assert out.n_users == len(out.user_ids) and out.n_items == len(out.item_ids)
    assert out.item_features["title"].to_list() == [f"t{i}" for i in out.item_ids.tolist()]
    report = out.info["preprocessing"]
    assert report["after"]["interactions"] == len(expected)
    assert report["before"]["interactions"] == len(rows)
    # The result is a k-core.
    assert np.bincount(out.interactions.user).min() >= min_user
    assert np.bincount(out.interactions.item).min() >= min_item


def test_k_core_needs_several_rounds():
    # Item 8 has one user: dropping it leaves user 3 with one item, dropping user 3 leaves item 9 with one
    # user, which in turn leaves user 4 with one item: four rounds until stable.
    rows = [
        (1, 1, 5, 0),
        (1, 2, 5, 0),
        (2, 1, 5, 0),
        (2, 2, 5, 0),
        (3, 9, 5, 0),
        (3, 8, 5, 0),
        (4, 9, 5, 0),
        (4, 1, 5, 0),
    ]
    out = Preprocess(min_user_interactions=2, min_item_interactions=2).apply(make_ds(rows))
    assert out.user_ids.tolist() == [1, 2] and out.item_ids.tolist() == [1, 2]
    assert sorted(out.to_frame().select("user_id", "item_id").iter_rows()) == [
        (u, i) for u, i, _, _ in reference(rows, None, 2, 2, "keep_last")
    ]
    assert out.info["preprocessing"]["k_core_rounds"] == 4


def test_duplicates_by_timestamp_not_row_order():
    rows = [(1, 1, 5, 30), (1, 1, 2, 10), (1, 1, 3, 20), (2, 1, 4, 0)]
    last = Preprocess(duplicates="keep_last").apply(make_ds(rows))
    first = Preprocess(duplicates="keep_first").apply(make_ds(rows))
    both = Preprocess(duplicates="keep_all").apply(make_ds(rows))
    assert sorted(last.to_frame().iter_rows()) == [(1, 1, 5.0, 30), (2, 1, 4.0, 0)]
    assert sorted(first.to_frame().iter_rows()) == [(1, 1, 2.0, 10), (2, 1, 4.0, 0)]
    assert len(both.interactions) == 4
    assert last.info["preprocessing"]["duplicates_removed"] == 2
    with pytest.raises(DataError, match="repeated.*user 1 and item 1.*keep_last"):
        Preprocess(duplicates="error").apply(make_ds(rows))


def test_defaults_keep_everything_on_ml100k_like_data():
    rng = np.random.default_rng(0)
    rows = list(
        {
            (int(u), int(i)): (int(u), int(i), int(rng.integers(1, 6)), int(t))
            for u, i, t in zip(rng.integers(0, 50, 400), rng.integers(0, 40, 400), range(400), strict=True)
        }.values()
    )
    ds = make_ds(rows)
    out = Preprocess().apply(ds)
    assert len(out.interactions) == len(ds.interactions)
    np.testing.assert_array_equal(out.interactions.user, ds.interactions.user)


def test_errors_name_the_setting():
    rows = [(1, 1, 2, 0), (2, 2, 3, 0)]
    with pytest.raises(DataError, match=r"rating_threshold=4\.0.*1\.\.3|rating_threshold=4\.0.*2\.\.3"):
        Preprocess(rating_threshold=4).apply(make_ds(rows))
    with pytest.raises(DataError, match="min_user_interactions=5.*Lower"):
        Preprocess(min_user_interactions=5).apply(make_ds(rows))
    with pytest.raises(DataError, match="no ratings.*rating_threshold=null"):
        Preprocess(rating_threshold=4).apply(make_ds(rows, with_rating=False))
    with pytest.raises(ConfigError, match="duplicates"):
        Preprocess(duplicates="newest")
    with pytest.raises(ConfigError, match="min_item_interactions"):
        Preprocess(min_item_interactions=-1)


def test_without_timestamps_keep_last_uses_row_order():
    rows = [(1, 1, 5, 0), (1, 1, 2, 0), (2, 1, 4, 0)]
    out = Preprocess().apply(make_ds(rows, with_time=False))
    assert sorted(out.to_frame().iter_rows()) == [(1, 1, 2.0), (2, 1, 4.0)]


def test_hydra_config_builds_defaults():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[1] / "conf" / "preprocess"
    assert instantiate(OmegaConf.load(conf / "default.yaml")) == Preprocess()
    implicit = instantiate(OmegaConf.load(conf / "implicit.yaml"))
    assert implicit.rating_threshold == 4.0 and implicit.min_user_interactions == 5
