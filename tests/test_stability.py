"""Perturbation stability (recux.stability): Jaccard and extrapolated RBO against plain-Python implementations of
their formulas and a hand-computed case; 1.0 for an unchanged history; history edits change exactly one row per
user; the measured stability of EASE equals a recomputation with plain numpy sorting."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recux.data import Interactions
from recux.errors import ConfigError
from recux.plugins.models.ease import EASE
from recux.plugins.models.popularity import MostPopular
from recux.stability import StabilitySettings, edit_history, jaccard, measure, rbo_ext
from tests._model_world import fit_context, make_world


def plain_jaccard(s: list[int], t: list[int]) -> float:
    a, b = {x for x in s if x >= 0}, {x for x in t if x >= 0}
    return len(a & b) / len(a | b) if a | b else 1.0


def plain_rbo_ext(s: list[int], t: list[int], p: float) -> float:
    """Webber, Moffat & Zobel (2010) eq. 32, written out with Python sets."""
    k = len(s)
    x = [len({i for i in s[:d] if i >= 0} & set(t[:d])) for d in range(1, k + 1)]
    return x[k - 1] / k * p ** k + (1 - p) / p * sum(x[d - 1] / d * p ** d for d in range(1, k + 1))


def test_hand_computed_case():
    s = np.array([[1, 2, 3, 4]])
    t = np.array([[2, 1, 5, 4]])
    # X_1 = 0, X_2 = 2, X_3 = 2, X_4 = 3; p = 0.5
    expected = 3 / 4 * 0.5 ** 4 + (0.5 / 0.5) * (0 + 2 / 2 * 0.25 + 2 / 3 * 0.125 + 3 / 4 * 0.0625)
    assert rbo_ext(s, t, 0.5)[0] == pytest.approx(expected)
    assert jaccard(s, t)[0] == pytest.approx(3 / 5)


def test_against_plain_python_on_random_lists():
    rng = np.random.default_rng(0)
    k = 10
    s = np.array([rng.choice(30, size=k, replace=False) for _ in range(200)])
    t = np.array([rng.choice(30, size=k, replace=False) for _ in range(200)])
    t[:20] = s[:20]  # some identical lists
    t[20:40, 5:] = -1  # some padded lists
    for p in (0.5, 0.9, 0.98):
        np.testing.assert_allclose(rbo_ext(s, t, p), [plain_rbo_ext(a.tolist(), b.tolist(), p)
                                                      for a, b in zip(s, t, strict=True)], rtol=1e-12)
    np.testing.assert_allclose(jaccard(s, t), [plain_jaccard(a.tolist(), b.tolist())
                                               for a, b in zip(s, t, strict=True)], rtol=1e-12)
    np.testing.assert_allclose(rbo_ext(s[:20], t[:20], 0.9), 1.0)
    np.testing.assert_allclose(jaccard(s[:20], t[:20]), 1.0)
    with pytest.raises(ConfigError, match="rbo_p"):
        rbo_ext(s, t, 1.0)


@pytest.fixture(scope="module")
def world():
    ds, split = make_world(n_users=120, n_items=80, seed=2)
    t = np.arange(len(split.train)) + 0
    train = Interactions(split.train.user, split.train.item, split.train.n_users, split.train.n_items,
                         timestamp=t)
    return ds, split, train


def test_edits_change_exactly_one_row_per_user(world):
    _, _, history = world
    users = np.arange(0, 120, 3)
    rng = np.random.default_rng(0)
    removed, none_added = edit_history(history, users, "remove", rng)
    assert none_added.nnz == 0
    before, after = np.bincount(history.user, minlength=120), np.bincount(removed.user, minlength=120)
    assert np.array_equal(before - after, np.isin(np.arange(120), users) * (before > 0))
    added, added_items = edit_history(history, users, "add", rng)
    assert len(added) == len(history) + len(users)
    seen = history.csr()
    for u in users:
        (item,) = added_items[u].indices
        assert seen[u, item] == 0  # a new item for that user
    assert added.timestamp is not None and len(added.timestamp) == len(added)


def test_unchanged_history_and_history_free_model_give_one(world):
    ds, split, history = world
    pop = MostPopular()
    pop.fit(fit_context(ds, split))
    users = np.arange(120)
    mask = history.csr()
    out = measure(pop, history, users, mask, (5, 10), StabilitySettings(), seed=0)
    assert out and all(v == pytest.approx(1.0) for v in out.values())  # popularity ignores the history
    ease = EASE(l2=10.0)
    ease.fit(fit_context(ds, split))
    same = ease.score_with_history(users, history)
    np.testing.assert_allclose(same, ease.score(users), rtol=1e-6)  # the fitted history scores as score()


def test_ease_stability_equals_plain_recomputation(world):
    ds, split, history = world
    ease = EASE(l2=10.0)
    ease.fit(fit_context(ds, split))
    users = np.arange(120)
    mask = history.csr()
    settings = StabilitySettings(rbo_p=0.8)
    out = measure(ease, history, users, mask, (10,), settings, seed=4)
    dense_b = ease.weights.astype(np.float64)
    for i, edit in enumerate(settings.edits):
        edited, added = edit_history(history, users, edit, np.random.default_rng([4, 7, i]))
        banned = (mask + added).toarray() > 0
        jac, rbo = [], []
        for u in users:
            lists = []
            for h in (history, edited):
                s = h.csr().toarray()[u] @ dense_b
                s[banned[u]] = -np.inf
                lists.append(np.argsort(-s, kind="stable")[:10].tolist())
            jac.append(plain_jaccard(*lists))
            rbo.append(plain_rbo_ext(*lists, 0.8))
        assert out[f"stability/{edit}/jaccard@10"] == pytest.approx(np.mean(jac), abs=1e-9)
        assert out[f"stability/{edit}/rbo@10"] == pytest.approx(np.mean(rbo), abs=1e-9)
        assert out[f"stability/{edit}/jaccard@10"] < 1.0


def test_model_without_fold_in_is_not_measured(world):
    ds, split, history = world

    class NoFold(MostPopular):
        def score_with_history(self, users, history):
            return None

    m = NoFold()
    m.fit(fit_context(ds, split))
    assert measure(m, history, np.arange(10), sp.csr_matrix((120, 80)), (5,), StabilitySettings(), 0) is None


def test_settings_refuse_unknown_edits():
    with pytest.raises(ConfigError, match="task.stability.edits"):
        StabilitySettings.of({"edits": ["swap"]})


def test_sequential_score_with_history_scores_the_given_sequences(seq_world):
    from recux.plugins.models.sasrec import SASRec
    from recux.stages import concat
    from tests._seq_world import seq_context

    ds, split = seq_world
    model = SASRec(max_len=12, hidden_size=16, inner_size=32, n_layers=1, n_heads=1, dropout=0.1, attn_dropout=0.1,
                   lr=5e-3, batch_size=64, max_epochs=1, patience=1, num_threads=1)
    model.fit(seq_context(ds, split, seed=0))
    users = np.arange(30)
    own_before = model.score(users)  # scored from the training sequences
    history = concat(split.train, split.valid)
    folded = model.score_with_history(users, history)
    np.testing.assert_allclose(model.score(users), own_before)  # the model's own sequences are unchanged
    model.condition_on(history)
    np.testing.assert_allclose(folded, model.score(users), rtol=1e-5, atol=1e-6)
    edited, _ = edit_history(history, np.array([3]), "remove", np.random.default_rng(0))
    after = model.score_with_history(users, edited)
    changed = ~np.isclose(after, folded, rtol=1e-5, atol=1e-6).all(axis=1)
    assert changed.tolist() == [u == 3 for u in users]  # only the edited user's scores move


def test_ials_fold_in_solves_the_weighted_least_squares_user_step(world):
    pytest.importorskip("implicit")
    from recux.plugins.models.ials import IALS

    ds, split, history = world
    model = IALS(factors=8, regularization=2.0, alpha=3.0, iterations=3, patience=3, num_threads=1)
    model.fit(fit_context(ds, split))
    users = np.array([0, 5, 17])
    got = model.score_with_history(users, history)
    y = model.item_factors.astype(np.float64)
    p = history.csr().toarray()
    for row, u in enumerate(users):
        # minimise sum_i c_i (p_i - x.y_i)^2 + reg |x|^2 with c_i = 1 + alpha p_i: a plain weighted lstsq
        w = np.sqrt(1.0 + 3.0 * p[u])
        a = np.vstack([w[:, None] * y, np.sqrt(2.0) * np.eye(8)])
        b = np.concatenate([w * p[u], np.zeros(8)])
        x = np.linalg.lstsq(a, b, rcond=None)[0]
        np.testing.assert_allclose(got[row], x @ y.T, rtol=1e-4, atol=1e-5)
    fitted = model.score(users)
    assert np.corrcoef(got.ravel(), fitted.ravel())[0, 1] > 0.9  # close to the fitted (CG) factors' scores
