"""Post-training compression (recux.compression, plugins of kind "compress"), checked against bounds derived
from each method's rounding step, not against fixed numbers:

- int8 embedding tables (per-row symmetric, step s = max|row| / 127, error <= s/2 per entry): for a dot
  product, |<u', v'> - <u, v>| <= (s_u/2)|v|_1 + (s_v/2)|u|_1 + d s_u s_v / 4.
- int8 Linear layers (torch dynamic quantisation: per-output-row weight step s_w, per-tensor input step
  s_x = range(x, 0) / 127 under fbgemm's 7-bit reduce_range): |y' - y|_o <= (s_x/2)|w_o|_1 + (s_w,o/2)|x|_1
  + d s_x s_w,o / 4.
- fp16 storage (unit roundoff 2^-11 per entry): |<u', v'> - <u, v>| <= sum_j |u_j v_j| (2 * 2^-11 + 2^-22).
- Each bound gets float32 summation slack d * 2^-24 * sum_j |u_j v_j| (Higham's gamma_d) on both sides.
- prune: each matrix has exactly round(sparsity * size) zeros, the kept entries are the largest in magnitude,
  and the stored bit mask + values decode to the pruned matrix exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recux import identity, registry
from recux.compression import CompressedModel, compress
from recux.errors import ConfigError
from recux.pipeline import run_experiment
from recux.tensor_codecs import decode, magnitude_prune, sparse_or_dense
from tests._compose import compose_cfg, run_record
from tests._model_world import fit_context
from tests._seq_world import seq_context, train_plus_valid, warm_up_validation

EPS32 = 2.0 ** -24
FP16_U = 2.0 ** -11


@pytest.fixture(scope="module")
def bpr(model_world):
    from recux.plugins.models.bpr import BPR

    ds, split = model_world
    model = BPR(embedding_dim=16, max_epochs=3, patience=3, num_threads=1)
    model.fit(fit_context(ds, split))
    return model


@pytest.fixture(scope="module")
def lightgcn(model_world):
    from recux.plugins.models.lightgcn import LightGCN

    ds, split = model_world
    model = LightGCN(embedding_dim=16, n_layers=2, max_epochs=2, patience=2, num_threads=1)
    model.fit(fit_context(ds, split))
    return model


@pytest.fixture(scope="module")
def sasrec(seq_world):
    from recux.plugins.models.sasrec import SASRec

    ds, split = seq_world
    warm_up_validation(ds, split)
    model = SASRec(max_len=12, hidden_size=32, inner_size=64, n_layers=2, n_heads=2, max_epochs=2, patience=2,
                   num_threads=1)
    model.fit(seq_context(ds, split))
    model.condition_on(train_plus_valid(split))
    return model


def _compressed(model, name, **settings):
    return compress({"compress": {"name": name, **settings}}, model, type(model).__name__.lower())


def _factors(model):
    module = model.serving_module()
    if hasattr(module, "user_emb"):
        return module.user_emb.weight.detach().double(), module.item_emb.weight.detach().double()
    return module.user.weight.detach().double(), module.item.weight.detach().double()


def _int8_dot_bound(u, v):
    s_u = u.abs().amax(1) / 127  # the per-row steps, computed here from the original tables
    s_v = v.abs().amax(1) / 127
    d = u.shape[1]
    quant = (s_u[:, None] / 2) * v.abs().sum(1)[None] + (s_v[None] / 2) * u.abs().sum(1)[:, None] \
        + d * s_u[:, None] * s_v[None] / 4
    return quant + 2 * d * EPS32 * (u.abs() @ v.abs().T)


@pytest.mark.parametrize("name", ["bpr", "lightgcn"])
def test_int8_scores_stay_within_the_per_row_quantisation_bound(name, request):
    model = request.getfixturevalue(name)
    u, v = _factors(model)
    users = np.arange(u.shape[0])
    exact = torch.from_numpy(model.score(users)).double()
    small = _compressed(model, "int8")
    err = (torch.from_numpy(small.score(users)).double() - exact).abs()
    assert bool((err <= _int8_dot_bound(u, v)).all())
    assert float(err.max()) > 0  # the scores really come from the quantised tables
    assert {enc["kind"] for enc in small.encoded.values()} == {"int8"}
    assert all(enc["q"].dtype == torch.int8 for enc in small.encoded.values())


def test_int8_sasrec_linear_layers_stay_within_the_dynamic_quantisation_bound(sasrec):
    """Each dynamically quantised Linear, fed the input the original layer sees when scoring, stays within the
    bound of its weight rows' and its input's quantisation steps."""
    from torch import nn

    small = _compressed(sasrec, "int8")
    original = dict(sasrec.serving_module().named_modules())
    quantised = {n: m for n, m in small.module.named_modules()
                 if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)}
    assert set(quantised) == {n for n, m in original.items() if isinstance(m, nn.Linear)}
    inputs = {}

    def keep(name):
        def hook(module, args, out):
            inputs.setdefault(name, args[0].detach())  # returns None: the output is left alone
        return hook

    hooks = [original[n].register_forward_hook(keep(n)) for n in quantised]
    sasrec.score(np.arange(sasrec.n_users))
    for h in hooks:
        h.remove()
    for name, q in quantised.items():
        x = inputs[name].reshape(-1, inputs[name].shape[-1]).double()
        w = original[name].weight.detach().double()
        s_x = float(x.max().clamp(min=0) - x.min().clamp(max=0)) / 127
        s_w = w.abs().amax(1) / 127
        bound = (s_x / 2) * w.abs().sum(1)[None] + (s_w[None] / 2) * x.abs().sum(1, keepdim=True) \
            + w.shape[1] * s_x * s_w[None] / 4 + 2 * w.shape[1] * EPS32 * (x.abs() @ w.abs().T)
        err = (q(inputs[name].reshape(-1, w.shape[1])).double() - original[name](inputs[name]).reshape(
            -1, w.shape[0]).detach().double()).abs()
        assert bool((err <= bound).all()), name


def test_int8_sasrec_item_embeddings_are_per_row_int8_and_scores_change(sasrec):
    small = _compressed(sasrec, "int8")
    enc = small.encoded["encoder.tok.weight"]
    w = sasrec.serving_module().encoder.tok.weight.detach()
    assert enc["q"].dtype == torch.int8
    assert bool(((decode(enc) - w).abs() <= (w.abs().amax(1, keepdim=True) / 127) / 2 + 1e-7).all())
    users = np.arange(sasrec.n_users)
    assert not np.array_equal(small.score(users), sasrec.score(users))


@pytest.mark.parametrize("name", ["bpr", "lightgcn"])
def test_fp16_scores_stay_within_the_half_precision_rounding_bound(name, request):
    model = request.getfixturevalue(name)
    u, v = _factors(model)
    users = np.arange(u.shape[0])
    small = _compressed(model, "fp16")
    err = (torch.from_numpy(small.score(users)).double() - torch.from_numpy(model.score(users)).double()).abs()
    prods = u.abs() @ v.abs().T
    assert bool((err <= prods * (2 * FP16_U + FP16_U ** 2) + 2 * u.shape[1] * EPS32 * prods).all())
    assert {enc["value"].dtype for enc in small.encoded.values()} == {torch.float16}


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
def test_prune_gives_each_matrix_exactly_the_configured_sparsity(sasrec, sparsity):
    small = _compressed(sasrec, "prune", sparsity=sparsity)
    original = dict(sasrec.serving_module().named_parameters())
    pruned = dict(small.module.named_parameters())
    assert len(small.encoded) == 2 + 4 * 2  # token and position tables, 4 Linear weights per block
    for key, enc in small.encoded.items():
        w, p = original[key].detach(), pruned[key].detach()
        k = int(round(sparsity * w.numel()))
        assert int((p == 0).sum()) == k, key
        kept = p != 0
        assert torch.equal(p[kept], w[kept])  # survivors unchanged
        assert float(w[kept].abs().min()) >= float(w[~kept].abs().max())  # the largest magnitudes survive
        assert torch.equal(decode(enc), p)  # the stored form decodes to the pruned matrix
        assert enc["kind"] == "sparse"  # bit mask + values: smaller than dense at these sparsities
    assert small.n_parameters() < sum(p.numel() for p in original.values())


def test_magnitude_prune_and_sparse_encoding_against_a_plain_reference():
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.normal(size=(37, 11)).astype(np.float32))
    out = magnitude_prune(w, 0.4)
    flat = w.numpy().ravel()
    k = int(round(0.4 * flat.size))
    expect = flat.copy()
    expect[np.argsort(np.abs(flat), kind="stable")[:k]] = 0
    assert np.array_equal(out.numpy().ravel(), expect)
    enc = sparse_or_dense(out)
    assert enc["kind"] == "sparse" and torch.equal(decode(enc), out)
    assert sparse_or_dense(w)["kind"] == "dense"  # no zeros: a mask would only add bytes


def test_compressed_files_are_smaller_and_conditioning_follows_the_base(sasrec, seq_world, tmp_path):
    ds, split = seq_world
    sasrec.save(tmp_path / "base.pkl")
    sizes = {}
    for name, settings in (("int8", {}), ("fp16", {}), ("prune", {"sparsity": 0.5})):
        small = _compressed(sasrec, name, **settings)
        small.save(tmp_path / f"{name}.pkl")
        sizes[name] = (tmp_path / f"{name}.pkl").stat().st_size
        # conditioning again (as the ranking stage does) keeps the compressed module's sequences in step
        small.condition_on(train_plus_valid(split))
        assert torch.equal(small.module.seqs, sasrec.serving_module().seqs)
    base = (tmp_path / "base.pkl").stat().st_size
    assert sizes["int8"] < sizes["fp16"] < base and sizes["prune"] < base


# ---------------------------------------------------------------------------------------------- runs


WORLD = ["dataset=synthetic", "dataset.n_users=80", "dataset.n_items=40", "logger=none",
         "trainer.enable_progress_bar=false", "model=bpr", "model.num_threads=1", "model.embedding_dim=8",
         "model.max_epochs=2", "eval.latency_users=10"]


def _run(tmp_path, name, extra):
    return run_record(WORLD + extra, tmp_path / name)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("base")
    rec = _run(tmp, "base", ["run.save_model=true"])
    rec["model_file"] = str(tmp / "base" / "model.pkl")
    return rec


def test_compress_none_keeps_the_published_identity_and_results(base_run, tmp_path):
    """compress=none is the run as before the group existed: same variant hash as a config without the group,
    no compression record, the same metrics and recommendations."""
    cfg = base_run["config"]
    assert cfg["compress"]["name"] == "none"
    assert identity.variant_hash(cfg) == identity.variant_hash({k: v for k, v in cfg.items() if k != "compress"})
    assert "compression" not in base_run
    again = _run(tmp_path, "again", ["~compress"])
    assert again["metrics"] == base_run["metrics"] and again["variant_hash"] == base_run["variant_hash"]


def test_compressed_variants_are_rows_of_their_own_and_reuse_the_fitted_model(base_run, tmp_path):
    src = f"compress.from_model={base_run['model_file']}"
    same = _run(tmp_path, "none", [src])  # loading the fitted model reproduces the trained run exactly
    assert same["metrics"] == base_run["metrics"] and same["variant_hash"] == base_run["variant_hash"]
    runs = {name: _run(tmp_path, name, [f"compress={name}", src]) for name in ("int8", "prune", "fp16")}
    runs["prune9"] = _run(tmp_path, "prune9", ["compress=prune", "compress.sparsity=0.9", src])
    hashes = {r["variant_hash"] for r in runs.values()}
    assert len(hashes) == 4 and base_run["variant_hash"] not in hashes
    assert runs["prune9"]["label"] == "bpr(compress.sparsity=0.9, compress=prune, embedding_dim=8, max_epochs=2, " \
                                      "num_threads=1)"
    for name, rec in runs.items():
        eff = rec["efficiency"]
        assert rec["compression"]["method"] == name.rstrip("9")
        assert rec["compression"]["from_model"] == base_run["model_file"]
        assert eff["size_bytes"] < base_run["efficiency"]["size_bytes"]
    n = base_run["efficiency"]["parameters"]
    assert runs["prune"]["efficiency"]["parameters"] == n - 2 * round(0.5 * n / 2)


def test_from_model_of_another_seed_or_variant_is_refused(base_run, tmp_path):
    with pytest.raises(ConfigError, match="compress.from_model=.*same model/trainer/data settings and seed"):
        _run(tmp_path, "s1", ["seed=1", "compress=int8", f"compress.from_model={base_run['model_file']}"])
    with pytest.raises(ConfigError, match="compress.from_model=.*same model/trainer/data settings"):
        _run(tmp_path, "lr", ["model.lr=0.01", "compress=int8", f"compress.from_model={base_run['model_file']}"])


def test_bad_settings_are_refused_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError, match=r"compress.sparsity=1.5 must be a fraction strictly between 0 and 1"):
        _run(tmp_path, "sp", ["compress=prune", "compress.sparsity=1.5"])
    with pytest.raises(ConfigError, match="compress=int8 compresses a torch scoring network.*itemknn.*"
                                          "compress=none"):
        overrides = WORLD[:5] + ["model=itemknn", "compress=int8"]
        run_experiment(compose_cfg(overrides), tmp_path / "knn", overrides)
    with pytest.raises(ConfigError, match="compress=fp16: task 'continual' does not apply post-training "
                                          "compression .*offline_ranking.*use compress=none"):
        _run(tmp_path, "cont", ["task=continual", "compress=fp16"])


@pytest.mark.parametrize("name", ["none", "int8", "prune", "fp16"])
def test_every_config_of_the_group_composes_and_builds(name):
    cfg = compose_cfg([f"compress={name}"])
    node = dict(cfg.compress)
    assert node["name"] == name and node["export_onnx"] is False and node["from_model"] is None
    from recux.compression import build_compressor

    assert build_compressor(node).name == name
    assert name in registry.names("compress")


def test_leaderboard_compression_view_pairs_each_variant_with_its_uncompressed_row(base_run, tmp_path):
    from recux.leaderboard import build_leaderboards, find_results, load_runs
    from recux.leaderboard.compression import compression_records

    src = f"compress.from_model={base_run['model_file']}"
    q = _run(tmp_path, "int8", ["compress=int8", src])
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "results.json").write_text(json.dumps({k: v for k, v in base_run.items()
                                                                if k != "model_file"}))
    runs, _ = load_runs(find_results([tmp_path]))
    boards = build_leaderboards(runs, significance=False)
    (rec,) = [r for b in boards for r in compression_records(b)]
    assert rec["compress"] == "int8" and rec["paired_seeds"] == 1
    assert rec["delta_ndcg@10"] == q["metrics"]["ndcg@10"] - base_run["metrics"]["ndcg@10"]
    assert rec["size_bytes"] == q["efficiency"]["size_bytes"]
    assert rec["base_size_bytes"] == base_run["efficiency"]["size_bytes"]


# ---------------------------------------------------------------------------------------------- ONNX


def _onnx_scores(model, users, tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs the 'deploy' extra (pip install 'recux[deploy]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime latency needs the 'deploy' extra")
    from recux.onnx_export import OnnxScorer, export

    module = model.serving_module()
    export(module, users[:2], tmp_path / "m.onnx")
    return OnnxScorer(module, tmp_path / "m.onnx", threads=1).score(users)


@pytest.mark.parametrize("name", ["bpr", "lightgcn"])
def test_onnx_scores_equal_torch_scores_within_float32_summation(name, request, tmp_path):
    model = request.getfixturevalue(name)
    u, v = _factors(model)
    users = np.arange(u.shape[0])
    err = np.abs(_onnx_scores(model, users, tmp_path).astype(np.float64) - model.score(users))
    assert np.all(err <= (2 * u.shape[1] * EPS32 * (u.abs() @ v.abs().T)).numpy())


def test_onnx_sasrec_scores_equal_torch_scores(sasrec, tmp_path):
    """Through 2 transformer blocks float32 rounding differs by re-association only: within 1e-4 of scores of
    size ~10 (relative 1e-5, ~100 float32 ulps)."""
    users = np.arange(sasrec.n_users)
    torch_scores = sasrec.score(users)
    onnx_scores = _onnx_scores(sasrec, users, tmp_path)
    tol = 1e-5 * max(1.0, float(np.abs(torch_scores).max()))
    assert np.max(np.abs(onnx_scores - torch_scores)) <= tol


def test_onnx_record_says_why_an_int8_linear_network_is_not_exported(sasrec, seq_world):
    pytest.importorskip("onnxruntime", reason="needs the 'deploy' extra")
    from recux.onnx_export import onnx_efficiency

    ds, split = seq_world
    small = _compressed(sasrec, "int8")
    assert isinstance(small, CompressedModel)
    seen = (split.train.csr() + split.valid.csr()).tocsr()
    rec = onnx_efficiency(small, np.arange(20), seen, k=5, batch_size=8, latency_users=5)
    assert "dynamically quantised nn.Linear" in rec["error"]


def test_cold_start_runs_compress_too(tmp_path):
    """The cold_start task applies the compress stage (it chains offline_ranking's stages): its record names the
    method and its model file is the smaller compressed one."""
    world = ["experiment=cold_start", "dataset=synthetic", "dataset.n_users=150", "dataset.n_items=120",
             "logger=none", "metrics.ks=[5,10]", "model=bpr", "model.max_epochs=2", "model.embedding_dim=8",
             "model.num_threads=1", "trainer.enable_progress_bar=false", "eval.latency_users=5"]
    recs = {}
    for name in ("none", "fp16"):
        recs[name] = run_record(world + [f"compress={name}"], tmp_path / name)
    assert recs["fp16"]["task"] == "cold_start" and recs["fp16"]["compression"]["method"] == "fp16"
    assert "compression" not in recs["none"]
    assert recs["fp16"]["efficiency"]["size_bytes"] < recs["none"]["efficiency"]["size_bytes"]
    assert recs["fp16"]["variant_hash"] != recs["none"]["variant_hash"]
