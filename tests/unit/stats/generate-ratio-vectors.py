#!/usr/bin/env python3
"""Regenerates ratio-vectors.json: reference numbers for RATIO metrics (delta method), computed from raw
per-unit data with NumPy/SciPy, independently of the engine (which only sees the sufficient statistics).

Not run by the tests. Needs NumPy and SciPy; from the repo root: python3 tests/unit/stats/generate-ratio-vectors.py
Method: Deng, Knoblich & Lu, "Applying the Delta Method in Metric Analytics" (KDD 2018): for r = mean(x)/mean(y),
Var(r) = (1/n)·(s²x/ȳ² − 2·x̄·sxy/ȳ³ + x̄²·s²y/ȳ⁴) with n − 1 sample (co)variances (np.cov). The comparison is
Welch's t on the arms' ratios with per-unit variances n·Var(r); the relative interval is Fieller's for the same
test (the roots of (rB − θ·rA)² = c²·(VarB + θ²·VarA)).
"""

import json
import math
import pathlib

import numpy as np
import scipy
from scipy import stats

rng = np.random.default_rng(20261201)
OUT = pathlib.Path(__file__).with_name("ratio-vectors.json")


def arm(n, sessions_mean, minutes_per_session, lift):
    y = rng.poisson(sessions_mean, n).astype(float)
    x = np.array([rng.gamma(2.0, minutes_per_session * lift / 2.0, int(k)).sum() for k in y])
    return x, y


def summary(x, y):
    n = len(x)
    c = np.cov(x, y, ddof=1)
    mx, my = x.mean(), y.mean()
    r = mx / my
    var_r = (c[0, 0] / my**2 - 2 * mx * c[0, 1] / my**3 + mx**2 * c[1, 1] / my**4) / n
    sums = {
        "n": n,
        "sum": float(x.sum()),
        "sumSquares": float((x * x).sum()),
        "ratio": {
            "sumDenominator": float(y.sum()),
            "sumDenominatorSquares": float((y * y).sum()),
            "sumProducts": float((x * y).sum()),
        },
    }
    return sums, r, var_r


cases = []
for n_a, n_b, sessions, minutes, lift, level in [
    (400, 420, 3.0, 12.0, 1.0, 0.95),
    (1000, 950, 1.5, 30.0, 1.08, 0.95),
    (250, 260, 5.0, 4.0, 0.9, 0.9),
    (3000, 3000, 0.8, 20.0, 1.03, 0.99),
]:
    xa, ya = arm(n_a, sessions, minutes, 1.0)
    xb, yb = arm(n_b, sessions, minutes, lift)
    sa, ra, va = summary(xa, ya)
    sb, rb, vb = summary(xb, yb)
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    q = stats.t.ppf(1 - (1 - level) / 2, df)
    se = math.sqrt(va + vb)
    est = rb - ra
    p = 2 * stats.t.sf(abs(est / se), df)
    # Fieller: (rB − θ rA)² − q²(vB + θ² vA) ≤ 0, a quadratic in θ.
    roots = np.sort(np.roots([ra**2 - q**2 * va, -2 * ra * rb, rb**2 - q**2 * vb]).real)
    rel_se = math.sqrt(vb / ra**2 + va * rb**2 / ra**4)
    cases.append(
        {
            "confidenceLevel": level,
            "control": sa,
            "treatment": sb,
            "expected": {
                "controlRatio": ra,
                "treatmentRatio": rb,
                "controlStandardDeviation": math.sqrt(va * n_a),
                "absolute": {"estimate": est, "lower": est - q * se, "upper": est + q * se, "pValue": float(p)},
                "relative": {
                    "estimate": (rb - ra) / abs(ra),
                    "lower": float(roots[0] - 1),
                    "upper": float(roots[1] - 1),
                    "standardError": rel_se,
                },
            },
        }
    )

OUT.write_text(
    json.dumps(
        {
            "source": f"tests/unit/stats/generate-ratio-vectors.py (NumPy {np.__version__}, SciPy {scipy.__version__}), seed 20261201",
            "cases": cases,
        },
        indent=2,
    )
    + "\n"
)
print(f"wrote {OUT}")
