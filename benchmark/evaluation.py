"""Public evaluation API: score top-k lists (or a dense score matrix) against held-out ground truth with
metric plugins, and a fast validator for early stopping.

Users whose ground truth is empty are not evaluated (they have no relevant item to find); they are counted
in ``EvalReport.n_excluded_empty``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from recux import registry
from recux.errors import ConfigError, DataError, PluginError
from recux.metric import EvalContext, Metric
from recux.registry import PluginInfo
from recux.relevance import align_relevance

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)
# Same list as conf/metrics/default.yaml (a test keeps them in step).
DEFAULT_METRICS: tuple[str, ...] = (
    "precision", "recall", "ndcg", "mrr", "map", "hit", "coverage", "arp", "gini", "novelty",
)
ACCURACY_METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "mrr", "map", "hit")

BuiltMetric = tuple[PluginInfo, Metric]
MetricSpec = str | Mapping[str, Any] | BuiltMetric
GroundTruth = sp.spmatrix | sp.sparray | tuple[np.ndarray, np.ndarray]


def build_metrics(specs: Sequence[MetricSpec]) -> list[BuiltMetric]:
    """Instantiate metric plugins from specs ``{"name": "ndcg", **constructor_params}`` (or bare names)."""
    built: list[BuiltMetric] = []
    seen: set[str] = set()
    for spec in specs:
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], PluginInfo):
            info, metric = spec
        else:
            if isinstance(spec, str):
                name, params = spec, {}
            elif isinstance(spec, Mapping):
                params = dict(spec)
                name = params.pop("name", None)
                if not name:
                    raise ConfigError(f"metric spec {dict(spec)} has no 'name'; write e.g. {{name: ndcg}}")
            else:
                raise ConfigError(f"metric spec {spec!r} must be a name or a mapping with 'name' and parameters")
            info = registry.get("metric", str(name))
            metric = info.build(params)
        if not isinstance(metric, Metric):
            raise PluginError(
                f"metric '{info.name}' ({info.origin}) built a {type(metric).__name__}, not a "
                "recux.metric.Metric; subclass Metric and implement compute(ctx)."
            )
        if info.name in seen:
            raise ConfigError(f"metric '{info.name}' is listed twice; keep one entry (its values cover every k)")
        seen.add(info.name)
        built.append((info, metric))
    return built


@dataclass
class EvalReport:
    """Metric means (per-user values averaged over evaluated users, plus corpus-level aggregates),
    the per-user table and bookkeeping."""

    means: dict[str, float]
    per_user: pl.DataFrame  # "user" (codes or the given ids), then one column per per-user value
    n_evaluated: int
    n_excluded_empty: int
    directions: dict[str, bool]  # value name -> higher is better
    seconds: float
    ks: tuple[int, ...] = DEFAULT_KS
    skipped: list[str] = field(default_factory=list)  # default metrics left out for lack of an input
    # Per-user values only (see summarise): standard error of each mean, and its bootstrap CI when configured.
    stderr: dict[str, float] = field(default_factory=dict)
    ci: dict[str, list[float]] | None = None
    ci_level: float | None = None

    def to_dict(self, per_user: bool = False) -> dict[str, Any]:
        """JSON-ready summary; ``per_user=True`` adds the per-user table as lists (NaN -> None)."""
        out: dict[str, Any] = {
            "means": {k: _json_float(v) for k, v in self.means.items()},
            "directions": dict(self.directions),
            "ks": list(self.ks),
            "n_evaluated": self.n_evaluated,
            "n_excluded_empty": self.n_excluded_empty,
            "seconds": self.seconds,
        }
        if self.skipped:
            out["skipped"] = list(self.skipped)
        out["stderr"] = {k: _json_float(v) for k, v in self.stderr.items()}
        out["ci"] = None if self.ci is None else {k: [_json_float(v) for v in lh] for k, lh in self.ci.items()}
        if self.ci is not None:
            out["ci_level"] = self.ci_level
        if per_user:
            out["per_user"] = {c: [_json_float(v) if isinstance(v, float) else v for v in self.per_user[c].to_list()]
                               for c in self.per_user.columns}
        return out


def _json_float(v: float) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


def _canonical_csr(m: Any) -> sp.csr_matrix:
    """A CSR copy-if-needed with sorted, unique indices and no stored zeros (stored zeros are not relevant).
    A CSR input is checked as it is (scipy caches its canonical-format flag on the object), not re-wrapped."""
    if not (sp.issparse(m) and m.format == "csr"):
        m = sp.csr_matrix(m)
    if not m.has_canonical_format or (m.nnz and not m.data.all()):
        m = m.copy()
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
    return m


def _ground_truth_arrays(ground_truth: GroundTruth, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(ground_truth, tuple):
        if len(ground_truth) != 2:
            raise ConfigError("ground_truth as a tuple must be (indptr, indices)")
        indptr = np.asarray(ground_truth[0], dtype=np.int64)
        indices = np.asarray(ground_truth[1])
        if indptr.ndim != 1 or len(indptr) != n_rows + 1 or indptr[0] != 0 or indptr[-1] != len(indices) \
                or (n_rows and np.diff(indptr).min() < 0):
            raise DataError(
                f"ground_truth (indptr, indices) is malformed for {n_rows} top-k rows: indptr needs {n_rows + 1} "
                f"non-decreasing entries from 0 to len(indices)={len(indices)}."
            )
        if len(indices) and indices.min() < 0:
            raise DataError(f"ground_truth holds a negative item code ({int(indices.min())})")
        n_cols = int(indices.max()) + 1 if len(indices) else 0
        m = _canonical_csr(sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr),
                                         shape=(n_rows, n_cols)))
    elif sp.issparse(ground_truth):
        m = _canonical_csr(ground_truth)
        if m.shape[0] != n_rows:
            raise DataError(
                f"ground_truth has {m.shape[0]} rows but topk has {n_rows}; row r of both must be the same user "
                "(e.g. pass test_csr[users] with topk ranked for those users)."
            )
    else:
        raise ConfigError(
            f"ground_truth must be a scipy sparse matrix or (indptr, indices), got {type(ground_truth).__name__}"
        )
    return m.indptr.astype(np.int64, copy=False), m.indices.astype(np.int32, copy=False)


def train_popularity(train: Any, n_items: int) -> tuple[np.ndarray, int]:
    """(item popularity, number of training users) from a users x items matrix or an ``Interactions``.

    Popularity of item i = number of distinct training users who interacted with it; training users = rows
    with at least one interaction.
    """
    if hasattr(train, "csr") and callable(train.csr):  # recux.data.Interactions
        train = train.csr()
    if not sp.issparse(train):
        raise ConfigError(f"train must be a users x items scipy sparse matrix, got {type(train).__name__}")
    m = _canonical_csr(train)
    if m.shape[1] > n_items and m.nnz and m.indices.max() >= n_items:
        raise DataError(f"train holds item code {int(m.indices.max())} but the catalogue has {n_items} items")
    from recux.kernels.beyond import item_counts

    counts = item_counts(m.indices, n_items)
    n_users = int(np.count_nonzero(np.diff(m.indptr)))
    return counts, n_users


def _infer_n_items(n_items, topk, gt_indices, gt_cols, train, item_features) -> int:
    if n_items is not None:
        return int(n_items)
    cands = [int(topk.max()) + 1 if topk.size else 0, int(gt_indices.max()) + 1 if len(gt_indices) else 0]
    if gt_cols is not None:
        cands.append(gt_cols)
    if train is not None and hasattr(train, "shape"):
        cands.append(int(train.shape[1]))
    if train is not None and hasattr(train, "n_items"):
        cands.append(int(train.n_items))
    if item_features is not None and hasattr(item_features, "height"):
        cands.append(int(item_features.height))
    return max(cands)


_NEED_ARG = {
    "train_popularity": ("train", "train=<users x items CSR of training interactions> (recux-evaluate: --train)"),
    "scores": ("scores", "scores=<(n, K) scores of the top-k items>"),
    "item_features": ("item_features", "item_features=<polars DataFrame, row i = item code i> "
                                       "(recux-evaluate: --item-features FILE)"),
    "user_groups": ("user_groups", "user_groups=<(n,) group label per row>"),
    "graded_truth": ("graded_truth", "graded_truth=<CSR like ground_truth with each pair's grade, e.g. the "
                                     "rating, as data> (recux-evaluate: --relevance-col)"),
    "history": ("history", "history=<CSR whose row r holds the training items of topk row r's user> "
                           "(recux-evaluate: --history FILE)"),
    "item_embeddings": ("item_embeddings", "item_embeddings=<(n_items, d) array of item embeddings, e.g. a text "
                                           "encoder's, or a zero-argument callable returning it> (a run: the "
                                           "`encoder` config group over the dataset's item texts)"),
}


def _check_no_repeats(topk: np.ndarray, users: np.ndarray | None) -> None:
    """Refuse a top-k row that lists an item twice (it would count one relevant item several times and give
    recall or NDCG above 1). One sort of the (n x K) array: about 25 ms for 100k users x 100."""
    if topk.shape[1] < 2:
        return
    s = np.sort(topk, axis=1)
    rep = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
    rows = np.flatnonzero(rep.any(axis=1))
    if len(rows):
        r = int(rows[0])
        item = int(s[r, 1:][rep[r]][0])
        who = f"row {r}" if users is None else f"row {r} (user {users[r].item()!r})"
        raise DataError(
            f"topk {who} lists item code {item} more than once (positions "
            f"{', '.join(str(int(p) + 1) for p in np.flatnonzero(topk[r] == item))}); {len(rows)} row(s) repeat "
            "an item. A top-k list ranks each item once: keep each item's first position."
        )


def evaluate_topk(
    topk: np.ndarray,
    ground_truth: GroundTruth,
    *,
    metrics: Sequence[MetricSpec] | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    scores: np.ndarray | None = None,
    train: Any = None,
    users: np.ndarray | None = None,
    n_items: int | None = None,
    item_features: Any = None,
    user_groups: np.ndarray | None = None,
    bootstrap: int = 0,
    graded_truth: Any = None,
    history: Any = None,
    item_embeddings: Any = None,
) -> EvalReport:
    """Evaluate (n x K) top-k item codes (best first, -1 padding) against ground truth whose row r belongs to
    the same user as ``topk[r]``.

    ``metrics``: specs or ``build_metrics`` output; None = the default set, leaving out (and listing in
    ``report.skipped``) those whose input is missing, e.g. popularity metrics without ``train``.
    ``train``: users x items training matrix (or Interactions) for popularity metrics. ``users``: the id or
    code of each row for the per-user table (default 0..n-1). ``bootstrap``: resamples for a 95% bootstrap CI of
    each per-user mean in ``report.ci`` (0 = none; config key ``metrics.bootstrap``); ``report.stderr`` always.
    ``graded_truth``: a sparse matrix with the
    same rows as ``ground_truth`` holding each held-out pair's grade (e.g. its rating), for graded metrics
    (``ndcg_graded``, ``ndcg_burges``; see ``recux.relevance.align_relevance``). A row of ``topk`` that lists
    an item twice is refused. ``history``: a sparse matrix whose row r holds the training items of
    ``topk[r]``'s user (e.g. ``train_csr[users]``), for metrics that compare a list with the user's history.
    ``item_embeddings``: an (n_items, d) array (row i = item code i), or a zero-argument callable returning one,
    called only when a selected metric needs embeddings; its rows are L2-normalised once (zero rows stay zero).
    """
    t0 = time.perf_counter()
    topk = _checked_topk(topk)
    n, width = topk.shape
    from recux.kernels.accuracy import check_ks

    kk = check_ks(ks, width)
    gt_cols = int(ground_truth.shape[1]) if sp.issparse(ground_truth) else None
    gt_indptr, gt_indices = _ground_truth_arrays(ground_truth, n)
    _check_no_repeats(topk, None if users is None else np.asarray(users))
    gt_relevance = None if graded_truth is None else align_relevance(graded_truth, gt_indptr, gt_indices)
    n_items = _infer_n_items(n_items, topk, gt_indices, gt_cols, train, item_features)
    _check_codes(topk, gt_indices, n_items)
    row_ids = np.arange(n) if users is None else np.asarray(users)
    for name, arr in (("users", row_ids), ("scores", scores), ("user_groups", user_groups)):
        if arr is not None and len(arr) != n:
            raise ConfigError(f"{name} has {len(arr)} rows but topk has {n}; they must be aligned row by row")
    provided = {"train_popularity": train is not None, "scores": scores is not None,
                "item_features": item_features is not None, "user_groups": user_groups is not None,
                "graded_truth": graded_truth is not None, "history": history is not None,
                "item_embeddings": item_embeddings is not None}
    active, skipped = _select_metrics(metrics, provided)

    # Drop users with an empty ground truth: their rows hold no indices, so gt_indices stays as it is.
    nonempty = np.diff(gt_indptr) > 0
    n_excluded = int(n - nonempty.sum())
    hist = None if history is None else _history_rows(history, n)
    if n_excluded:
        topk = np.ascontiguousarray(topk[nonempty])
        gt_indptr = np.concatenate([gt_indptr[:1], gt_indptr[1:][nonempty]])
        row_ids = row_ids[nonempty]
        scores = None if scores is None else np.asarray(scores)[nonempty]
        user_groups = None if user_groups is None else np.asarray(user_groups)[nonempty]
        hist = None if hist is None else hist[np.flatnonzero(nonempty)]
    if n == n_excluded:
        raise DataError(
            f"no user has ground truth: all {n} rows are empty. Check that the ground truth rows match the "
            "top-k rows and that the held-out data is not empty."
        )

    item_counts, n_train_users = (None, None) if train is None else train_popularity(train, n_items)
    emb = _metric_embeddings(item_embeddings, active, n_items)
    ctx = EvalContext(
        topk=topk, gt_indptr=gt_indptr, gt_indices=gt_indices, n_items=n_items, ks=kk, users=row_ids,
        scores=scores, train_item_counts=item_counts, n_train_users=n_train_users,
        item_features=item_features, user_groups=user_groups, gt_relevance=gt_relevance,
        history_indptr=None if hist is None else hist.indptr.astype(np.int64, copy=False),
        history_indices=None if hist is None else hist.indices.astype(np.int32, copy=False), item_embeddings=emb,
    )
    means, directions, columns = _compute(active, ctx, n - n_excluded)
    per_user = pl.DataFrame({"user": row_ids, **columns})
    stderr, ci = summarise(per_user, bootstrap=bootstrap)
    return EvalReport(means=means, per_user=per_user, n_evaluated=n - n_excluded, n_excluded_empty=n_excluded,
                      directions=directions, seconds=time.perf_counter() - t0, ks=kk, skipped=skipped,
                      stderr=stderr, ci=ci, ci_level=None if ci is None else 0.95)


def _history_rows(history: Any, n_rows: int) -> sp.csr_matrix:
    """The users' training items as a canonical CSR with one row per top-k row."""
    if not sp.issparse(history):
        raise ConfigError(f"history must be a scipy sparse matrix (row r = training items of topk row r's user), "
                          f"got {type(history).__name__}")
    m = _canonical_csr(history)
    if m.shape[0] != n_rows:
        raise DataError(f"history has {m.shape[0]} rows but topk has {n_rows}; pass train_csr[users] with topk "
                        "ranked for those users")
    return m


def _metric_embeddings(source: Any, active: list[BuiltMetric], n_items: int) -> np.ndarray | None:
    """The item embeddings with unit rows, resolved (a callable is called) only when an active metric needs
    them; None otherwise."""
    names = [info.name for info, _ in active if "item_embeddings" in info.meta.get("needs", ())]
    if not names or source is None:
        return None
    matrix = np.asarray(source() if callable(source) else source, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != n_items:
        raise DataError(f"item_embeddings for metric(s) {', '.join(names)} has shape {matrix.shape}; expected "
                        f"({n_items}, d): one row per item code")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _checked_topk(topk: Any) -> np.ndarray:
    topk = np.asarray(topk)
    if topk.ndim != 2:
        raise ConfigError(f"topk must be a 2-D (users x K) array of item codes, got shape {topk.shape}")
    if topk.size and not np.issubdtype(topk.dtype, np.integer):
        raise ConfigError(f"topk must hold integer item codes, got dtype {topk.dtype}")
    return np.ascontiguousarray(topk, dtype=np.int32)


def _check_codes(topk: np.ndarray, gt_indices: np.ndarray, n_items: int) -> None:
    if topk.size and (topk.min() < -1 or topk.max() >= n_items):
        bad = int(topk.min()) if topk.min() < -1 else int(topk.max())
        raise DataError(f"topk holds item code {bad}, outside 0..{n_items - 1} (and -1 for padding)")
    if len(gt_indices) and gt_indices.max() >= n_items:
        raise DataError(f"ground_truth holds item code {int(gt_indices.max())} but the catalogue has {n_items} items")


def _select_metrics(metrics: Sequence[MetricSpec] | None, provided: dict[str, bool]
                    ) -> tuple[list[BuiltMetric], list[str]]:
    """The metrics whose inputs are provided. With the default set (``metrics=None``) the others are skipped
    and listed; an explicitly requested metric with a missing input is an error naming the argument."""
    active: list[BuiltMetric] = []
    skipped: list[str] = []
    for info, metric in build_metrics(DEFAULT_METRICS if metrics is None else metrics):
        missing = [need for need in sorted(info.meta.get("needs", ())) if not provided.get(need, True)]
        if not missing:
            active.append((info, metric))
        elif metrics is None:
            skipped.append(info.name)
        else:
            hints = "; ".join(f"pass {_NEED_ARG[m][1]}" for m in missing)
            raise ConfigError(f"metric '{info.name}' needs {', '.join(missing)}: {hints}, or drop the metric.")
    return active, skipped


def _compute(active: list[BuiltMetric], ctx: EvalContext, n_eval: int
             ) -> tuple[dict[str, float], dict[str, bool], dict[str, np.ndarray]]:
    """Run each metric plugin: means (per-user means and corpus-level values), directions, per-user columns."""
    means: dict[str, float] = {}
    directions: dict[str, bool] = {}
    columns: dict[str, np.ndarray] = {}
    for info, metric in active:
        res = metric.compute(ctx)
        higher = bool(info.meta.get("higher_is_better", True))
        for name, vals in res.per_user.items():
            vals = np.asarray(vals, dtype=np.float64)
            if vals.shape != (n_eval,):
                raise PluginError(
                    f"metric '{info.name}' returned per-user '{name}' of shape {vals.shape}; expected ({n_eval},)"
                )
            _add(name, info.name, means, directions, higher)
            columns[name] = vals
            means[name] = _nanmean(vals)
        for name, val in res.aggregate.items():
            _add(name, info.name, means, directions, higher)
            means[name] = float(val)
    return means, directions, columns


def check_bootstrap(bootstrap: Any) -> int:
    """The number of bootstrap resamples (``metrics.bootstrap``), or a ConfigError naming the fix."""
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise ConfigError(f"metrics.bootstrap={bootstrap!r} must be a non-negative integer: the number of "
                          "bootstrap resamples for a CI of each per-user mean (0 = no CI; e.g. 1000)")
    return int(bootstrap)


def summarise(per_user: pl.DataFrame, bootstrap: int = 0, level: float = 0.95,
              seed: int = 0) -> tuple[dict[str, float], dict[str, list[float]] | None]:
    """Standard error of each per-user mean (every column but "user"), and its percentile bootstrap CI when
    ``bootstrap`` > 0 resamples of users (``recux.significance.bootstrap_ci``, seeded: repeatable).

    stderr = s / sqrt(n), s the sample standard deviation (ddof=1) of the column's n non-NaN values (NaN
    marks a value undefined for a user and is left out, as in the mean); NaN when n < 2. Corpus-level values
    (coverage, gini) have no per-user values, hence no entry: their spread would need resampling the whole
    evaluation, not users' values. Returns ``(stderr, ci)``; ``ci`` is None when ``bootstrap`` is 0.
    """
    from recux.significance import bootstrap_ci

    bootstrap = check_bootstrap(bootstrap)
    stderr: dict[str, float] = {}
    ci: dict[str, list[float]] | None = {} if bootstrap else None
    for name in per_user.columns:
        if name == "user":
            continue
        vals = per_user[name].to_numpy().astype(np.float64, copy=False)
        if np.isnan(vals.sum()):  # only then look for the NaNs (a sum is cheaper than a mask)
            vals = vals[~np.isnan(vals)]
        stderr[name] = float(vals.std(ddof=1) / math.sqrt(vals.size)) if vals.size > 1 else float("nan")
        if ci is not None:
            ci[name] = list(bootstrap_ci(vals, level=level, n_resamples=int(bootstrap), seed=seed))
    return stderr, ci


def _add(name: str, metric: str, means: dict, directions: dict, higher: bool) -> None:
    if name in means:
        raise PluginError(f"metric '{metric}' produced '{name}', which another metric already produced; rename one")
    directions[name] = higher


def _nanmean(vals: np.ndarray) -> float:
    """Mean over users; NaN marks a value undefined for that user (e.g. ARP of an all-padding list)."""
    total = vals.sum()
    if len(vals) and not np.isnan(total):  # no NaN: np.nanmean's own sum and count, without its masked copy
        return float(total / len(vals))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(vals)) if len(vals) else float("nan")


def evaluate_scores(
    scores: np.ndarray,
    ground_truth: GroundTruth,
    *,
    k_max: int | None = None,
    exclude: sp.spmatrix | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    **kwargs: Any,
) -> EvalReport:
    """Rank a dense (n x n_items) score matrix (higher first; items of ``exclude`` row r masked for row r),
    keep the top ``k_max`` (default max(ks)) and evaluate them with ``evaluate_topk``."""
    from recux.ranking import to_numpy, topk_from_scores

    arr = to_numpy(scores)
    block = np.asarray(arr, dtype=np.float64 if arr.dtype == np.float64 else np.float32)  # only read
    if block.ndim != 2:
        raise ConfigError(f"scores must be a 2-D (users x items) array, got shape {block.shape}")
    n, n_cols = block.shape
    k_max = max(int(k) for k in ks) if k_max is None else int(k_max)
    if k_max > n_cols:
        raise ConfigError(f"k_max={k_max} is larger than the catalogue ({n_cols} score columns); lower it")
    if exclude is not None:
        exclude = _canonical_csr(exclude)
        if exclude.shape != block.shape:
            raise ConfigError(f"exclude has shape {exclude.shape} but scores has {block.shape}; align them")
    topk, top_scores = topk_from_scores(block, k_max, exclude=exclude)
    kwargs.setdefault("n_items", n_cols)
    return evaluate_topk(topk, ground_truth, ks=ks, scores=top_scores, **kwargs)


class Validator:
    """Accuracy at k of a model's full-catalogue ranking on validation users, for early stopping.

    ``exclude`` and ``truth`` are users x items CSR matrices indexed by user code (row u = user u);
    users whose truth row is empty are skipped and counted in ``n_excluded_empty``.
    Calling it with ``score_fn(user_codes) -> (b, n_items)`` returns ``{"ndcg@10": mean, ...}``.
    """

    def __init__(self, users: np.ndarray, exclude: sp.spmatrix | None, truth: sp.spmatrix, k: int = 10,
                 batch_size: int = 1024) -> None:
        users = np.asarray(users, dtype=np.int64)
        truth = _canonical_csr(truth)
        if len(users) and (users.min() < 0 or users.max() >= truth.shape[0]):
            raise ConfigError(f"validation user codes must lie in 0..{truth.shape[0] - 1} (rows of truth)")
        if int(k) < 1:
            raise ConfigError(f"validation k must be >= 1, got {k}")
        nonempty = np.diff(truth.indptr)[users] > 0
        self.users = users[nonempty]
        self.n_excluded_empty = int(len(users) - nonempty.sum())
        if len(self.users) == 0:
            raise DataError(f"none of the {len(users)} validation users has validation interactions")
        sub = truth[self.users]
        self.gt_indptr = sub.indptr.astype(np.int64)
        self.gt_indices = sub.indices.astype(np.int32)
        self.exclude = None if exclude is None else _canonical_csr(exclude)
        self.k = int(k)
        self.batch_size = int(batch_size)

    def __call__(self, score_fn: Any) -> dict[str, float]:
        from recux.kernels.accuracy import accuracy_metrics
        from recux.ranking import rank_topk

        topk, _ = rank_topk(score_fn, self.users, self.k, exclude=self.exclude, batch_size=self.batch_size)
        vals = accuracy_metrics(topk, self.gt_indptr, self.gt_indices, (self.k,))
        return {f"{m}@{self.k}": float(vals[f"{m}@{self.k}"].mean()) for m in ACCURACY_METRICS}
