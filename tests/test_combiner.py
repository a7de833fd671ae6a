"""The combiners of the Hawkes model's and the trees' probabilities: the geometric mean with a
fitted temperature, and the learned log-linear pool p ∝ p_hawkes^a · p_trees^b."""

import numpy as np
import pytest

from culpa.evaluate import metrics
from culpa.evaluate.metrics import log_loss
from culpa.model.combiner import (AgreementPool, GeometricCombiner, LogLinearPool, disagree,
                                  out_of_fold, pool)


def _members(seed=0, n=400, k=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    def noisy(scale):
        z = rng.normal(0, 1, (n, k))
        z[np.arange(n), y] += scale
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return noisy(1.5), noisy(1.5), y


def test_equal_weights_is_the_renormalised_geometric_mean():
    a, b, _ = _members()
    g = np.sqrt(a * b)
    expected = g / g.sum(axis=1, keepdims=True)
    got = GeometricCombiner().predict_proba([a, b])
    assert np.allclose(got, expected)
    assert np.allclose(got.sum(axis=1), 1.0)


def test_fit_returns_self_and_learns_a_temperature_that_calibrates():
    a, _, _ = _members(n=2000)
    # Labels drawn from a: a is calibrated. Cubed it is overconfident, and the fitted
    # temperature must undo that (T near 3).
    rng = np.random.default_rng(1)
    y = (rng.random(len(a))[:, None] > np.cumsum(a, axis=1)).sum(axis=1)
    sharp = [a ** 3 / (a ** 3).sum(axis=1, keepdims=True)] * 2
    comb = GeometricCombiner()
    assert comb.fit(sharp, y) is comb
    assert 2.5 < comb.temperature_ < 3.5
    assert log_loss(comb.predict_proba(sharp), y) < log_loss(
        GeometricCombiner().predict_proba(sharp), y)




def calibrated(n=4000, k=4, seed=0):
    """Probabilities and labels drawn from them: a perfectly calibrated model."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.5), size=n)
    y = np.array([rng.choice(k, p=row) for row in p])
    return p, y


def test_fit_returns_self_with_one_non_negative_weight_per_model():
    p, y = calibrated()
    noise = np.random.default_rng(1).dirichlet(np.ones(4), size=len(y))
    combiner = LogLinearPool()
    assert combiner.fit([p, noise], y) is combiner
    assert combiner.weights_.shape == (2,) and (combiner.weights_ >= 0).all()
    # the informative model carries the pool; pure noise gets (almost) nothing
    assert combiner.weights_[0] > 0.8 and combiner.weights_[1] < 0.1


def test_the_pool_of_two_identical_calibrated_models_is_that_model():
    p, y = calibrated()
    assert np.allclose(pool([p, p], [0.5, 0.5]), p)
    combiner = LogLinearPool().fit([p, p], y)
    assert combiner.weights_.sum() == pytest.approx(1.0, abs=0.08)
    assert np.abs(combiner.predict_proba([p, p]) - p).max() < 0.05


def test_free_weights_also_calibrate_an_overconfident_model():
    p, y = calibrated()
    sharp = pool([p], [3.0])  # p^3, renormalised: far too sure of itself
    combiner = LogLinearPool().fit([sharp], y)
    assert combiner.weights_[0] == pytest.approx(1 / 3, abs=0.05)
    assert metrics.ece(combiner.predict_proba([sharp]), y) < metrics.ece(sharp, y)


def _easy_and_hard(seed, n=8000, k=4):
    """Two members that are right and sure on most rows, and on the rest (a fifth) as sure
    but guessing: there they often disagree."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    hard = rng.random(n) < 0.2

    def member():
        z = rng.normal(0, 1, (n, k))
        z[np.arange(n), y] += np.where(hard, 0.0, 3.0)
        z *= 1.5
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return [member(), member()], y


def test_rows_where_the_members_disagree_get_weights_of_their_own():
    train, y = _easy_and_hard(0)
    test, y_test = _easy_and_hard(1)
    split = AgreementPool().fit(train, y)
    one = LogLinearPool().fit(train, y)
    assert split.split_ and split.weights_.shape == (2, 2)
    assert sum(split.rows_) == len(y) and split.rows_[1] == disagree(train).sum()
    # where they disagree the members are guessing: the pool must trust them less there
    assert split.weights_[1].sum() < split.weights_[0].sum()
    dis = disagree(test)
    for rows in (dis, np.ones(len(y_test), bool)):
        p_split = split.predict_proba([p[rows] for p in test])
        p_one = one.predict_proba([p[rows] for p in test])
        assert log_loss(p_split, y_test[rows]) < log_loss(p_one, y_test[rows])
    assert metrics.ece(split.predict_proba(test)[dis], y_test[dis]) < \
        metrics.ece(one.predict_proba(test)[dis], y_test[dis])


def test_with_too_few_rows_on_one_side_one_set_of_weights_serves_both():
    p, y = calibrated()
    agreeing = AgreementPool().fit([p, p], y)  # two identical members never disagree
    assert not agreeing.split_ and agreeing.rows_ == (len(y), 0)
    np.testing.assert_allclose(agreeing.weights_[0], agreeing.weights_[1])
    np.testing.assert_allclose(agreeing.weights_[0], LogLinearPool().fit([p, p], y).weights_)
    train, y = _easy_and_hard(0, n=600)
    assert not AgreementPool(min_rows=1000).fit(train, y).split_
    assert AgreementPool(min_rows=10).fit(train, y).split_


def test_a_row_of_weight_two_counts_as_the_row_twice():
    train, y = _easy_and_hard(2, n=1500)
    twice = np.arange(len(y)) < 500
    dup = np.concatenate([np.arange(len(y)), np.flatnonzero(twice)])
    weight = np.where(twice, 2.0, 1.0)
    for cls in (LogLinearPool, AgreementPool):
        weighted = cls().fit(train, y, sample_weight=weight)
        copied = cls().fit([p[dup] for p in train], y[dup])
        np.testing.assert_allclose(weighted.weights_, copied.weights_, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError):
        LogLinearPool().fit(train, y, sample_weight=-weight)


def test_out_of_fold_never_lets_a_row_see_its_own_label():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=600)  # labels with no signal at all
    seen = []

    def memoriser(train, held):
        """Answers with the label it was trained on where it has one: a perfect leak detector."""
        seen.append((set(train), set(held)))
        known = dict(zip(train, y[train]))
        out = np.full((len(held), 3), 1 / 3)
        for i, r in enumerate(held):
            if r in known:
                out[i] = np.eye(3)[known[r]] * 0.98 + 0.02 / 3
        return out

    oof = out_of_fold(memoriser, len(y), n_folds=2, seed=0)
    assert len(seen) == 2 and all(not (train & held) for train, held in seen)
    assert set().union(*(held for _, held in seen)) == set(range(len(y)))
    assert not np.isnan(oof).any()
    # nothing leaked: out-of-fold the memoriser is exactly chance
    assert metrics.score(oof, y)["log_loss"] == pytest.approx(np.log(3))


def test_mismatched_inputs_are_refused_with_a_clear_message():
    p, y = calibrated(n=50)
    with pytest.raises(ValueError, match="shape"):
        LogLinearPool().fit([p, p[:, :3]], y)
    with pytest.raises(ValueError, match="labels"):
        LogLinearPool().fit([p], y[:10])
    with pytest.raises(RuntimeError, match="not fitted"):
        LogLinearPool().predict_proba([p])
