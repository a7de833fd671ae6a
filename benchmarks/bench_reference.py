"""Reference benchmark: culpa's EM side by side with SED-ETH ``etas`` and ``hawkes-rs``, same data.

Two comparisons, each on events simulated with :mod:`culpa.model.simulate` from known parameters:

1. Spatio-temporal, one actor (vs the SED-ETH ``etas`` package, EM for space-time ETAS).
   Background uniform over a 200 x 200 km region (``diffuse_fraction=1``: ETAS's background is
   uniform over its polygon), exponential time kernel (omega = 0.2/day), Gaussian space kernel
   (sigma = 3 km), alpha = 0.5, exact times, locations to 0.1 km. Events are kept inside a
   lat/lon box just inside the simulated square, and that box is ETAS's polygon. Both tools get
   the same events and the same candidate radius (culpa ``radius_km``; ETAS
   ``coppersmith_multiplier`` = radius / SSRL(M3)). ETAS is set up as close to the simulated model
   as it goes: every magnitude equals the cutoff (mc = 3.0, delta_m = 0.1), so productivity and
   the spatial scale do not depend on magnitude (``a`` and ``gamma`` are then confounded with
   ``k0`` and ``d``: only the products below are identified); beta is fixed (it cancels when mc
   is constant). Its other parameters are free: the time kernel
   ``exp(-t/tau) / (t + c)^(1+omega)`` is exponential at omega = -1 and the space kernel
   ``1 / (r^2 + D)^(1+rho)`` tends to a Gaussian as rho grows (its range ends at -0.99 and 5).
   Comparable quantities: branching ratio (expected offspring per event; ETAS: its
   ``expected_aftershocks`` over an unbounded window), background share (culpa: mean background
   probability; ETAS: n_hat / N), median parent-child lag and median distance (from each fitted
   kernel). ETAS's start values are generic, not the truth.

2. Temporal (vs ``hawkes-rs``, exponential-kernel Hawkes MLE by L-BFGS, uni- and multivariate).
   A 1- and a 3-actor process (mu, alpha, omega = 0.5/day) is simulated in space and time
   (uniform background, Gaussian offspring, sigma = 2 km) and hawkes-rs fits the event *times*
   (its process is the time marginal: same baseline, alpha and decay); culpa fits times and
   places. Also reported: hawkes-rs's negative log-likelihood at culpa's parameters (and at the
   truth) minus at its own optimum, and whether that is inside the 95 % likelihood-ratio region
   of the temporal MLE (dNLL < chi2_0.95(n_params) / 2): agreement within sampling error.
   "one point" rows put every event at the same place (1 km precision, 0.25 km background
   cells, where b(x0) comes closest to h(0)) so that the spatial factors are constant. That is
   *not* neutral: the fitted background density b(x0) and the triggering density
   h(0) = 1 / (2 pi (sigma^2 + 2 s^2)) differ, and their ratio ``h0_over_b0`` tilts background
   against triggering (measured: 1.04 drives alpha from 0.6 to ~0.96). Reported to show the
   effect, not as culpa's temporal accuracy.

culpa is fitted with a constant background rate and a static ground (``background_bin_days`` =
1e5, ``background_epoch_days`` = None) like the references and the simulation; pass
``--culpa-defaults`` for its default quarterly rate and yearly epochs. Every timing runs with
NUMBA_NUM_THREADS = OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = 1 (set below,
before NumPy or numba load), so both tools run single-threaded. culpa's per-iteration time is
(fit - candidate pairs) / n_iter_ (M-steps, SQUAREM's included); ETAS's is the time of
``invert()`` / its iterations, and the time of ``prepare()`` (its distance table) is reported
apart. culpa and hawkes-rs fits are timed ``--repeats`` times (median; they take well under a
second), ETAS once. Each tool stops on its own rule (culpa: relative gain < 1e-6; ETAS:
sum |d theta| < 1e-3).

The references are not dependencies of culpa; install them in a separate virtualenv::

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install -e .                      # culpa and its dependencies
    /tmp/refvenv/bin/pip install hawkes-rs
    /tmp/refvenv/bin/pip install --only-binary=:all: "pyproj>=3.7"   # no sdist build needed
    /tmp/refvenv/bin/pip install --ignore-requires-python git+https://github.com/lmizrahi/etas
    /tmp/refvenv/bin/python benchmarks/bench_reference.py

(``etas`` 3.0.0 declares Python >= 3.12 but runs on 3.11; measured at commit 097f08b. Any
checkout of it installs the same way: ``pip install --ignore-requires-python /path/to/etas``.)
A reference that is not importable is skipped with a message and its rows are left out.
To measure a commit while the work tree has local changes, run it against a clean clone:
``PYTHONPATH=/tmp/clean/src python benchmarks/bench_reference.py`` (the culpa source and its
commit are recorded in the results).

    python benchmarks/bench_reference.py                        # 2k and 5k; temporal 5k, 20k
    python benchmarks/bench_reference.py --sizes 2000 --temporal-sizes 5000

Writes benchmarks/results/reference.json (merged with earlier sizes).
"""

from __future__ import annotations

import os

THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _v in THREAD_VARS:  # before NumPy / numba are imported
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "reference.json"

# spatio-temporal case
ST = {"alpha": 0.5, "omega": 0.2, "sigma_km": 3.0, "days": 730.0, "region_km": 200.0,
      "window_days": 60.0, "precision_km": 0.1}
MAG, MC, DELTA_M = 3.0, 3.0, 0.1
ETAS_THETA0 = {"log10_mu": -5.0, "log10_k0": -2.0, "a": 1.0, "log10_c": -2.0, "omega": 0.0,
               "log10_tau": 2.0, "log10_d": 0.0, "gamma": 0.0, "rho": 1.0}
# temporal case (culpa's orientation: ALPHA3[l, k] = what an l-event triggers in k)
TEMPORAL = {"omega": 0.5, "sigma_km": 2.0, "rate_per_day": 4.0, "region_km": 200.0,
            "window_days": 30.0, "precision_km": 0.1}
ALPHA1 = [[0.6]]
ALPHA3 = [[0.40, 0.15, 0.00],
          [0.00, 0.30, 0.20],
          [0.10, 0.00, 0.50]]
REL_MU3 = [0.5, 0.3, 0.2]
CENTER = (35.0, 38.0)


# ---------------------------------------------------------------------------------------------
# references: imported lazily, skipped with a message when absent


def load_etas():
    try:
        from etas import inversion
    except Exception as e:  # noqa: BLE001 - any import failure means "skip"
        return None, f"etas is not importable ({type(e).__name__}: {e})"
    logging.getLogger("etas").setLevel(logging.WARNING)
    return inversion, None


def load_hawkes():
    try:
        from hawkes import multivariate, univariate
    except Exception as e:  # noqa: BLE001
        return None, f"hawkes-rs is not importable ({type(e).__name__}: {e})"
    return (univariate, multivariate), None


def culpa_source() -> dict:
    """Where culpa was imported from, and that tree's commit (dirty: src/ has local changes)."""
    import subprocess

    import culpa

    src = Path(culpa.__file__).resolve().parent
    out = {"path": str(src), "commit": None, "dirty": None}
    try:
        git = ["git", "-C", str(src)]
        out["commit"] = subprocess.run(git + ["rev-parse", "--short", "HEAD"], check=True,
                                       capture_output=True, text=True).stdout.strip()
        out["dirty"] = subprocess.run(git + ["diff", "--quiet", "HEAD", "--", "."],
                                      capture_output=True).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def _version(dist: str):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------
# culpa


def culpa_model(args, **kw):
    from culpa.model import HawkesAttributor

    bg = ({} if args.culpa_defaults
          else {"background_bin_days": 1e5, "background_epoch_days": None})
    return HawkesAttributor(**bg, **kw)


def warm_up(args) -> None:
    """Load numba's cached machine code (or compile it) before anything is timed."""
    from culpa.model.simulate import simulate

    ev = simulate(n_actors=2, mu=[0.5, 0.5], alpha=0.3 * np.eye(2), days=365, region_km=50,
                  day_resolution=False, marks=False, seed=99).events
    culpa_model(args, max_iter=3).fit(ev)
    culpa_model(args, max_iter=3, cross_excitation=True).fit(ev)


def _timed_fit(make, ev, repeats: int):
    """Fit ``repeats`` fresh models (the fit is deterministic); the last one, median seconds."""
    secs = []
    for _ in range(max(repeats, 1)):
        m = make()
        t = time.perf_counter()
        m.fit(ev)
        secs.append(time.perf_counter() - t)
    return m, float(np.median(secs))


def gauss_median_km(sigma):
    """Median distance of a 2-D isotropic Gaussian offset with per-axis sd sigma."""
    return float(sigma * math.sqrt(2 * math.log(2)))


def exp_median_days(omega, window=np.inf):
    """Median of an exponential lag with rate omega truncated to [0, window]."""
    z = -math.expm1(-omega * window) if np.isfinite(window) else 1.0
    return float(-math.log1p(-0.5 * z) / omega)


# ---------------------------------------------------------------------------------------------
# 1. spatio-temporal, single actor: culpa vs etas


def simulate_st(n: int, seed: int, args):
    from culpa.model.simulate import simulate

    L, a = ST["region_km"], ST["alpha"]
    mu = n * (1 - a) / ST["days"]
    sim = simulate(n_actors=1, mu=[mu], alpha=[[a]], omega=ST["omega"], sigma_km=ST["sigma_km"],
                   days=ST["days"], region_km=L, diffuse_fraction=args.diffuse_fraction,
                   window_days=ST["window_days"], exact_precision_km=ST["precision_km"],
                   day_resolution=False, marks=False, center=CENTER, seed=seed)
    ev = sim.events
    # a lat/lon box 1 km inside the simulated square: ETAS's polygon, and the data of both
    lat0, lon0 = CENTER
    dlat = (L / 2 - 1.0) / 111.195
    dlon = (L / 2 - 1.0) / (111.195 * math.cos(math.radians(lat0)))
    box = (lat0 - dlat, lat0 + dlat, lon0 - dlon, lon0 + dlon)
    keep = (ev["latitude"].between(box[0], box[1]) & ev["longitude"].between(box[2], box[3]))
    old = np.flatnonzero(keep.to_numpy())
    remap = np.full(len(ev), -1)
    remap[old] = np.arange(len(old))
    ev = ev[keep].reset_index(drop=True)
    par = ev["parent"].to_numpy()
    ev["parent_kept"] = np.where(par >= 0, remap[np.maximum(par, 0)], -1)
    ev["location_precision_km"] = ST["precision_km"]
    return sim, ev, box, mu


def fit_culpa_st(ev, args) -> dict:
    m, fit_s = _timed_fit(lambda: culpa_model(args, radius_km=args.radius_km,
                                              window_days=ST["window_days"]), ev, args.repeats)
    pairs_s = m.fit_seconds_["pairs"]
    return {
        "fit_s": round(fit_s, 3), "pairs_s": round(pairs_s, 3), "n_iter": int(m.n_iter_),
        "converged": bool(m.converged_), "n_pairs": int(m.n_pairs_),
        "s_per_iter": round((fit_s - pairs_s) / max(m.n_iter_, 1), 4),
        "branching_ratio": round(float(m.alpha_[0, 0]), 4),
        "background_share": round(float(np.mean(m.background_proba_)), 4),
        "background_per_day": round(float(np.sum(m.background_proba_)) / ST["days"], 4),
        "omega_per_day": round(m.omega_, 4),
        "median_lag_days": round(exp_median_days(m.omega_, ST["window_days"]), 3),
        "sigma_km": round(m.sigma_km_, 3),
        "median_distance_km": round(gauss_median_km(m.sigma_km_), 3),
    }


def etas_quantities(inversion, theta: dict) -> dict:
    """Branching ratio, median lag and median distance of a fitted ETAS model at M = MAG."""
    from scipy.optimize import brentq

    mc_min = MC - DELTA_M / 2
    keys = ("log10_k0", "a", "log10_c", "omega", "log10_tau", "log10_d", "gamma", "rho")
    th = [float(theta[k]) for k in keys]
    br = float(inversion.expected_aftershocks(MAG, [th, mc_min], no_start=True, no_end=True))
    c, om, tau = 10 ** th[2], th[3], 10 ** th[4]
    # time: int_0^t exp(-s/tau) (s + c)^-(1+om) ds  =  const * [G(-om, c/tau) - G(-om, (t+c)/tau)]
    g0 = inversion.upper_gamma_ext(-om, c / tau)
    med_t = brentq(lambda t: 1 - inversion.upper_gamma_ext(-om, (t + c) / tau) / g0 - 0.5,
                   1e-9, 1e6)
    # space: P(r < R) = 1 - (D / (R^2 + D))^rho, D = d exp(gamma (m - mc_min))
    D = 10 ** th[5] * math.exp(th[6] * (MAG - mc_min))
    rho = th[7]
    med_r = math.sqrt(D * (2 ** (1 / rho) - 1))
    return {"branching_ratio": round(br, 4), "median_lag_days": round(float(med_t), 3),
            "median_distance_km": round(med_r, 3), "tau_days": round(tau, 4),
            "decay_rate_per_day_1_over_tau": round(1 / tau, 4)}


def fit_etas_st(inversion, ev, box, args) -> dict:
    cat = pd.DataFrame({"time": ev["time_start"].to_numpy(), "latitude": ev["latitude"],
                        "longitude": ev["longitude"], "magnitude": MAG})
    cat.index = pd.Index(ev["id"].to_numpy(), name="id")
    shape = [[box[0], box[2]], [box[1], box[2]], [box[1], box[3]], [box[0], box[3]]]
    start = pd.Timestamp(ev["time_start"].min()) - pd.Timedelta(seconds=1)
    end = pd.Timestamp("2010-01-01") + pd.Timedelta(days=ST["days"])
    ssrl = float(inversion.coppersmith(MAG, 4)["SSRL"])
    meta = {"catalog": cat, "auxiliary_start": start, "timewindow_start": start,
            "timewindow_end": end, "mc": MC, "delta_m": DELTA_M, "beta": 2.3,
            "coppersmith_multiplier": args.radius_km / ssrl, "shape_coords": shape,
            "theta_0": dict(ETAS_THETA0), "name": "bench_reference"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = inversion.ETASParameterCalculation(meta)
        t = time.perf_counter()
        calc.prepare()
        prep_s = time.perf_counter() - t
        t = time.perf_counter()
        theta = calc.invert()
        inv_s = time.perf_counter() - t
    n = len(calc.target_events)
    out = {
        "fit_s": round(prep_s + inv_s, 3), "prepare_s": round(prep_s, 3),
        "invert_s": round(inv_s, 3), "n_iter": int(calc.i), "n_pairs": int(len(calc.distances)),
        "s_per_iter": round(inv_s / max(calc.i, 1), 4), "n_events_used": int(n),
        "area_km2": round(float(calc.area), 1),
        "background_share": round(float(calc.n_hat) / n, 4),
        "background_per_day": round(float(calc.n_hat) / ST["days"], 4),
    }
    out.update(etas_quantities(inversion, theta))
    out["theta"] = {k: (None if v is None else round(float(v), 4)) for k, v in theta.items()}
    return out


def run_spatiotemporal(n: int, args, inversion) -> dict:
    sim, ev, box, mu = simulate_st(n, args.seed, args)
    par = ev["parent_kept"].to_numpy()
    truth = {
        "branching_ratio": ST["alpha"],
        "background_share": round(float(np.mean(ev["parent"].to_numpy() < 0)), 4),
        "background_per_day": round(mu, 4),
        "omega_per_day": ST["omega"],
        "median_lag_days": round(exp_median_days(ST["omega"], ST["window_days"]), 3),
        "sigma_km": ST["sigma_km"],
        "median_distance_km": round(gauss_median_km(ST["sigma_km"]), 3),
        # triggered events whose parent fell outside the box: both tools must call them background
        "parent_outside_data_share": round(float(np.mean((ev["parent"].to_numpy() >= 0)
                                                         & (par < 0))), 4),
    }
    res = {"n_events": int(len(ev)), "n_simulated": int(len(sim.events)), "truth": truth}
    print(f"  culpa on {len(ev):,} events ...", file=sys.stderr, flush=True)
    res["culpa"] = fit_culpa_st(ev, args)
    if inversion is None:
        res["etas"] = {"skipped": args.etas_skip_reason}
    elif len(ev) > args.etas_max_events:
        res["etas"] = {"skipped": f"n > --etas-max-events {args.etas_max_events}"}
    else:
        print(f"  etas on {len(ev):,} events ...", file=sys.stderr, flush=True)
        res["etas"] = fit_etas_st(inversion, ev, box, args)
    e, c = res["etas"], res["culpa"]
    if "fit_s" in e:
        res["ratio_etas_over_culpa"] = {
            "fit_time": round(e["fit_s"] / c["fit_s"], 1),
            "per_iteration": round(e["s_per_iter"] / max(c["s_per_iter"], 1e-9), 1)}
        res["difference_culpa_minus_etas"] = {
            k: round(c[k] - e[k], 4) for k in ("branching_ratio", "background_share",
                                               "median_lag_days", "median_distance_km")}
    return res


# ---------------------------------------------------------------------------------------------
# 2. temporal: culpa vs hawkes-rs


def simulate_temporal(n: int, K: int, seed: int):
    from culpa.model.simulate import simulate

    A = np.array(ALPHA1 if K == 1 else ALPHA3, float)
    rel = np.array([1.0] if K == 1 else REL_MU3)
    per_bg = np.linalg.inv(np.eye(K) - A).sum(1)
    days = n / TEMPORAL["rate_per_day"]
    mu = rel * TEMPORAL["rate_per_day"] / float(rel @ per_bg)
    sim = simulate(n_actors=K, mu=mu, alpha=A, omega=TEMPORAL["omega"],
                   sigma_km=TEMPORAL["sigma_km"], days=days, region_km=TEMPORAL["region_km"],
                   diffuse_fraction=1.0, window_days=TEMPORAL["window_days"],
                   exact_precision_km=TEMPORAL["precision_km"], day_resolution=False,
                   marks=False, center=CENTER, seed=seed)
    ev = sim.events
    ev["location_precision_km"] = TEMPORAL["precision_km"]
    return sim, ev, A, mu, days


def _hawkes_params(lib, K, mu, A, omega):
    univariate, multivariate = lib
    if K == 1:
        return univariate.Parameters(float(mu[0]), float(A[0, 0]), float(omega))
    # hawkes-rs: excitation[i][j] = "j excites i" = culpa's alpha[j, i]
    return multivariate.Parameters(np.asarray(mu, float), np.ascontiguousarray(A.T, float),
                                   float(omega))


def _nll(lib, K, params, times, horizon):
    univariate, multivariate = lib
    if K == 1:
        return float(univariate.negative_log_likelihood(params, times[0], horizon))
    return float(multivariate.negative_log_likelihood(params, times, horizon))


def fit_culpa_temporal(ev, K, days, args, one_point=False) -> dict:
    kw = {"window_days": TEMPORAL["window_days"], "cross_excitation": K > 1}
    if one_point:
        ev = ev.copy()
        ev["latitude"], ev["longitude"] = CENTER
        ev["location_precision_km"] = 1.0
        kw.update(radius_km=5.0, min_bandwidth_km=0.25)  # fine raster: b(x0) closest to h(0)
    else:
        kw.update(radius_km=args.temporal_radius_km)
    m, fit_s = _timed_fit(lambda: culpa_model(args, **kw), ev, args.repeats)
    pairs_s = m.fit_seconds_["pairs"]
    idx = {a: i for i, a in enumerate(m.actors_)}
    lab = ev["actor"].map(idx).to_numpy()
    mu = np.bincount(lab, weights=m.background_proba_, minlength=K) / days
    out = {"fit_s": round(fit_s, 4), "n_iter": int(m.n_iter_), "converged": bool(m.converged_),
           "s_per_iter": round((fit_s - pairs_s) / max(m.n_iter_, 1), 5),
           "n_pairs": int(m.n_pairs_), "mu": mu, "alpha": np.asarray(m.alpha_, float),
           "omega": float(m.omega_), "sigma_km": round(m.sigma_km_, 4)}
    if one_point:
        try:  # the ratio that biases this fit (private attributes; diagnostic only)
            h0 = 1 / (2 * math.pi * (m.sigma_km_ ** 2 + 2 * 1.0 ** 2))
            b0 = float(np.median(m._spatial.with_floor(m._kde_loo)))
            out["h0_over_b0"] = round(h0 / b0, 4)
        except Exception:  # noqa: BLE001
            out["h0_over_b0"] = None
    return out


def fit_hawkes(lib, K, times, horizon, repeats: int) -> dict:
    univariate, multivariate = lib
    secs = []
    for _ in range(max(repeats, 1)):
        t = time.perf_counter()
        f = univariate.fit(times[0], horizon) if K == 1 else multivariate.fit(times, horizon)
        secs.append(time.perf_counter() - t)
    fit_s = float(np.median(secs))
    p = f.parameters
    if K == 1:
        mu, A = np.array([p.baseline]), np.array([[p.excitation]])
    else:
        mu, A = np.asarray(p.baseline, float), np.asarray(p.excitation, float).T
    return {"fit_s": round(fit_s, 5), "n_iter": int(f.iterations), "converged": bool(f.converged),
            "objective_evaluations": int(f.objective_evaluations),
            "s_per_iter": round(fit_s / max(f.iterations, 1), 6),
            "mu": mu, "alpha": A, "omega": float(p.decay),
            "nll": float(f.negative_log_likelihood)}


def _summ(d: dict, K: int) -> dict:
    out = {k: v for k, v in d.items() if k not in ("mu", "alpha", "omega")}
    out["mu_per_day"] = [round(float(v), 4) for v in d["mu"]]
    out["alpha"] = np.round(d["alpha"], 4).tolist() if K > 1 else round(float(d["alpha"][0, 0]), 4)
    out["branching_ratio"] = round(float(np.max(np.abs(np.linalg.eigvals(d["alpha"])))), 4)
    out["omega_per_day"] = round(d["omega"], 4)
    return out


def run_temporal(n: int, K: int, args, lib) -> dict:
    from scipy.stats import chi2

    sim, ev, A, mu, days = simulate_temporal(n, K, args.seed)
    times = [np.ascontiguousarray(np.sort(ev.loc[ev["true_actor"] == a, "t_days"].to_numpy()),
                                  dtype=np.float64) for a in sim.actors]
    truth = {"mu": mu, "alpha": A, "omega": TEMPORAL["omega"]}
    res = {"dimension": K, "n_events": int(len(ev)), "horizon_days": days,
           "truth": _summ(truth, K)}
    print(f"  temporal d={K}: culpa on {len(ev):,} events ...", file=sys.stderr, flush=True)
    c = fit_culpa_temporal(ev, K, days, args)
    c1 = fit_culpa_temporal(ev, K, days, args, one_point=True) if K == 1 else None
    if lib is None:
        res["culpa"] = _summ(c, K)
        if c1:
            res["culpa_one_point"] = _summ(c1, K)
        res["hawkes_rs"] = {"skipped": args.hawkes_skip_reason}
        return res
    h = fit_hawkes(lib, K, times, days, args.repeats)
    nll_true = _nll(lib, K, _hawkes_params(lib, K, mu, A, TEMPORAL["omega"]), times, days)
    # culpa's parameters in hawkes-rs's (temporal) likelihood: inside the 95 % likelihood-ratio
    # region of the temporal MLE when the excess is below chi2_{0.95}(n_params) / 2
    limit = float(chi2.ppf(0.95, K + K * K + 1) / 2)
    for d in (c, c1):
        if d is not None:
            p = _hawkes_params(lib, K, np.maximum(d["mu"], 1e-12), d["alpha"] + 1e-12, d["omega"])
            dn = _nll(lib, K, p, times, days) - h["nll"]
            d["temporal_nll_minus_hawkes_rs"] = round(dn, 3)
            d["inside_95pct_lr_region"] = bool(dn < limit)
    res["culpa"] = _summ(c, K)
    if c1:
        res["culpa_one_point"] = _summ(c1, K)
    res["hawkes_rs"] = _summ(h, K)
    res["hawkes_rs"]["nll"] = round(h["nll"], 3)
    res["truth"]["temporal_nll_minus_hawkes_rs"] = round(nll_true - h["nll"], 3)
    res["truth"]["inside_95pct_lr_region"] = bool(nll_true - h["nll"] < limit)
    res["lr_region_limit"] = round(limit, 3)
    res["ratio_culpa_over_hawkes_rs_fit_time"] = round(c["fit_s"] / max(h["fit_s"], 1e-9), 1)
    return res


# ---------------------------------------------------------------------------------------------
# output


def _f(v, w=9):
    if v is None:
        return " " * (w - 1) + "-"
    if isinstance(v, float):
        return f"{v:>{w}.4g}"
    return f"{v!s:>{w}}"


def print_tables(st: dict, tmp: dict) -> None:
    if st:
        print("\nSpatio-temporal, one actor: culpa vs SED-ETH etas (single-threaded)")
        cols = ("branching_ratio", "background_share", "median_lag_days", "median_distance_km")
        heads = ("branching ratio", "bg share", "median lag d", "median dist km")
        print(f"{'N':>7} {'tool':<6} {'fit s':>9} {'iters':>6} {'s/iter':>9} "
              + " ".join(f"{h:>14}" for h in heads))
        for r in st.values():
            for tool in ("truth", "culpa", "etas"):
                d = r[tool]
                if "skipped" in d:
                    print(f"{r['n_events']:>7} {tool:<6} skipped: {d['skipped']}")
                    continue
                print(f"{r['n_events']:>7} {tool:<6} {_f(d.get('fit_s'))} "
                      f"{_f(d.get('n_iter'), 6)} {_f(d.get('s_per_iter'))} "
                      + " ".join(_f(d.get(c), 14) for c in cols))
            if "ratio_etas_over_culpa" in r:
                q = r["ratio_etas_over_culpa"]
                print(f"{'':>7} etas/culpa: fit time x{q['fit_time']}, "
                      f"per iteration x{q['per_iteration']}")
    if tmp:
        print("\nTemporal: culpa vs hawkes-rs (event times only); culpa_1pt = all at one place")
        print(f"{'d':>2} {'N':>7} {'tool':<10} {'fit s':>9} {'iters':>6} {'mu/day':>22} "
              f"{'br. ratio':>9} {'omega':>8} {'dNLL':>9} {'in 95%':>6}")
        for r in tmp.values():
            for tool, name in (("truth", "truth"), ("culpa", "culpa"),
                               ("culpa_one_point", "culpa_1pt"), ("hawkes_rs", "hawkes-rs")):
                d = r.get(tool)
                if d is None:
                    continue
                if "skipped" in d:
                    print(f"{r['dimension']:>2} {r['n_events']:>7} {name:<10} skipped: "
                          f"{d['skipped']}")
                    continue
                mu = ",".join(f"{v:.3f}" for v in d["mu_per_day"])
                dn = d.get("temporal_nll_minus_hawkes_rs")
                ins = d.get("inside_95pct_lr_region")
                print(f"{r['dimension']:>2} {r['n_events']:>7} {name:<10} {_f(d.get('fit_s'))} "
                      f"{_f(d.get('n_iter'), 6)} {mu:>22} {_f(d['branching_ratio'])} "
                      f"{_f(d['omega_per_day'], 8)} {_f(dn)} {_f(ins, 6)}")
            if "lr_region_limit" in r:
                print(f"{'':>2} {'':>7} culpa/hawkes-rs fit time x"
                      f"{r['ratio_culpa_over_hawkes_rs_fit_time']}; dNLL = hawkes-rs NLL at these "
                      f"parameters - at its MLE; 95% region: dNLL < {r['lr_region_limit']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[2000, 5000],
                    help="spatio-temporal sizes (expected events before the region cut)")
    ap.add_argument("--temporal-sizes", type=int, nargs="*", default=[5000, 20000])
    ap.add_argument("--temporal-dims", type=int, nargs="*", default=[1, 3], choices=[1, 3])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--radius-km", type=float, default=30.0,
                    help="candidate radius of both tools in the spatio-temporal case")
    ap.add_argument("--temporal-radius-km", type=float, default=20.0)
    ap.add_argument("--diffuse-fraction", type=float, default=1.0,
                    help="share of uniform background (the rest in hotspots; ETAS assumes 1)")
    ap.add_argument("--etas-max-events", type=int, default=6000,
                    help="skip etas above this size (its cost grows ~N^2: ~9 s/iteration at 5k)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="culpa and hawkes-rs fits are timed this many times (median); etas once")
    ap.add_argument("--culpa-defaults", action="store_true",
                    help="culpa's default background (quarterly rate, yearly epochs)")
    args = ap.parse_args()

    inversion, args.etas_skip_reason = load_etas()
    lib, args.hawkes_skip_reason = load_hawkes()
    for why in (args.etas_skip_reason, args.hawkes_skip_reason):
        if why:
            print(f"skipping: {why} (see this script's docstring to install it)", file=sys.stderr)

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()}
    results["threads"] = {v: os.environ[v] for v in THREAD_VARS}
    results["culpa_source"] = culpa_source()
    results["versions"] = {"culpa": _version("culpa"), "etas": _version("etas"),
                           "hawkes-rs": _version("hawkes-rs"), "numpy": np.__version__,
                           "pandas": pd.__version__}
    results["settings"] = {"spatiotemporal": ST, "temporal": TEMPORAL, "seed": args.seed,
                           "radius_km": args.radius_km,
                           "temporal_radius_km": args.temporal_radius_km,
                           "diffuse_fraction": args.diffuse_fraction,
                           "repeats_culpa_hawkes_rs": args.repeats,
                           "culpa_background": "defaults" if args.culpa_defaults
                           else "constant rate, static ground",
                           "etas_theta_0": ETAS_THETA0, "etas_magnitudes": MAG,
                           "etas_mc": MC, "etas_delta_m": DELTA_M}
    st = results.setdefault("spatiotemporal", {})
    tmp = results.setdefault("temporal", {})
    warm_up(args)
    date = time.strftime("%Y-%m-%d %H:%M")
    for n in args.sizes:
        print(f"spatio-temporal, {n:,} events ...", file=sys.stderr, flush=True)
        r = run_spatiotemporal(n, args, inversion)
        r["date"] = date
        st[str(n)] = r
        _save(results)
    for K in args.temporal_dims:
        for n in args.temporal_sizes:
            r = run_temporal(n, K, args, lib)
            r["date"] = date
            tmp[f"d{K}_n{n}"] = r
            _save(results)
    print_tables({str(n): st[str(n)] for n in args.sizes},
                 {f"d{K}_n{n}": tmp[f"d{K}_n{n}"] for K in args.temporal_dims
                  for n in args.temporal_sizes})
    print(f"\nthreads: {', '.join(f'{v}=1' for v in THREAD_VARS)}; wrote {RESULTS}")


def _save(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=_json) + "\n")


def _json(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


if __name__ == "__main__":
    main()
