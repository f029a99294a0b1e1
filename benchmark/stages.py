"""The named stages an experiment task is built from: parse the config (RunSpec) -> load data -> preprocess ->
split (PreparedData) -> fit (Fitted) -> rank (Ranking) -> evaluate -> write artefacts and the results record.

Each stage is a short function over small dataclasses, so a new task (an online A/B simulation, off-policy
estimation, a cold-start protocol, latency measurement) reuses the ones it needs; see
recux.plugins.tasks.offline_ranking for how the default task chains them.
"""

from __future__ import annotations

import logging
import resource
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from recux import identity, registry, subsample
from recux.data import Dataset, Interactions, Split
from recux.distributed import global_rank  # noqa: F401  (a stage helper tasks use)
from recux.errors import ConfigError
from recux.finetune import check_finetune
from recux.injection import inject_training
from recux.model import FitContext, Recommender
from recux.ranking import rank_topk
from recux.record import ResultsRecord
from recux.results import RunArtifacts, library_versions, run_config_hash
from recux.seeding import seed_everything  # noqa: F401  (a stage helper tasks use)
from recux.text_context import text_inputs, text_record

log = logging.getLogger("recux")

# ----------------------------------------------------------------------------------------------------------
# Parse


@dataclass(frozen=True)
class PluginSpec:
    """A plugin named in the config: its registered name and its constructor parameters."""

    name: str
    params: dict[str, Any]

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> PluginSpec:
        params = dict(node)
        name = params.pop("name", None)
        if name is None:
            raise ConfigError(f"plugin config {params} has no 'name'; add `name: <registered plugin name>`")
        return cls(str(name), params)


@dataclass(frozen=True)
class OptimizedMetric:
    """The ``optimized_metric`` setting, e.g. ndcg@10: early stopping's monitor, the validator's metric and k,
    and the value returned to a sweeper."""

    metric: str
    k: int

    @property
    def name(self) -> str:
        return f"{self.metric}@{self.k}"

    @classmethod
    def parse(cls, text: Any) -> OptimizedMetric:
        from recux.evaluation import ACCURACY_METRICS

        metric, _, k = str(text).partition("@")
        if metric not in ACCURACY_METRICS or not k.isdigit() or int(k) < 1:
            raise ConfigError(
                f"optimized_metric={text!r} must be <metric>@<k> with the metric one of "
                f"{', '.join(ACCURACY_METRICS)} and k a positive integer, e.g. optimized_metric=ndcg@10"
            )
        return cls(metric, int(k))


def _checked_metrics(metrics: Mapping[str, Any]) -> tuple[tuple[int, ...], int]:
    """metrics.ks and metrics.bootstrap, validated by the evaluator's own checks (one rule for every caller)."""
    from recux.evaluation import check_bootstrap
    from recux.kernels.accuracy import check_ks

    return check_ks(metrics["ks"], setting="metrics.ks"), check_bootstrap(metrics.get("bootstrap", 0))


@dataclass
class RunSpec:
    """Everything a task needs from the composed config, parsed and checked once."""

    resolved: dict[str, Any]  # the whole resolved config (stored in results.json)
    seed: int
    task: PluginSpec
    dataset: PluginSpec
    model: PluginSpec
    finetune: PluginSpec
    metric_specs: list[Any]
    ks: tuple[int, ...]
    optimized: OptimizedMetric
    bootstrap: int = 0  # resamples for a bootstrap CI of each per-user mean (metrics.bootstrap; 0 = none)
    batch_size: int = 1024
    exclude_valid: bool = True
    save_split: bool = True
    save_model: bool = False
    init_from: str | None = None  # run.init_from: weights (a saved model file) a trainable model starts from
    overrides: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg: DictConfig | Mapping[str, Any], overrides: list[str] | None = None) -> RunSpec:
        resolved: dict[str, Any] = (OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig)
                                    else dict(cfg))  # type: ignore[assignment]
        run, ev = resolved.get("run", {}) or {}, resolved.get("eval", {}) or {}
        if run.get("init_from") is not None and not run.get("init_from_variant"):
            run.update(identity.init_from_source(str(run["init_from"])))  # stored with the config
        ks, bootstrap = _checked_metrics(resolved["metrics"])
        return cls(
            resolved=resolved, seed=int(resolved["seed"]),
            task=PluginSpec.of(resolved.get("task") or {"name": identity.DEFAULT_TASK}),
            dataset=PluginSpec.of(resolved["dataset"]), model=PluginSpec.of(resolved["model"]),
            finetune=PluginSpec.of(resolved["finetune"]),
            metric_specs=list(resolved["metrics"]["plugins"]), ks=ks, bootstrap=bootstrap,
            optimized=OptimizedMetric.parse(resolved.get("optimized_metric", identity.DEFAULT_OPTIMIZED_METRIC)),
            batch_size=int(ev.get("batch_size", 1024)), exclude_valid=bool(ev.get("exclude_valid", True)),
            save_split=bool(run.get("save_split", True)), save_model=bool(run.get("save_model", False)),
            init_from=run.get("init_from"),
            overrides=list(overrides or []),
        )


# ----------------------------------------------------------------------------------------------------------
# Process-level helpers


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_label(model_name: str, finetune_name: str | None, overrides: list[str]) -> str:
    """Display name of a variant: the model, its fine-tuning strategy (None for the baseline strategy, see the
    finetune registry's ``baseline`` metadata) and the other overrides that change the variant."""
    skip = ("seed=", "model=", "finetune=", "experiment=", "hparams_search=", "logger", "trainer", "dataset", "split",
            "hydra", "eval.", "run.", "task", "preprocess", "metrics", "data.", "explainer", "compress.from_model",
            "compress.export_onnx", "inject")  # data.*, inject: the data, not the variant; explainer: neither
    extra = [o.lstrip("+~") for o in overrides if not o.lstrip("+~").startswith(skip)]
    extra = [o[len("model."):] if o.startswith("model.") else o for o in extra]
    label = model_name if finetune_name is None else f"{model_name}+{finetune_name}"
    return f"{label}({', '.join(sorted(extra))})" if extra else label


# ----------------------------------------------------------------------------------------------------------
# Data: load -> preprocess -> split


@dataclass
class PreparedData:
    """A preprocessed dataset, its split and the CSR matrices and user lists the later stages use."""

    dataset: Dataset
    split: Split
    train_csr: sp.csr_matrix
    valid_csr: sp.csr_matrix
    test_csr: sp.csr_matrix
    valid_users: np.ndarray  # user codes with validation items
    test_users: np.ndarray  # user codes with test items
    seconds: float
    graded_test: sp.csr_matrix | None = None  # test users' grades (ratings), only when a metric needs them
    metric_embeddings: Any = None  # a MetricEmbeddings for the metrics that need item embeddings (see evaluate)
    masked: dict[bool, sp.csr_matrix] = field(default_factory=dict, repr=False)  # known_items, per exclude_valid


def load_dataset(spec: RunSpec) -> Dataset:
    return registry.build("dataset", spec.dataset.name, spec.dataset.params).load()


def preprocess(spec: RunSpec, dataset: Dataset) -> Dataset:
    return instantiate(spec.resolved["preprocess"]).apply(dataset)


def make_split(spec: RunSpec, dataset: Dataset) -> Split:
    return instantiate(spec.resolved["split"]).split(dataset.interactions, seed=spec.seed)


def prepare_data(spec: RunSpec) -> PreparedData:
    """load -> preprocess -> split, and the sparse matrices of each part."""
    t0 = time.perf_counter()
    dataset = preprocess(spec, load_dataset(spec))
    split = make_split(spec, dataset)
    dataset, split = inject_training(spec.resolved, dataset, split, spec.seed)  # training data only; none: as is
    seconds = time.perf_counter() - t0
    train_csr, valid_csr, test_csr = split.train.csr(), split.valid.csr(), split.test.csr()
    split = subsample.apply(spec, split)  # data.train_fraction: fewer training rows; the full train stays the mask
    return PreparedData(
        dataset, split, train_csr, valid_csr, test_csr,
        valid_users=np.flatnonzero(np.diff(valid_csr.indptr) > 0),
        test_users=np.flatnonzero(np.diff(test_csr.indptr) > 0), seconds=seconds,
    )


def prepared_from_split(dataset: Dataset, split: Split, seconds: float = 0.0,
                        mask: Interactions | None = None) -> PreparedData:
    """PreparedData for a split built by a task itself (e.g. one stage of the continual task). ``mask``: the
    interactions masked as "already seen" when validating and ranking (``train_csr``), when they are more than
    ``split.train`` (e.g. earlier periods a model update does not train on again); default ``split.train``."""
    train_csr = (split.train if mask is None else mask).csr()
    valid_csr, test_csr = split.valid.csr(), split.test.csr()
    return PreparedData(
        dataset, split, train_csr, valid_csr, test_csr,
        valid_users=np.flatnonzero(np.diff(valid_csr.indptr) > 0),
        test_users=np.flatnonzero(np.diff(test_csr.indptr) > 0), seconds=seconds,
    )


def check_protocol(spec: RunSpec, model_info: registry.PluginInfo, data: PreparedData) -> None:
    """Refuse a run whose split, cut-offs or test set cannot give meaningful numbers, before any fitting.

    Thresholds: every cut-off (and the optimized metric's k) is smaller than the catalogue; the split leaves at
    least one test user; and at least one test user has more unmasked items than the largest cut-off (when none
    has, every model puts all of each user's candidates in the top k: recall@k is 1.0 by construction, which is
    what a one-user file of 30 rows gave), and not all of them are test items for every test user (then every
    ranking scores the same). Test users with no more candidates than k are counted in a warning.
    """
    split, dataset = data.split, data.dataset
    if model_info.meta.get("protocol") == "sequential" and not split.time_ordered:
        raise ConfigError(
            f"model '{spec.model.name}' is sequential: it predicts the next items from the user's history in "
            f"time order, which the split '{split.protocol}' does not keep (its test items are not the latest). "
            f"Use `recux experiment={spec.model.name}` (leave-last-one-out), or add `split=loo` (or "
            "split=temporal)."
        )
    if len(data.test_users) == 0:
        raise ConfigError(
            f"the split '{split.protocol}' left no test interactions (dataset {dataset.n_users} users, "
            f"{len(dataset.interactions)} interactions, {_per_user(dataset)} per user). {_split_hint(spec, data)}"
        )
    candidates = _candidates(spec, data)
    _check_cutoffs(spec, dataset.n_items, candidates)
    _check_candidates(spec, data, candidates)


def known_items(spec: RunSpec, data: PreparedData) -> sp.csr_matrix:
    """The interactions the test ranking masks (training, and validation with eval.exclude_valid): the user's
    history as the list-versus-history metrics see it (calibration, unexpectedness, the popularity list PM)."""
    if spec.exclude_valid not in data.masked:  # ranking, evaluation and efficiency all read it: build it once
        m = (data.train_csr + data.valid_csr).tocsr() if spec.exclude_valid else data.train_csr
        m.sort_indices()
        data.masked[spec.exclude_valid] = m
    return data.masked[spec.exclude_valid]


def _candidates(spec: RunSpec, data: PreparedData) -> np.ndarray:
    """For each test user, the items left to rank once training (and, by eval.exclude_valid, validation)
    items are masked."""
    return data.dataset.n_items - np.diff(known_items(spec, data).indptr)[data.test_users]


def _fitting_ks(spec: RunSpec, limit: int) -> str:
    """``metrics.ks=[...]`` of the configured cut-offs below ``limit`` (else 1, 5 or 10 below it), and the
    optimized metric at the largest of them when its own k does not fit."""
    fits = [k for k in spec.ks if k < limit] or [k for k in (1, 5, 10) if k < limit] or [1]
    hint = f"metrics.ks=[{','.join(map(str, fits))}]"
    if spec.optimized.k >= limit:
        hint += f" optimized_metric={spec.optimized.metric}@{max(fits)}"
    return hint


def _check_cutoffs(spec: RunSpec, n_items: int, candidates: np.ndarray) -> None:
    """Every cut-off (and the optimized metric's k) must be smaller than the catalogue; the suggested cut-offs
    also leave the median test user more items to rank than k."""
    too_big = [k for k in (*spec.ks, spec.optimized.k) if k >= n_items]
    if not too_big:
        return
    setting = "metrics.ks contains" if max(spec.ks) >= n_items else "optimized_metric asks for"
    limit = min(n_items, int(np.median(candidates)))
    raise ConfigError(
        f"{setting} k={max(too_big)}, larger than the catalogue allows ({n_items} items after preprocessing; a "
        f"cut-off must be smaller than the number of items: at k >= {n_items} every item is recommended). "
        f"Use {_fitting_ks(spec, limit)}."
    )


def _check_candidates(spec: RunSpec, data: PreparedData, candidates: np.ndarray) -> None:
    """Refuse when every test user has at most max(ks) unmasked items: the top k is then all of them."""
    k, most = max(spec.ks), int(candidates.max())
    if most <= k:
        raise ConfigError(
            f"each of the {len(candidates)} test user(s) has at most {most} items left to rank after masking "
            f"their training{' and validation' if spec.exclude_valid else ''} items, no more than the largest "
            f"cut-off k={k}: every model would score recall@{k} = 1.0. Use a dataset with more items or users "
            f"({data.dataset.n_users} users, {data.dataset.n_items} items now)"
            + (f", or smaller cut-offs: {_fitting_ks(spec, int(np.median(candidates)))}."
               if min(spec.ks) < np.median(candidates) else ".")
        )
    n_test = np.diff(data.test_csr.indptr)[data.test_users]
    if bool(np.all(candidates <= n_test)):
        raise ConfigError(
            f"every item left to rank for each of the {len(candidates)} test user(s) is one of their test items, "
            "so every ranking scores the same (precision 1.0). Use a dataset with more items or users "
            f"({data.dataset.n_users} users, {data.dataset.n_items} items now)."
        )
    trivial = int((candidates <= k).sum())
    if trivial:
        log.warning("%d of %d test users have at most k=%d items left to rank: their recall@%d is 1.0 whatever "
                    "the model", trivial, len(candidates), k, k)


def _per_user(dataset: Dataset) -> str:
    counts = dataset.interactions.user_counts()
    return f"median {float(np.median(counts)):g}, max {int(counts.max())}" if len(counts) else "none"


def _split_hint(spec: RunSpec, data: PreparedData) -> str:
    """What can give test data under the split in use (never the split itself)."""
    node = spec.resolved.get("split") or {}
    target = str(node.get("_target_", "")).rsplit(".", 1)[-1]
    has_time = data.dataset.interactions.timestamp is not None
    if "ratios" in node:  # per-user random or temporal ratios: a user gets a test item from about 1/test share
        r = [float(x) for x in node["ratios"]]
        need = int(np.ceil(0.5 / r[2])) if r[2] > 0 else None
        hint = (f"split.ratios={r} gives a user a test item only from about {need} interactions; "
                if need else "split.ratios has no test share; ")
        hint += "raise the test share (e.g. split.ratios=[0.6,0.2,0.2]) or keep heavier users " \
                "(preprocess.min_user_interactions=...)"
    elif target == "LeaveLastOut":
        hint = "leave-last-one-out needs at least 3 interactions per user; " \
               + ("use split=global_temporal or split=random" if has_time else "use split=random")
    elif target == "GlobalTemporalSplit":
        hint = "the time cut keeps only test users and items seen before it; lower split.test_quantile or " \
               "use split=random"
    else:
        hint = "use another split (conf/split: random, temporal, loo, global_temporal)"
    return hint + "."


GPU_ACCELERATORS = ("gpu", "cuda")


def start_run(spec: RunSpec) -> registry.PluginInfo:
    """What every training task does first, before any data is loaded: seed, look the model up (an unknown name
    fails here), refuse a fine-tuning strategy the model cannot take (e.g. lora on EASE) and check the model's
    settings (``check_model_settings``). Returns the model's registry entry."""
    seed_everything(spec.seed)
    model_info = registry.get("model", spec.model.name)
    check_finetune(model_info, registry.get("finetune", spec.finetune.name))
    check_model_settings(spec, model_info)
    return model_info


def check_model_settings(spec: RunSpec, model_info: registry.PluginInfo) -> None:
    """Before any data is loaded: the model's hyper-parameters pass its constructor's checks (e.g. a negative
    learning rate is refused there), and a Lightning model's trainer asks for hardware this machine has (e.g.
    ``trainer=gpu`` needs torch to see a GPU). Models that do not train with Lightning ignore the trainer."""
    model_info.build(spec.model.params)  # constructors only check and store settings: cheap, no data
    if model_info.meta.get("training") != "lightning":
        return
    trainer = spec.resolved.get("trainer") or {}
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    if accelerator not in GPU_ACCELERATORS:
        return
    import torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices = trainer.get("devices", 1)
    want = have if devices in ("auto", -1, "-1") else (len(devices) if isinstance(devices, (list, tuple))
                                                      else int(devices))
    if have == 0 or want > have:
        raise ConfigError(
            f"trainer.accelerator={trainer.get('accelerator')} asks for {want or 'a'} GPU(s), but torch sees "
            f"{have} on this machine (torch {torch.__version__}, CUDA {torch.version.cuda or 'not built'}). Use "
            "trainer=cpu, or run where a GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)."
        )


def actual_device(spec: RunSpec, model_info: registry.PluginInfo) -> dict[str, Any]:
    """Where the model was fitted and scored: Lightning models on the trainer's accelerator (checked by
    check_model_settings; ``auto`` resolved as Lightning does: a GPU when torch sees one), every other model on the
    CPU whatever the trainer says (``trainer_used`` false)."""
    if model_info.meta.get("training") != "lightning":
        return {"accelerator": "cpu", "devices": 1, "trainer_used": False}
    trainer = spec.resolved.get("trainer") or {}
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    import torch

    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    out: dict[str, Any] = {"accelerator": "gpu" if accelerator in GPU_ACCELERATORS else accelerator,
                           "devices": trainer.get("devices", 1), "trainer_used": True}
    if out["accelerator"] == "gpu":
        out["name"] = torch.cuda.get_device_name(0)
    return out


def write_split(data: PreparedData, art: RunArtifacts) -> None:
    for part in ("train", "valid", "test"):
        data.dataset.to_frame(getattr(data.split, part)).write_parquet(art.path(f"split/{part}.parquet"))


# ----------------------------------------------------------------------------------------------------------
# Fit


@dataclass
class Fitted:
    """A fitted model, the context it was fitted with (history of epochs) and its validator."""

    model: Recommender
    ctx: FitContext
    validator: Any  # recux.evaluation.Validator, or None without validation users
    seconds: float


def make_validator(spec: RunSpec, data: PreparedData) -> Any:
    """Full-catalogue accuracy at the optimized metric's k on the validation users (training items masked)."""
    from recux.evaluation import Validator

    if not len(data.valid_users):
        return None
    return Validator(data.valid_users, data.train_csr, data.valid_csr, k=spec.optimized.k,
                     batch_size=spec.batch_size)


def fit(spec: RunSpec, model_info: registry.PluginInfo, data: PreparedData, run_dir: Path,
        lightning_logger: Any = None) -> Fitted:
    """Build the fine-tuning strategy and the model, and fit it (early stopping on ``optimized_metric``)."""
    if spec.init_from is not None and "torch_module" not in model_info.meta.get("capabilities", ()):
        raise ConfigError(f"run.init_from={spec.init_from} gives starting weights, but model '{spec.model.name}' "
                          "has no trainable network to start from; remove run.init_from or pick a torch model.")
    finetune = registry.build("finetune", spec.finetune.name, spec.finetune.params)
    model = model_info.build(spec.model.params)
    validator = make_validator(spec, data)
    ctx = FitContext(
        dataset=data.dataset, split=data.split, finetune=finetune, seed=spec.seed, run_dir=run_dir,
        trainer=dict(spec.resolved.get("trainer", {}) or {}), logger=lightning_logger, validate=validator,
        monitor=spec.optimized.name, init_from=spec.init_from,
        **text_inputs(spec.resolved, model_info, data.dataset),
    )
    t0 = time.perf_counter()
    model.fit(ctx)
    return Fitted(model, ctx, validator, time.perf_counter() - t0)


def best_validation(fitted: Fitted) -> dict[str, float]:
    """Validation metrics of the kept model: the best epoch by the monitor, or one validation pass."""
    ctx = fitted.ctx
    if ctx.history:
        scored = [h for h in ctx.history if f"val/{ctx.monitor}" in h or ctx.monitor in h]
        if not scored:
            return {}
        key = f"val/{ctx.monitor}" if f"val/{ctx.monitor}" in scored[0] else ctx.monitor
        best = max(scored, key=lambda h: h[key])
        return {k.removeprefix("val/"): float(v) for k, v in best.items() if k.startswith("val/") or k == ctx.monitor}
    if fitted.validator is not None:
        return {k: float(v) for k, v in fitted.validator(fitted.model.score).items()}
    return {}


# ----------------------------------------------------------------------------------------------------------
# Rank -> evaluate


@dataclass
class Ranking:
    """Top-k item codes (-1 padded) and their scores for each test user."""

    users: np.ndarray
    topk: np.ndarray
    scores: np.ndarray
    seconds: float


def concat(a: Interactions, b: Interactions) -> Interactions:
    def cat(x, y):
        return None if x is None or y is None else np.concatenate([x, y])

    return Interactions(user=np.concatenate([a.user, b.user]), item=np.concatenate([a.item, b.item]),
                        n_users=a.n_users, n_items=a.n_items, rating=cat(a.rating, b.rating),
                        timestamp=cat(a.timestamp, b.timestamp))


def rank(spec: RunSpec, model: Recommender, data: PreparedData) -> Ranking:
    """Condition on train + valid, then rank the whole catalogue for each test user with training (and, by
    ``eval.exclude_valid``, validation) items masked."""
    t0 = time.perf_counter()
    model.condition_on(concat(data.split.train, data.split.valid))
    topk, scores = rank_topk(model.score, data.test_users, max(spec.ks), exclude=known_items(spec, data),
                             batch_size=spec.batch_size)
    return Ranking(data.test_users, topk, scores, time.perf_counter() - t0)


def rank_among(spec: RunSpec, model: Recommender, data: PreparedData, users: np.ndarray,
               allowed: np.ndarray) -> Ranking:
    """Like ``rank`` for ``users``, but only items with ``allowed[item]`` true are candidates (e.g. the cold
    items of a cold-start split); training (and validation) items are masked as in ``rank``."""
    t0 = time.perf_counter()
    model.condition_on(concat(data.split.train, data.split.valid))
    exclude = known_items(spec, data)
    banned = ~np.asarray(allowed, dtype=bool)

    def score(batch: np.ndarray) -> np.ndarray:
        from recux.ranking import to_numpy

        block = np.array(to_numpy(model.score(batch)), dtype=np.float32, copy=True)
        block[:, banned] = -np.inf
        return block

    topk, scores = rank_topk(score, users, max(spec.ks), exclude=exclude, batch_size=spec.batch_size)
    return Ranking(np.asarray(users), topk, scores, time.perf_counter() - t0)


def keep_items(matrix: sp.csr_matrix, items: np.ndarray) -> sp.csr_matrix:
    """``matrix`` with only the columns where the boolean ``items`` is true (others dropped to zero)."""
    out = (matrix @ sp.diags(np.asarray(items, dtype=matrix.dtype))).tocsr()
    out.eliminate_zeros()
    out.sort_indices()
    return out


def attach_grades(metrics: Any, data: PreparedData) -> None:
    """Grades (the test ratings) for graded metrics, only when one asks for them; a dataset without ratings
    fails here, before any fitting."""
    if any("graded_truth" in info.meta.get("needs", ()) for info, _ in metrics):
        from recux.relevance import graded_truth_csr

        data.graded_test = graded_truth_csr(data.split.test, f"the test split of {data.dataset.name}")[
            data.test_users]


def check_metric_texts(spec: RunSpec, metrics: Any, data: PreparedData) -> None:
    """Metrics that need item embeddings need item texts: a dataset without them fails here, before any
    fitting (the texts are rendered; no encoder is built)."""
    from recux.text_context import embedding_metric_names, metric_item_texts

    names = embedding_metric_names(metrics)
    if names:
        metric_item_texts(spec.resolved, data.dataset, names)


def metric_embeddings(spec: RunSpec, metrics: Any, data: PreparedData) -> Any:
    """A lazy source of item embeddings (recux.text_context.MetricEmbeddings, kept on ``data`` so the
    evaluations of one run share it) when a metric needs them, else None."""
    from recux.text_context import MetricEmbeddings, embedding_metric_names

    names = embedding_metric_names(metrics)
    if not names:
        return None
    if data.metric_embeddings is None:
        data.metric_embeddings = MetricEmbeddings(spec.resolved, data.dataset, names)
    return data.metric_embeddings


def evaluate(spec: RunSpec, metrics: Any, ranking: Ranking, data: PreparedData,
             truth: sp.csr_matrix | None = None, graded: sp.csr_matrix | None = None) -> Any:
    """Metric plugins over the ranking; returns the evaluation report. ``truth`` (users x items, default the
    test matrix) and ``graded`` (rows aligned with ``ranking.users``, default the test grades) let a task score
    the same ranking against a part of the test set (e.g. only its cold items)."""
    from recux.evaluation import evaluate_topk

    truth = data.test_csr if truth is None else truth
    return evaluate_topk(
        ranking.topk, truth[ranking.users], metrics=metrics, ks=spec.ks, scores=ranking.scores,
        train=data.train_csr, users=ranking.users, n_items=data.dataset.n_items,
        item_features=data.dataset.item_features, bootstrap=spec.bootstrap,
        graded_truth=data.graded_test if graded is None else graded, history=known_items(spec, data)[ranking.users],
        item_embeddings=metric_embeddings(spec, metrics, data),
    )


# ----------------------------------------------------------------------------------------------------------
# Write


def write_per_user(report: Any, dataset: Dataset, art: RunArtifacts) -> None:
    per_user = report.per_user
    per_user = per_user.with_columns(pl.Series("user_id", dataset.user_ids[per_user["user"].to_numpy()])).drop(
        "user").select(["user_id", *[c for c in per_user.columns if c != "user"]])
    per_user.write_parquet(art.path("per_user_metrics.parquet"))


def write_recommendations(ranking: Ranking, dataset: Dataset, art: RunArtifacts) -> None:
    rows, ranks = np.nonzero(ranking.topk >= 0)
    pl.DataFrame({
        "user_id": dataset.user_ids[ranking.users][rows],
        "rank": (ranks + 1).astype(np.int32),
        "item_id": dataset.item_ids[ranking.topk[rows, ranks]],
        "score": ranking.scores[rows, ranks],
    }).write_parquet(art.path("recommendations.parquet"))


def timing(data: PreparedData, fitted: Fitted, eval_seconds: float, t_start: float) -> dict[str, Any]:
    history = fitted.ctx.history
    epoch_secs = [h["epoch_seconds"] for h in history if "epoch_seconds" in h]
    steps = sum(h.get("steps", 0) for h in history)
    return {
        "data_seconds": round(data.seconds, 4),
        "fit_seconds": round(fitted.seconds, 4),
        "eval_seconds": round(eval_seconds, 4),
        "epochs": sum(1 for h in history if h.get("epoch", 0) >= 0) or None,  # -1: starting weights (init_from)
        "best_epoch": getattr(getattr(fitted.model, "summary", None), "best_epoch", None),  # -1: kept the start
        "seconds_per_epoch": round(float(np.mean(epoch_secs)), 4) if epoch_secs else None,
        "steps_per_second": round(steps / sum(epoch_secs), 2) if epoch_secs and steps else None,
        "total_seconds": round(time.perf_counter() - t_start, 4),
    }


@dataclass
class RunIdentity:
    """How a run is named and grouped: its label, variant hash (model/training) and data hash (section)."""

    label: str
    variant_hash: str
    data_hash: str
    baseline_finetune: bool

    @classmethod
    def of(cls, spec: RunSpec) -> RunIdentity:
        baseline = bool(registry.get("finetune", spec.finetune.name).meta.get("baseline", False))
        source = (spec.resolved.get("run") or {}).get("init_from_label")
        extra = [f"from={source}"] if spec.init_from is not None and source else []
        label = build_label(spec.model.name, None if baseline else spec.finetune.name, spec.overrides + extra)
        return cls(label, identity.variant_hash(spec.resolved), identity.data_hash(spec.resolved), baseline)


def results_record(spec: RunSpec, ident: RunIdentity, model_info: registry.PluginInfo, data: PreparedData,
                   fitted: Fitted, report: Any, run_timing: dict[str, Any]) -> ResultsRecord:
    """The results record of an offline ranking run (schema 2)."""
    dataset, split = data.dataset, data.split
    now = datetime.now(timezone.utc)
    return ResultsRecord(
        run_id=f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}", created=now.isoformat(timespec="seconds"),
        status="ok", task=spec.task.name, label=ident.label, variant_hash=ident.variant_hash,
        data_hash=ident.data_hash, config_hash=run_config_hash(spec.resolved), seed=spec.seed,
        dataset={"name": dataset.name, "n_users": dataset.n_users, "n_items": dataset.n_items,
                 "n_interactions": len(dataset.interactions),
                 "info": {k: v for k, v in dataset.info.items() if k != "preprocessing"}},
        protocol=split.protocol,
        split={**spec.resolved["split"], **split.settings, "time_ordered": split.time_ordered,
               "n_train": len(split.train), "n_valid": len(split.valid), "n_test": len(split.test)},
        preprocessing=dataset.info.get("preprocessing", spec.resolved.get("preprocess")),
        model={"name": spec.model.name, "params": spec.model.params, "training": model_info.meta.get("training"),
               **({"describe": fitted.model.describe()} if callable(getattr(fitted.model, "describe", None)) else {})},
        finetune={"name": spec.finetune.name, **fitted.ctx.finetune.describe(), "params": spec.finetune.params,
                  "baseline": ident.baseline_finetune},
        optimized_metric=spec.optimized.name,
        metrics=report.means,
        metrics_stderr=dict(getattr(report, "stderr", {}) or {}),
        metrics_ci=getattr(report, "ci", None),
        directions=report.directions,
        valid_metrics=best_validation(fitted),
        users={"evaluated": report.n_evaluated,
               "excluded_empty_test": int(dataset.n_users - len(data.test_users)) + report.n_excluded_empty},
        timing=run_timing, device=actual_device(spec, model_info), peak_memory_mb=round(peak_memory_mb(), 1),
        versions=library_versions(),
        config=spec.resolved,
        files={"per_user_metrics": "per_user_metrics.parquet", "recommendations": "recommendations.parquet",
               "split": "split/"},
        extra={**text_record(spec.resolved, fitted.ctx), **metric_embeddings_record(data)},
    )


def metric_embeddings_record(data: PreparedData) -> dict[str, Any]:
    """``metric_embeddings`` in results.json when metrics used item embeddings: which metrics, which encoder
    (its identity) and which item-text template produced them; {} otherwise."""
    described = data.metric_embeddings.describe() if data.metric_embeddings is not None else {}
    return {"metric_embeddings": described} if described else {}
