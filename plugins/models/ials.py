"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008), fitted by the ``implicit`` library's CPU solver
(``implicit.cpu.als.AlternatingLeastSquares``, conjugate-gradient steps): weighted matrix factorisation
where every observed pair has confidence ``alpha`` and every unobserved pair weight 1 with target 0.

The number of ALS sweeps is chosen by validation: one sweep at a time, validating every ``eval_every``
sweeps, stopping after ``patience`` validations without improvement and keeping the best factors.
``score(u) = user_factors[u] @ item_factors.T``. ``implicit`` is imported only inside fit.

``score_histories`` (and so ``score_with_history``) folds a new history in: the user's factors are re-solved exactly against the fitted item
factors Y (the ALS user step, Hu et al. 2008 eq. 4, with implicit's weighting: confidence 1 + alpha on observed
pairs, target 1; weight 1, target 0 elsewhere): x = (Y'Y + alpha Y_S'Y_S + reg I)^-1 (1 + alpha) Y_S'1, S the
user's items. (The fitted factors come from conjugate-gradient steps, so they are close to, not equal to, the
exact solve of the same history.)
"""

from __future__ import annotations

import time

import numpy as np

from recux.errors import ConfigError
from recux.model import FitContext, Recommender
from recux.registry import register


@register("model", "ials", training="iterative")
class IALS(Recommender):
    """Weighted matrix factorisation of the binary training matrix by alternating least squares."""

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 30.0,
        alpha: float = 4.0,
        iterations: int = 50,
        patience: int = 5,
        eval_every: int = 1,
        use_cg: bool = True,
        num_threads: int = 0,
    ) -> None:
        """iterations: most ALS sweeps (each solves users then items); the validation-best sweep is kept.
        regularization: L2 weight on both factor tables (implicit's convention, not scaled by counts).
        alpha: confidence of an observed pair (implicit multiplies the binary matrix by it).
        num_threads: implicit's worker threads (0 = all cores); the BLAS pool is held at 1 while fitting.
        """
        if factors < 1 or iterations < 1 or eval_every < 1 or patience < 1:
            raise ConfigError("ials: factors, iterations, eval_every and patience must be >= 1")
        if regularization < 0 or alpha <= 0:
            raise ConfigError(f"ials: need regularization >= 0 and alpha > 0, got {regularization}, {alpha}")
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.patience = int(patience)
        self.eval_every = int(eval_every)
        self.use_cg = bool(use_cg)
        self.num_threads = int(num_threads)
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.best_iteration: int | None = None

    def fit(self, ctx: FitContext) -> None:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
            from threadpoolctl import threadpool_limits
        except ImportError as exc:
            raise ConfigError(
                f"model 'ials' needs the optional package {exc.name!r}: pip install 'recux[ials]'"
            ) from None

        train = ctx.split.train
        self.n_users, self.n_items = train.n_users, train.n_items
        x = train.csr(binary=True)
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work; a BLAS pool only contends
            als = AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                iterations=1, use_cg=self.use_cg, num_threads=self.num_threads, random_state=int(ctx.seed),
            )
            best, best_it, stale = -np.inf, None, 0
            for it in range(self.iterations):
                t0 = time.perf_counter()
                als.fit(x, show_progress=False)  # continues from the current factors: one more sweep
                record: dict[str, float] = {"epoch": it, "epoch_seconds": time.perf_counter() - t0}
                last = it + 1 == self.iterations
                if ctx.validate is not None and ((it + 1) % self.eval_every == 0 or last):
                    t0 = time.perf_counter()
                    self.user_factors, self.item_factors = als.user_factors, als.item_factors
                    metrics = ctx.validate(self.score)
                    record.update({f"val/{k}": float(v) for k, v in metrics.items()})
                    record["val_seconds"] = time.perf_counter() - t0
                    value = metrics[ctx.monitor]
                    if value > best:
                        best, best_it, stale = value, it, 0
                        kept = (als.user_factors.copy(), als.item_factors.copy())
                    else:
                        stale += 1
                ctx.history.append(record)
                if stale >= self.patience:
                    break
        if best_it is None:  # no validation: keep the last sweep
            kept, best_it = (als.user_factors, als.item_factors), it
        self.user_factors, self.item_factors = kept
        self.best_iteration = best_it

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.user_factors is None or self.item_factors is None:
            raise RuntimeError("IALS.score called before fit")
        users = np.asarray(users, dtype=np.int64)
        return np.asarray(self.user_factors[users] @ self.item_factors.T, dtype=np.float32)

    def score_histories(self, histories) -> np.ndarray:
        """Scores from each user's factors re-solved for the distinct items of their history (module docstring)."""
        if self.item_factors is None:
            raise RuntimeError("IALS.score_histories called before fit")
        y = np.asarray(self.item_factors, dtype=np.float64)
        gram = y.T @ y + self.regularization * np.eye(y.shape[1])
        out = np.empty((len(histories), y.shape[0]), dtype=np.float32)
        for r, items in enumerate(histories):
            ys = y[np.unique(np.asarray(items, dtype=np.int64))]
            x = np.linalg.solve(gram + self.alpha * ys.T @ ys, (1.0 + self.alpha) * ys.sum(axis=0))
            out[r] = x @ y.T
        return out
