"""The Open Bandit Dataset plugin: preprocessing against pandas/scikit-learn (OBP's own steps), checksum refusal
of a modified cache, clear errors, and (with the network) the verified small sample from the obp wheel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from sklearn.preprocessing import LabelEncoder

from recux.download import ChecksumError
from recux.errors import DataError, DataUnavailableError
from recux.plugins.datasets import obd
from recux.plugins.datasets.obd import OpenBanditDataset

PRIOR = "all:\n  alpha: [2.0, 3.0, 4.0]\n  beta: [5.0, 6.0, 7.0]\n"


def _log_csv(seed: int, n: int = 40) -> str:
    rng = np.random.default_rng(seed)
    stamps = [f"2019-11-24 00:00:{s:02d}.000000+00:00" for s in rng.permutation(60)[:n]]  # unsorted, distinct
    rows = [",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,"
            "user_feature_2,user_feature_3,user-item_affinity_0"]
    for i in range(n):
        feats = [f"u{j}{rng.choice(['b', 'a', 'c'])}" for j in range(4)]
        rows.append(f"{i},{stamps[i]},{rng.integers(0, 3)},{rng.integers(1, 4)},{rng.integers(0, 2)},"
                    f"{rng.choice([0.1, 0.2])},{','.join(feats)},0.0")
    return "\n".join(rows) + "\n"


ITEMS = (",item_id,item_feature_0,item_feature_1,item_feature_2,item_feature_3\n"
         "0,0,-0.5,zz,k1,m\n1,1,0.25,aa,k2,m\n2,2,1.5,zz,k1,n\n")


def _write_folder(root, seed=0):
    for policy in ("random", "bts"):
        folder = root / policy / "all"
        folder.mkdir(parents=True)
        (folder / "all.csv").write_text(_log_csv(seed + (policy == "bts")))
        (folder / "item_context.csv").write_text(ITEMS)
    (root / "prior_bts.yaml").write_text(PRIOR)


def test_preprocessing_matches_obps_pandas_steps(tmp_path):
    _write_folder(tmp_path)
    logs = OpenBanditDataset(path=str(tmp_path)).load()
    raw = pd.read_csv(tmp_path / "random" / "all" / "all.csv", index_col=0).sort_values("timestamp")
    got = logs["random"]
    want_context = pd.get_dummies(raw.loc[:, raw.columns.str.contains("user_feature")], drop_first=True).values
    np.testing.assert_array_equal(got.context, want_context.astype(float))
    np.testing.assert_array_equal(got.action, raw["item_id"].values)
    np.testing.assert_array_equal(got.position, (rankdata(raw["position"].values, "dense") - 1).astype(int))
    np.testing.assert_array_equal(got.reward, raw["click"].values)
    np.testing.assert_array_equal(got.pscore, raw["propensity_score"].values)
    items = pd.read_csv(tmp_path / "random" / "all" / "item_context.csv", index_col=0)
    cat = items.drop(columns=["item_id", "item_feature_0"]).apply(LabelEncoder().fit_transform)
    want_items = pd.concat([cat, items["item_feature_0"].to_frame()], axis=1).values
    np.testing.assert_array_equal(got.action_context, want_items.astype(float))
    assert (got.n_actions, got.len_list, got.policy, got.campaign) == (3, 3, "random", "all")
    np.testing.assert_array_equal(logs.priors["bts"]["alpha"], [2.0, 3.0, 4.0])
    assert logs.info["sha256_verified"] is False  # not the pinned files


def test_a_modified_cache_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RECUX_DATA", str(tmp_path))
    cache = tmp_path / "obd" / "small"
    _write_folder(cache)  # files at the cache's paths, but not the pinned ones
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        OpenBanditDataset(download=False).load()


def test_nothing_cached_and_no_download_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("RECUX_DATA", str(tmp_path))
    with pytest.raises(DataUnavailableError, match="dataset.path"):
        OpenBanditDataset(download=False).load()
    with pytest.raises(DataUnavailableError, match="full_sha256"):
        OpenBanditDataset(version="full").load()


def test_bad_settings_and_paths(tmp_path):
    with pytest.raises(ValueError, match="campaign"):
        OpenBanditDataset(campaign="kids")
    with pytest.raises(DataError, match="random/ and bts/"):
        OpenBanditDataset(path=str(tmp_path)).load()


@pytest.mark.network("package-index")
def test_verified_small_sample_from_the_obp_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("RECUX_DATA", str(tmp_path))
    logs = OpenBanditDataset(source="pypi", campaign="men").load()
    assert logs.info["sha256_verified"] is True
    assert logs.info["sha256"]["random/men/men.csv"] == obd.SMALL_SHA256["random/men/men.csv"]
    for policy in ("random", "bts"):
        assert logs[policy].n_rounds == 10_000 and logs[policy].len_list == 3  # the sample's documented size
    assert np.allclose(logs["random"].pscore, 1 / logs["random"].n_actions)  # uniform: 1/n_items per slot
    assert OpenBanditDataset(download=False, campaign="men").load().info["source"] == "cache"
