"""run.init_from through the pipeline: the starting weights are part of the variant (the runs of every seed
that start from the same source variant are one variant, apart from a run without them), the label names the
source, and the run really starts from the file's weights."""

from __future__ import annotations

import pytest

from recux.errors import ConfigError
from tests._compose import run_record

WORLD = ["dataset=synthetic", "dataset.n_users=80", "dataset.n_items=40", "logger=none",
         "trainer.enable_progress_bar=false", "model=bpr", "model.num_threads=1", "model.embedding_dim=8"]


def _run(tmp_path, name, extra):
    return run_record(WORLD + extra, tmp_path / name)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sources")
    out = {}
    for seed in (0, 1):
        out[seed] = _run(tmp, f"src{seed}", [f"seed={seed}", "model.max_epochs=2", "run.save_model=true"])
        out[seed]["model_file"] = str(tmp / f"src{seed}" / "model.pkl")
    out["other"] = _run(tmp, "other", ["model.max_epochs=1", "model.lr=0.05", "run.save_model=true"])
    out["other"]["model_file"] = str(tmp / "other" / "model.pkl")
    return out


def test_seeds_from_one_source_variant_are_one_variant_apart_from_fresh_starts(tmp_path, sources):
    warm = [_run(tmp_path, f"w{s}", [f"seed={s}", "+trainer.max_epochs=0", f"run.init_from={sources[s]['model_file']}"])
            for s in (0, 1)]
    fresh = _run(tmp_path, "fresh", ["+trainer.max_epochs=0"])
    other = _run(tmp_path, "o", ["+trainer.max_epochs=0", f"run.init_from={sources['other']['model_file']}"])
    assert warm[0]["variant_hash"] == warm[1]["variant_hash"]
    assert len({warm[0]["variant_hash"], fresh["variant_hash"], other["variant_hash"]}) == 3
    assert f"from={sources[0]['label']}" in warm[0]["label"] and "from=" not in fresh["label"]
    # zero epochs from the source's weights: the source's test metrics exactly
    assert warm[0]["metrics"]["ndcg@10"] == sources[0]["metrics"]["ndcg@10"]
    assert fresh["metrics"]["ndcg@10"] != sources[0]["metrics"]["ndcg@10"]


def test_a_missing_init_from_file_is_refused_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="run.init_from=.*nope.pkl: no such file"):
        _run(tmp_path, "bad", [f"run.init_from={tmp_path / 'nope.pkl'}"])
