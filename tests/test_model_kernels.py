"""The model's building blocks: projection, candidate pairs, kernels (NumPy reference vs numba)."""

from __future__ import annotations

import numpy as np
import pytest

from culpa.model import kernels as kr
from culpa.model.background import SpatialBackground, TemporalBackground
from culpa.model.geo import LocalProjection, haversine_km
from culpa.model.marks import MarkModel, fatality_band, precision_class
from culpa.model.pairs import build_pairs, cap_for_budget
import reference_kernels as oracle


def test_projection_round_trip_and_local_distances():
    rng = np.random.default_rng(0)
    lat = rng.uniform(32, 37, 500)
    lon = rng.uniform(35, 42, 500)
    proj = LocalProjection.about(lat, lon)
    x, y = proj.forward(lat, lon)
    la, lo = proj.inverse(x, y)
    np.testing.assert_allclose(la, lat, atol=1e-9)
    np.testing.assert_allclose(lo, lon, atol=1e-9)
    # distances from the centre are exact; nearby pairs within 0.2 %
    cx, cy = proj.forward(proj.lat0, proj.lon0)
    np.testing.assert_allclose(np.hypot(x - cx, y - cy),
                               haversine_km(proj.lat0, proj.lon0, lat, lon), rtol=1e-9)
    lat2, lon2 = lat + rng.normal(0, 0.1, 500), lon + rng.normal(0, 0.1, 500)
    x2, y2 = proj.forward(lat2, lon2)
    np.testing.assert_allclose(np.hypot(x2 - x, y2 - y), haversine_km(lat, lon, lat2, lon2),
                               rtol=2e-3)
    assert haversine_km(0, 0, 0, 1) == pytest.approx(111.195, rel=1e-4)


def _brute(t, x, y, u, window, radius):
    n = len(t)
    out = []
    for i in range(n):
        dt = t[i] - t[:i]
        d2 = (x[i] - x[:i]) ** 2 + (y[i] - y[:i]) ** 2
        ok = (dt <= window) & (d2 <= radius ** 2) & ((dt > 0) | (u[i] > 0) | (u[:i] > 0))
        out.append(set(np.flatnonzero(ok).tolist()))
    return out


def test_pairs_match_brute_force_including_same_day_ties():
    rng = np.random.default_rng(1)
    n = 1500
    t = np.sort(np.floor(rng.uniform(0, 300, n)) + 0.5)  # day resolution: many ties
    x, y = rng.uniform(0, 120, n), rng.uniform(0, 80, n)
    u = np.where(rng.uniform(size=n) < 0.5, 0.5, 0.0)
    pairs = build_pairs(t, x, y, 20.0, 12.0, u=u)
    ref = _brute(t, x, y, u, 20.0, 12.0)
    assert pairs.n_pairs == sum(len(r) for r in ref)
    for i in range(n):
        got = pairs.parent[pairs.indptr[i]:pairs.indptr[i + 1]]
        assert set(got.tolist()) == ref[i]
    c = pairs.child()
    np.testing.assert_allclose(pairs.dt, t[c] - t[pairs.parent], atol=1e-4)
    np.testing.assert_allclose(pairs.d2, (x[c] - x[pairs.parent]) ** 2
                               + (y[c] - y[pairs.parent]) ** 2, rtol=1e-5)


def test_pair_budget_caps_each_child_to_its_nearest_candidates():
    rng = np.random.default_rng(2)
    n = 2000
    t = np.sort(rng.uniform(0, 100, n))
    x, y = rng.uniform(0, 30, n), rng.uniform(0, 30, n)
    full = build_pairs(t, x, y, 30.0, 10.0)
    budget = full.n_pairs // 3
    capped = build_pairs(t, x, y, 30.0, 10.0, max_pairs=budget)
    assert capped.capped and capped.n_pairs <= budget
    assert capped.cap == cap_for_budget(np.diff(full.indptr), budget)
    assert capped.n_candidates == full.n_pairs
    i = int(np.argmax(np.diff(full.indptr)))  # the busiest child keeps the closest ones
    sl = slice(capped.indptr[i], capped.indptr[i + 1])
    kept = set(capped.parent[sl].tolist())
    assert len(kept) == capped.cap
    fl = slice(full.indptr[i], full.indptr[i + 1])
    score = 0.1 * full.dt[fl] + full.d2[fl] / (2 * 2.0 ** 2)  # the builder's default proxy
    best = set(full.parent[fl][np.argsort(score)[:capped.cap]].tolist())
    assert len(kept & best) >= 0.95 * capped.cap


def _problem(seed, K=3, cross=False, n=1500):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 200, n))
    x, y = rng.uniform(0, 50, n), rng.uniform(0, 50, n)
    s2 = rng.choice([1.0, 1.0, 100.0, 625.0], n)
    u = rng.choice([0.0, 0.0, 0.5, 3.5, 15.0], n)
    pairs = build_pairs(t, x, y, 30.0, 15.0, u=u)
    lab = rng.integers(-1, K, n).astype(np.int32)
    Q = rng.dirichlet(np.ones(K), n)
    Q[lab >= 0] = 0.0
    Q[lab >= 0, lab[lab >= 0]] = 1.0
    alpha = np.diag(rng.uniform(0.2, 0.6, K))
    if cross:
        alpha += 0.05 * rng.uniform(size=(K, K)) * (1 - np.eye(K))
    B = rng.uniform(1e-5, 1e-3, (n, K))
    return pairs, s2, u, lab, Q, Q @ alpha, B, alpha


def _persistence(seed, n, K):
    """Kinds of 4 categories (some unknown), actor mark tables and persistence rates."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(-1, 4, n)
    return kr.persistence(kind, np.log(rng.dirichlet(np.ones(4), K)), rng.uniform(0.1, 0.9, K))


@pytest.mark.parametrize("cross,space,persist", [(False, 6.0, False), (True, 6.0, False),
                                                 (True, ([0.7, 0.3], [2.0, 60.0]), False),
                                                 (False, 6.0, True),
                                                 (True, ([0.7, 0.3], [2.0, 60.0]), True)])
def test_estep_numba_matches_numpy_reference(cross, space, persist):
    pairs, s2, u, lab, Q, Ex, B, alpha = _problem(3, cross=cross)
    pers = _persistence(7, *Q.shape) if persist else None
    args = (pairs, s2, u, lab, Q, Ex, B, alpha, 0.17, 30.0, space, pers)
    fast = kr.estep(*args, want_w=True)
    ref = oracle.estep_reference(*args)
    for name in ("Lam", "Phi", "N", "Cp", "copied", "fresh"):
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=1e-6,
                                   atol=1e-300, err_msg=name)
    np.testing.assert_allclose(fast.w, ref.w, rtol=1e-6, atol=1e-7)  # w is stored as float32
    for name in ("ll", "Sw", "Sdt", "Sc", "Sdd"):
        assert getattr(fast, name) == pytest.approx(getattr(ref, name), rel=1e-6), name
    lam = kr.intensity(pairs, s2, u, lab, Ex, B, alpha, 0.17, 30.0, space, pers)
    np.testing.assert_allclose(lam, fast.Lam, rtol=1e-12)
    if persist:  # copying a parent's kind is part of the triggered responsibility
        assert 0 < fast.copied.sum() < fast.Sw
        assert fast.Cp.sum() == pytest.approx(fast.copied.sum())
    # the responsibilities of each child sum to one with its background share
    child = pairs.child()
    tot = np.bincount(child, weights=fast.w.astype(float), minlength=len(lab)) + fast.Phi.sum(1)
    np.testing.assert_allclose(tot, 1.0, rtol=1e-5)


def test_kernel_integrates_to_one_and_date_convolution():
    omega, W = 0.2, 60.0
    dt = np.linspace(0, W, 200001)
    for u in (0.0, 0.5, 3.5):
        g = oracle.g_reference(dt, np.full_like(dt, u), omega, W)
        mass = np.trapezoid(g, dt) if hasattr(np, "trapezoid") else np.trapz(g, dt)
        # mass leaks below 0 and beyond W only by the convolution
        assert mass == pytest.approx(1.0, abs=0.5 * u * omega / (1 - np.exp(-omega * W)) + 1e-4)
    g0 = oracle.g_reference(np.array([5.0]), np.array([0.0]), omega, W)
    gu = oracle.g_reference(np.array([5.0]), np.array([2.0]), omega, W)
    assert gu[0] == pytest.approx(g0[0] * np.sinh(omega * 2) / (omega * 2), rel=1e-12)


@pytest.mark.parametrize("cross,space,persist", [(False, 4.0, False),
                                                 (True, ([0.6, 0.4], [1.0, 30.0]), False),
                                                 (True, ([0.6, 0.4], [1.0, 30.0]), True)])
def test_label_sweep_numba_matches_reference(cross, space, persist):
    pairs, s2, u, lab, Q, Ex, B, alpha = _problem(4, cross=cross, n=800)
    n, K = Q.shape
    pers = _persistence(9, n, K) if persist else None
    Lam = kr.intensity(pairs, s2, u, lab, Ex, B, alpha, 0.2, 30.0, space, pers)
    rng = np.random.default_rng(5)
    logf = np.log(rng.dirichlet(np.ones(K), n))
    Ghat = rng.uniform(0.5, 1.0, n)
    latent = np.flatnonzero(lab < 0).astype(np.int64)
    a = [Q.copy(), Ex.copy(), Lam.copy()]
    b = [Q.copy(), Ex.copy(), Lam.copy()]
    kr.label_sweep(latent, kr.children_of(pairs, n, lab < 0), pairs, s2, u, lab, *a, alpha, 0.2,
                   30.0, space, logf, Ghat, pers)
    oracle.label_sweep_reference(latent, pairs, s2, u, lab, *b, alpha, 0.2, 30.0, space, logf,
                             Ghat, pers)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-12)
    # Lam maintained in place equals a fresh computation with the new labels
    np.testing.assert_allclose(a[2], kr.intensity(pairs, s2, u, lab, a[1], B, alpha, 0.2, 30.0,
                                                  space, pers), rtol=1e-10)


def test_solve_label_maximises_its_surrogate():
    rng = np.random.default_rng(6)
    for _ in range(200):
        K = int(rng.integers(1, 6))
        a = rng.normal(-5, 4, K)
        A = rng.exponential(1.0, K) * (rng.uniform(size=K) < 0.6)
        q = np.empty(K)
        kr.solve_label(a, A, q)
        assert q.sum() == pytest.approx(1.0) and (q >= 0).all()

        def f(v):
            with np.errstate(divide="ignore", invalid="ignore"):
                return float(np.sum(v * a + np.where(A > 0, A * np.log(v), 0)
                                    - np.where(v > 0, v * np.log(v), 0)))

        best = f(q)
        for _ in range(20):
            z = rng.dirichlet(np.ones(K))
            assert f(z) <= best + 1e-9


def test_background_raster_integrates_to_one_and_matches_exact_kde():
    rng = np.random.default_rng(7)
    sb = SpatialBackground(0.0, 0.0, 1.0, 200, 150, 1)
    x, y = rng.uniform(40, 160, 3000), rng.uniform(40, 110, 3000)
    h = rng.choice([1.5, 3.0, 8.0, 25.0], 3000)
    w = np.full(3000, 1 / 3000)
    R, kappa, _ = sb.render(x, y, h, w)
    assert R.sum() * 1.0 == pytest.approx(1.0)
    sb.set_raster(0, R)
    px, py = rng.uniform(60, 140, 300), rng.uniform(60, 90, 300)
    exact = np.array([np.sum(w * np.exp(-((x - a) ** 2 + (y - b) ** 2) / (2 * h * h))
                             / (2 * np.pi * h * h)) for a, b in zip(px, py)])
    got = sb.kde(px, py)[:, 0]
    assert np.median(np.abs(got / exact - 1)) < 0.03
    assert sb.density(np.array([1e6]), np.array([1e6]))[0, 0] == pytest.approx(sb.eps / sb.area)


def test_background_update_survives_switching_between_cross_fit_and_leave_one_out():
    # An actor with weight in both folds gets cross-fitted KDEs; once the labels move its
    # weight into one fold, a leave-one-out KDE. Each fold of a cross-fit looks up only its
    # own events' precision levels, leave-one-out all of them: mixing the new proposal into
    # the old must blur the levels the old one never needed.
    from culpa.model.background import CrossFitKDE

    rng = np.random.default_rng(3)
    n = 400
    x, y = rng.uniform(20, 80, n), rng.uniform(20, 80, n)
    t = np.sort(rng.uniform(0, 120, n))
    fold = (t >= 60).astype(np.int8)
    prec = np.where((fold == 1) & (rng.random(n) < 0.5), 25.0, 1.0)  # fold 0: all exact
    sb = SpatialBackground(0.0, 0.0, 1.0, 100, 100, 1)
    sb.set_levels(prec)
    lvl = sb.level_of(prec)
    kde = CrossFitKDE(sb, x, y, t, np.full((n, 1), 5.0), lvl, fold)
    spread = np.ones(n)
    kde.accept(0, kde.propose(0, spread), 1.0)
    one_fold = np.where(fold == 1, 1.0, 0.0)
    kde.accept(0, kde.propose(0, one_fold), 0.5)
    np.testing.assert_allclose(kde.values[:, 0], 0.5 * kde.propose(0, spread)[2]
                               + 0.5 * kde.propose(0, one_fold)[2])
    kde.finalize()
    assert np.all(np.isfinite(sb.kde(x, y, prec)))


def test_temporal_background_never_zero():
    tb = TemporalBackground(0.0, 365.0, 90.0, 2)
    phi = np.zeros((10, 2))
    phi[:, 0] = 1.0
    tb.update(phi, tb.bin_of(np.linspace(0, 80, 10)))
    assert (tb.mu > 0).all()
    assert tb.mu[0, 0] > 100 * tb.mu[0, -1]
    assert tb.integral()[1] == pytest.approx(tb.tau * len(tb.lengths))


def test_temporal_background_with_a_prior_per_bin():
    # pseudo-counts spread over the bins (as an actor's activity): a quiet bin keeps a rate
    tb = TemporalBackground(0.0, 360.0, 90.0, 1)
    extra = np.array([[0.0, 0.0, 4.0, 0.0]])
    tb.add_prior(extra)
    tb.update(np.ones((3, 1)), np.array([0, 0, 1]))
    np.testing.assert_allclose(tb.mu[0] * tb.lengths, [2.1, 1.1, 4.1, 0.1])
    assert tb.log_prior() == pytest.approx(float(np.sum((0.1 + extra) * np.log(tb.mu))))


def test_marks_weighted_counts_and_missing_marks():
    band = fatality_band([0, 1, 4, 5, 24, 25, np.nan, -1])
    assert band.tolist() == [0, 1, 1, 2, 2, 3, -1, -1]
    mm = MarkModel(["a|*", "b|*"], 2, pseudo_count=1.0, channels=("kind", "fatalities"))
    codes = mm.encode(["a", "a", "b", None, "zzz"], None, [0, 0, 25, np.nan, np.nan], None)
    assert codes[:, 0].tolist() == [-2, -2, -3, -1, -1]  # types without a target
    fit_codes = codes.copy()
    fit_codes[:3, 0] = [0, 0, 1]
    Q = np.array([[1, 0], [1, 0], [0, 1], [0.5, 0.5], [0.5, 0.5]], float)
    mm.update(Q, fit_codes)
    np.testing.assert_allclose(np.exp(mm.log_p[0][0]), [3 / 4, 1 / 4])
    ll = mm.loglik(codes)
    np.testing.assert_allclose(ll[3:], 0.0)  # unknown marks say nothing


def test_kind_marks_pair_type_and_target_and_marginalise_an_unknown_target():
    etype = ["one-sided"] * 6 + ["state-based"] * 6
    target = ["Civilians"] * 6 + ["SDF"] * 5 + ["Rare group"]
    mm = MarkModel.for_events(etype, target, 2, channels=("kind",), min_count=5)
    assert mm.kinds == ["one-sided|*", "one-sided|Civilians", "state-based|*",
                        "state-based|SDF"]
    codes = mm.encode(etype, target, None, None)
    assert codes[-1, 0] == mm.kinds.index("state-based|*")  # a rare target
    Q = np.zeros((12, 2))
    Q[:6, 0] = Q[6:, 1] = 1.0
    mm.update(Q, codes)
    # a query with a type but no target is scored by P(type | actor)
    ll = mm.loglik(mm.encode(["state-based"], [None], None, None))
    p_type = np.exp(mm.log_p[0])[:, 2:].sum(1)
    np.testing.assert_allclose(np.exp(ll[0]), p_type)
    np.testing.assert_allclose(np.exp(ll[0]), [(0 + 2) / (6 + 4), (6 + 2) / (6 + 4)])


def test_precision_classes():
    assert precision_class([0.5, 1, 2, 25, 50, 100, np.nan]).tolist() == [0, 0, 1, 1, 2, 3, -1]


def test_background_blur_by_location_precision():
    """An imprecise point sees the density convolved with its own error: b * N(0, s^2)."""
    rng = np.random.default_rng(8)
    sb = SpatialBackground(0.0, 0.0, 1.0, 300, 300, 1)
    sb.set_levels([1.0, 10.0, 50.0])
    x, y = rng.normal(150, 2.0, 2000), rng.normal(150, 2.0, 2000)
    R, _, _ = sb.render(x, y, np.full(2000, 1.0), np.full(2000, 1 / 2000))
    sb.set_raster(0, R)
    for s in (10.0, 50.0):
        v = 4.0 + 1.0 + s * s  # cluster spread + bandwidth + precision
        got = sb.kde(np.array([150.0, 150.0 + s]), np.array([150.0, 150.0]), s)[:, 0]
        want = np.exp(-np.array([0.0, s * s]) / (2 * v)) / (2 * np.pi * v)
        np.testing.assert_allclose(got, want, rtol=0.08)
    assert sb.level_of([0.1, 1.0, 9.0, 60.0]).tolist() == [0, 0, 1, 2]


def test_lookup_raster_is_the_lookup_of_the_blurred_bundle():
    """The fit reads a raster blurred to each event's precision at the events only; it gives
    the numbers of blurring the whole raster (scipy's gaussian_filter) and interpolating, for
    a few points (filtered where they read) and many (the whole raster filtered)."""
    from culpa.model.background import SpatialBackground

    rng = np.random.default_rng(1)
    sb = SpatialBackground(0.0, 0.0, 2.0, 57, 43, 1)
    sb.set_levels([1.0, 3.0, 7.0, 15.0, 40.0, 120.0])
    R = rng.random((43, 57)) ** 4
    x, y = rng.uniform(-3, 117, 500), rng.uniform(-3, 89, 500)
    lvl = rng.integers(0, len(sb.levels), 500)
    for n in (3, 40, 500):
        np.testing.assert_array_equal(sb.lookup_raster(R, x[:n], y[:n], lvl[:n], {}),
                                      sb.lookup(sb.bundle(R), x[:n], y[:n], lvl[:n]))


def test_the_compiled_gaussian_filters_are_scipys_numbers():
    """The renders' and lookups' Gaussian filters (compiled, without scipy's per-call cost)
    give scipy.ndimage.gaussian_filter's numbers exactly, zero ("constant") or "reflect" at the
    edges, kernels wider than the raster included."""
    from scipy import ndimage

    from culpa.model.background import _gaussian_add, _gaussian_reflect, gauss_weights

    rng = np.random.default_rng(7)
    for _ in range(60):
        ny, nx = (int(v) for v in rng.integers(1, 40, 2))
        a = rng.exponential(size=(ny, nx)) * (rng.random((ny, nx)) < 0.6)
        sig = float(rng.uniform(0.05, 10.0))
        w = gauss_weights(sig)
        acc = rng.random((ny, nx))
        want = acc + ndimage.gaussian_filter(a, sig, mode="constant", truncate=4.0)
        _gaussian_add(acc, a, w)
        np.testing.assert_array_equal(acc, want)
        np.testing.assert_array_equal(_gaussian_reflect(a, w),
                                      ndimage.gaussian_filter(a, sig, mode="reflect",
                                                              truncate=4.0))
