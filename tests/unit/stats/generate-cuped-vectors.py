#!/usr/bin/env python3
"""Regenerates tests/fixtures/cuped-gbstats.json: reference numbers for CUPED (regression adjustment), computed
from raw per-unit data with NumPy/SciPy, independently of the engine (which only sees sufficient statistics).

Not run by the tests. Needs NumPy and SciPy; from the repo root: python3 tests/unit/stats/generate-cuped-vectors.py
The arithmetic is GrowthBook gbstats' (packages/stats/gbstats, MIT licence): models/statistics.py
RegressionAdjustedStatistic, compute_theta, compute_covariance; models/tests.py frequentist_diff and
frequentist_variance_relative_cuped; frequentist/tests.py TwoSidedTTest (Welch df on the adjusted variances) and
SequentialTwoSidedTTest. It is written here from the raw units (np.cov, np.var) rather than from gbstats' sums.
"""

import json
import math
import pathlib

import numpy as np
from scipy import stats

rng = np.random.default_rng(20261201)
OUT = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "cuped-gbstats.json"


def sums(x, c):
    return {
        "n": int(len(x)),
        "sum": float(x.sum()),
        "sumSquares": float((x * x).sum()),
        "covariate": {"sum": float(c.sum()), "sumSquares": float((c * c).sum()), "sumProducts": float((x * c).sum())},
    }


def analyse(xa, ca, xb, cb, proportion=False, alpha=0.05, tuning=5000):
    na, nb = len(xa), len(xb)
    x = np.concatenate([xa, xb])
    c = np.concatenate([ca, cb])
    n = na + nb
    if proportion:
        # gbstats ProportionStatistic: variance p(1 - p); covariance of two proportions Σxc/n − x̄c̄.
        var = lambda v: v.mean() * (1 - v.mean())
        cov = lambda u, v: (u * v).mean() - u.mean() * v.mean()
    else:
        var = lambda v: np.var(v, ddof=1)
        cov = lambda u, v: np.cov(u, v, ddof=1)[0, 1]
    theta = cov(x, c) / var(c)
    adj = lambda xs, cs: var(xs) + theta**2 * var(cs) - 2 * theta * cov(xs, cs)
    va, vb = adj(xa, ca), adj(xb, cb)
    estimate = (xb.mean() - theta * cb.mean()) - (xa.mean() - theta * ca.mean())
    se_abs = math.sqrt(va / na + vb / nb)
    se_unadj = math.sqrt(var(xa) / na + var(xb) / nb)
    dof = (va / na + vb / nb) ** 2 / (va**2 / (na**2 * (na - 1)) + vb**2 / (nb**2 * (nb - 1)))
    ma = xa.mean()
    rel = estimate / abs(ma)
    k = -xb.mean()
    v_trt = vb / (nb * ma**2)
    v_ctrl = (var(xa) * k**2 / ma**2 + 2 * theta * cov(xa, ca) * k / ma + theta**2 * var(ca)) / (na * ma**2)
    se_rel = math.sqrt(v_trt + v_ctrl)
    tq = stats.t.ppf(1 - alpha / 2, dof)

    def freq(est, se):
        return {
            "estimate": est,
            "standardError": se,
            "lower": est - tq * se,
            "upper": est + tq * se,
            "pValue": float(2 * stats.t.sf(abs(est / se), dof)),
        }

    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)

    def seq(est, se):
        s2 = se**2 * n
        half = math.sqrt(s2) * math.sqrt(2 * (n * rho**2 + 1) * math.log(math.sqrt(n * rho**2 + 1) / alpha) / (n * rho) ** 2)
        st2 = est**2 * n / se**2
        tr = n * rho**2 + 1
        evalue = math.exp(rho**2 * st2 / (2 * tr)) / math.sqrt(tr)
        return {"lower": est - half, "upper": est + half, "pValue": min(1 / evalue, 1)}

    return {
        "theta": float(theta),
        "varianceReduction": 1 - se_abs**2 / se_unadj**2,
        "frequentist": {"absolute": freq(estimate, se_abs), "relative": freq(rel, se_rel)},
        "sequential": {"absolute": seq(estimate, se_abs), "relative": seq(rel, se_rel)},
    }


def correlated(n, mean, sd, rho, lift, missing=0.0):
    z1 = rng.standard_normal(n)
    z2 = rng.standard_normal(n)
    c = mean + sd * z1
    x = mean * lift + sd * (rho * z1 + math.sqrt(1 - rho**2) * z2)
    if missing:
        c = np.where(rng.random(n) < missing, 0.0, c)
    return x, c


def revenue(n, lift):
    spend_before = rng.lognormal(2.0, 1.0, n) * (rng.random(n) < 0.4)
    x = (0.6 * spend_before + rng.lognormal(1.5, 1.1, n) * (rng.random(n) < 0.3)) * lift
    return x, spend_before


cases = []


def add(name, metric_type, a, b, alpha=0.05, tuning=5000):
    (xa, ca), (xb, cb) = a, b
    cases.append(
        {
            "name": name,
            "metricType": metric_type,
            "confidenceLevel": 1 - alpha,
            "sequentialTuning": tuning,
            "control": sums(xa, ca),
            "treatment": sums(xb, cb),
            "expected": analyse(xa, ca, xb, cb, proportion=metric_type == "BINOMIAL", alpha=alpha, tuning=tuning),
        }
    )


add("normal, rho 0.7, +2%", "MEAN", correlated(2000, 50, 10, 0.7, 1.0), correlated(2100, 50, 10, 0.7, 1.02))
add("normal, rho 0.3, no effect, alpha 0.1", "MEAN", correlated(800, 20, 5, 0.3, 1.0), correlated(750, 20, 5, 0.3, 1.0), alpha=0.1)
add("normal, rho 0.9, 15% without covariate", "MEAN", correlated(3000, 10, 4, 0.9, 1.0, 0.15), correlated(3000, 10, 4, 0.9, 0.98, 0.15), tuning=1000)
add("revenue, skewed, +5%", "MEAN", revenue(5000, 1.0), revenue(5000, 1.05))


def conversions(n, base, lift):
    before = (rng.random(n) < base).astype(float)
    p = np.where(before == 1, 0.5, base / 2) * lift
    return (rng.random(n) < p).astype(float), before


add("binomial with a 0/1 pre-period conversion", "BINOMIAL", conversions(4000, 0.2, 1.0), conversions(4000, 0.2, 1.1))

OUT.write_text(
    json.dumps(
        {
            "source": "Computed by tests/unit/stats/generate-cuped-vectors.py (NumPy 2.4, SciPy 1.17) from seeded raw per-unit data, reproducing the arithmetic of GrowthBook's gbstats (growthbook/growthbook packages/stats/gbstats at 8f1db4456915a8e7b7faf23d5632ca7219d2f469: models/statistics.py RegressionAdjustedStatistic and compute_theta, models/tests.py frequentist_variance_relative_cuped, frequentist/tests.py TwoSidedTTest and SequentialTwoSidedTTest; MIT (Expat) licence, Copyright (c) GrowthBook, Inc.). The last case, 'published', is copied from gbstats' own test test_sequential_test_runs_ra (packages/stats/tests/frequentist/test_tests.py), rounded to 5 decimals as published.",
            "about": "Per arm: n, Σx, Σx² of the metric and the covariate's Σc, Σc², Σx·c. theta = pooled Cov(x, c)/Var(c); absolute = adjusted difference of means with Welch df on the adjusted variances; relative = adjusted difference / |control mean| with gbstats' delta-method variance. Two-sided.",
            "cases": cases,
            "published": {
                "name": "gbstats test_sequential_test_runs_ra",
                "metricType": "MEAN",
                "confidenceLevel": 0.95,
                "sequentialTuning": 5000,
                "control": {"n": 3000, "sum": 1396.87, "sumSquares": 52377.9767, "covariate": {"sum": 16.87, "sumSquares": 527.9767, "sumProducts": 1}},
                "treatment": {"n": 3461, "sum": 2422.7, "sumSquares": 134698.29, "covariate": {"sum": 22.7, "sumSquares": 1348.29, "sumProducts": 1}},
                "expected": {"sequential": {"relative": {"estimate": 0.50338, "standardError": 0.33341, "lower": -0.50969, "upper": 1.51646, "pValue": 1}}},
            },
        },
        indent=1,
    )
    + "\n"
)
print(f"wrote {len(cases)} cases to {OUT}")
