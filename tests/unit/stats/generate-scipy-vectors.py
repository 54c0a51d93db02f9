#!/usr/bin/env python3
"""Regenerates scipy-vectors.json, an independent cross-check of the stats engine.

Not run by the tests. Needs SciPy and statsmodels (Debian: apt-get install python3-scipy python3-statsmodels),
then from the repo root: /usr/bin/python3 tests/unit/stats/generate-scipy-vectors.py
"""

import json
import math
import pathlib

import numpy as np
import scipy
import statsmodels
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, test_proportions_2indep

rng = np.random.default_rng(20240611)
OUT = pathlib.Path(__file__).with_name("scipy-vectors.json")


def welch(mean_a, var_a, n_a, mean_b, var_b, n_b, level):
    """Absolute (scipy ttest_ind_from_stats) and delta-method relative effects with Welch df."""
    res = stats.ttest_ind_from_stats(mean_b, math.sqrt(var_b), n_b, mean_a, math.sqrt(var_a), n_a, equal_var=False)
    a, b = var_a / n_a, var_b / n_b
    df = (a + b) ** 2 / (a**2 / (n_a - 1) + b**2 / (n_b - 1))
    q = stats.t.ppf(1 - (1 - level) / 2, df)
    est = mean_b - mean_a
    se = math.sqrt(a + b)
    absolute = {"estimate": est, "lower": est - q * se, "upper": est + q * se, "pValue": float(res.pvalue)}
    rel = (mean_b - mean_a) / abs(mean_a)
    rel_var = var_b / n_b / mean_a**2 + var_a / n_a * mean_b**2 / mean_a**4
    rel_se = math.sqrt(rel_var)
    relative = {
        "estimate": rel,
        "lower": rel - q * rel_se,
        "upper": rel + q * rel_se,
        "pValue": float(2 * stats.t.sf(abs(rel / rel_se), df)),
    }
    return absolute, relative, df, float(res.statistic)


def means_cases(count):
    out = []
    for _ in range(count):
        n_a, n_b = (int(x) for x in rng.integers(5, 20000, size=2))
        mu = float(rng.uniform(0.5, 50))
        sd_a = float(rng.uniform(0.2, 3)) * mu
        sd_b = sd_a * float(rng.uniform(0.5, 2))
        mu_b = mu * (1 + float(rng.normal(0, 0.05)))
        control = {"n": n_a, "sum": mu * n_a, "sumSquares": (n_a - 1) * sd_a**2 + n_a * mu**2}
        treatment = {"n": n_b, "sum": mu_b * n_b, "sumSquares": (n_b - 1) * sd_b**2 + n_b * mu_b**2}
        # Re-derive the moments from the sums so SciPy sees exactly what the engine sees.
        arms = []
        for arm in (control, treatment):
            m = arm["sum"] / arm["n"]
            arms.append((m, (arm["sumSquares"] - arm["sum"] ** 2 / arm["n"]) / (arm["n"] - 1), arm["n"]))
        level = float(rng.choice([0.9, 0.95, 0.99]))
        absolute, relative, _, _ = welch(*arms[0], *arms[1], level)
        out.append(
            {"control": control, "treatment": treatment, "confidenceLevel": level, "absolute": absolute, "relative": relative}
        )
    return out


def binomial_cases(count):
    out = []
    for _ in range(count):
        n_a, n_b = (int(x) for x in rng.integers(30, 50000, size=2))
        p = float(rng.uniform(0.01, 0.6))
        c_a = int(rng.binomial(n_a, p))
        c_b = int(rng.binomial(n_b, p * (1 + float(rng.normal(0, 0.1)))))
        p_a, p_b = c_a / n_a, c_b / n_b
        level = float(rng.choice([0.9, 0.95, 0.99]))
        absolute, relative, _, statistic = welch(p_a, p_a * (1 - p_a), n_a, p_b, p_b * (1 - p_b), n_b, level)
        # Unpooled Wald two-proportion z test: same statistic as the engine, normal reference distribution.
        wald = test_proportions_2indep(c_b, n_b, c_a, n_a, method="wald", compare="diff")
        out.append(
            {
                "control": {"n": n_a, "conversions": c_a},
                "treatment": {"n": n_b, "conversions": c_b},
                "confidenceLevel": level,
                "absolute": absolute,
                "relative": relative,
                "wald": {"statistic": float(wald.statistic), "pValue": float(wald.pvalue)},
                "welchStatistic": statistic,
            }
        )
    return out


def bayesian_cases(count):
    """Normal posterior on the relative lift; risk via scipy truncnorm exactly as gbstats get_risk."""
    out = []
    for i in range(count):
        n_a, n_b = (int(x) for x in rng.integers(50, 5000, size=2))
        p = float(rng.uniform(0.05, 0.5))
        c_a, c_b = int(rng.binomial(n_a, p)), int(rng.binomial(n_b, p * 1.05))
        p_a, p_b = c_a / n_a, c_b / n_b
        est = (p_b - p_a) / p_a
        var = p_b * (1 - p_b) / n_b / p_a**2 + p_a * (1 - p_a) / n_a * p_b**2 / p_a**4
        prior = None
        if i % 2:
            prior = {"mean": float(rng.normal(0, 0.05)), "variance": float(rng.uniform(0.001, 0.1))}
            prec = 1 / var + 1 / prior["variance"]
            mu, sd = (est / var + prior["mean"] / prior["variance"]) / prec, math.sqrt(1 / prec)
        else:
            mu, sd = est, math.sqrt(var)
        level = 0.95
        p_ctrl = stats.norm.cdf(0, mu, sd)
        mn_neg = stats.truncnorm.mean(a=-np.inf, b=(0 - mu) / sd, loc=mu, scale=sd)
        mn_pos = stats.truncnorm.mean(a=(0 - mu) / sd, b=np.inf, loc=mu, scale=sd)
        out.append(
            {
                "control": {"n": n_a, "conversions": c_a},
                "treatment": {"n": n_b, "conversions": c_b},
                "prior": prior,
                "confidenceLevel": level,
                "expected": mu,
                "lower": float(stats.norm.ppf((1 - level) / 2, mu, sd)),
                "upper": float(stats.norm.ppf(1 - (1 - level) / 2, mu, sd)),
                "chanceToWin": float(stats.norm.sf(0, mu, sd)),
                "risk": [float((1 - p_ctrl) * mn_pos), float(-p_ctrl * mn_neg)],
            }
        )
    return out


def srm_cases(count):
    out = []
    for i in range(count):
        k = int(rng.integers(2, 6))
        weights = rng.dirichlet(np.ones(k)) if i % 2 else np.ones(k) / k
        total = int(rng.integers(200, 200000))
        # Skew the allocation on some cases so small p-values are covered too.
        skew = rng.dirichlet(np.ones(k) * 2000) if i % 3 == 0 else weights
        observed = rng.multinomial(total, skew / skew.sum())
        res = stats.chisquare(observed, f_exp=weights * total)
        out.append(
            {
                "observed": [int(o) for o in observed],
                "weights": [float(w) for w in weights],
                "chiSquare": float(res.statistic),
                "pValue": float(res.pvalue),
            }
        )
    return out


def distribution_cases():
    xs = [-4.5, -2.3, -1.0, -0.1, 0.0, 0.7, 1.96, 3.2]
    ps = [0.0005, 0.01, 0.025, 0.2, 0.5, 0.8, 0.975, 0.9995]
    dfs = [1.5, 3, 9.7, 30, 250.4, 5841.74]
    ks = [1, 2, 4, 9]
    return {
        "normalCdf": [[x, float(stats.norm.cdf(x))] for x in xs],
        "normalQuantile": [[p, float(stats.norm.ppf(p))] for p in ps],
        "tCdf": [[x, v, float(stats.t.cdf(x, v))] for x in xs for v in dfs],
        "tQuantile": [[p, v, float(stats.t.ppf(p, v))] for p in ps for v in dfs],
        "chiSquareSf": [[x, k, float(stats.chi2.sf(x, k))] for x in [0.1, 0.99, 3.84, 11.3, 25.0] for k in ks],
        "chiSquareQuantile": [[p, k, float(stats.chi2.ppf(p, k))] for p in ps for k in ks],
    }


def correction_cases(count):
    out = []
    for _ in range(count):
        m = int(rng.integers(1, 12))
        ps = [float(p) for p in rng.uniform(0, 1, size=m) ** 3]
        out.append(
            {
                "pValues": ps,
                "holm": [float(x) for x in multipletests(ps, method="holm")[1]],
                "benjaminiHochberg": [float(x) for x in multipletests(ps, method="fdr_bh")[1]],
            }
        )
    return out


def power_cases(count):
    """NormalIndPower with d = δ / sqrt((σ²_A + σ²_B) / 2), which is the engine's two-sided z test."""
    analysis = NormalIndPower()
    out = []
    for i in range(count):
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        target = float(rng.choice([0.8, 0.9]))
        if i % 2:
            rate = float(rng.uniform(0.02, 0.5))
            mde = float(rng.uniform(0.02, 0.3))
            baseline = {"metricType": "BINOMIAL", "mean": rate}
            var_a, var_b = rate * (1 - rate), rate * (1 + mde) * (1 - rate * (1 + mde))
        else:
            mean = float(rng.uniform(1, 100))
            var = float((mean * rng.uniform(0.3, 3)) ** 2)
            mde = float(rng.uniform(0.01, 0.2))
            baseline = {"metricType": "MEAN", "mean": mean, "variance": var}
            var_a = var_b = var
        delta = mde * baseline["mean"]
        d = delta / math.sqrt((var_a + var_b) / 2)
        n = int(rng.integers(100, 20000))
        k = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target)
        case = {
            "baseline": baseline,
            "mde": mde,
            "alpha": alpha,
            "targetPower": target,
            "unitsPerVariant": n,
            "power": float(analysis.power(effect_size=d, nobs1=n, alpha=alpha, ratio=1, alternative="two-sided")),
            # Closed form from SciPy quantiles, and statsmodels' numerical solve (which keeps the far tail).
            "exactUnitsPerVariant": float(k**2 * (var_a + var_b) / delta**2),
            "statsmodelsUnitsPerVariant": float(
                analysis.solve_power(effect_size=d, nobs1=None, alpha=alpha, power=target, ratio=1)
            ),
        }
        if baseline["metricType"] == "MEAN":
            case["minimumDetectableEffect"] = float(k * math.sqrt(2 * var_a / n) / baseline["mean"])
            case["statsmodelsMinimumDetectableEffect"] = float(
                analysis.solve_power(effect_size=None, nobs1=n, alpha=alpha, power=target, ratio=1)
                * math.sqrt(var_a)
                / baseline["mean"]
            )
        out.append(case)
    return out


def fieller_cases(count):
    """Fieller's interval for meanB/meanA, found as the roots of (mB - θ·mA)² - c²(vB + θ²vA) with numpy.roots
    (not the engine's closed form), at the Welch t quantile of the absolute test; θ = 1 inside exactly when
    scipy's Welch test does not reject."""
    out = []
    while len(out) < count:
        n_a, n_b = (int(x) for x in rng.integers(150, 20000, size=2))
        mu = float(rng.uniform(-20, 50))
        # Every third case has a control mean lost in its noise, where Fieller's set is unbounded.
        sd_a = float(rng.uniform(0.5, 8) if len(out) % 3 else rng.uniform(20, 60)) * max(abs(mu), 1)
        sd_b = sd_a * float(rng.uniform(0.5, 2))
        mu_b = mu * (1 + float(rng.normal(0, 0.1)))
        control = {"n": n_a, "sum": mu * n_a, "sumSquares": (n_a - 1) * sd_a**2 + n_a * mu**2}
        treatment = {"n": n_b, "sum": mu_b * n_b, "sumSquares": (n_b - 1) * sd_b**2 + n_b * mu_b**2}
        arms = []
        for arm in (control, treatment):
            m = arm["sum"] / arm["n"]
            arms.append((m, (arm["sumSquares"] - arm["sum"] ** 2 / arm["n"]) / (arm["n"] - 1) / arm["n"]))
        (m_a, v_a), (m_b, v_b) = arms
        level = float(rng.choice([0.9, 0.95, 0.99]))
        df = (v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))
        c = stats.t.ppf(1 - (1 - level) / 2, df)
        roots = np.roots([m_a**2 - c**2 * v_a, -2 * m_a * m_b, m_b**2 - c**2 * v_b])
        bounded = m_a**2 - c**2 * v_a > 0
        case = {"control": control, "treatment": treatment, "confidenceLevel": level, "bounded": bool(bounded)}
        if bounded:
            lo, hi = sorted(float(r.real) for r in roots)
            # As a lift (mB - mA)/|mA|: θ - 1 for a positive control mean, 1 - θ for a negative one.
            case["lift"] = [lo - 1, hi - 1] if m_a > 0 else [1 - hi, 1 - lo]
            welch = stats.ttest_ind_from_stats(m_b, math.sqrt(v_b * n_b), n_b, m_a, math.sqrt(v_a * n_a), n_a, equal_var=False)
            case["welchPValue"] = float(welch.pvalue)
        out.append(case)
    return out


def newcombe_cases():
    """statsmodels' Newcombe (hybrid score) interval and Wilson intervals, for arms with and without spread;
    the MOVER-R ratio bounds are the roots of the MOVER equation found with brentq, and the score test's
    p-value inverts statsmodels' interval by brentq on the normal critical value."""
    tables = [(5, 50, 0, 50), (0, 50, 5, 50), (8, 400, 0, 400), (380, 400, 400, 400), (0, 1000, 12, 1000), (3, 150, 20, 160)]
    out = []
    for x1, n1, x2, n2 in tables:
        z = float(stats.norm.ppf(0.975))
        low, upp = confint_proportions_2indep(x2, n2, x1, n1, method="newcomb", compare="diff", alpha=0.05)
        wilson1 = [float(v) for v in proportion_confint(x1, n1, alpha=0.05, method="wilson")]
        wilson2 = [float(v) for v in proportion_confint(x2, n2, alpha=0.05, method="wilson")]
        d = x2 / n2 - x1 / n1

        def newcombe_at(c):
            lo, hi = confint_proportions_2indep(x2, n2, x1, n1, method="newcomb", compare="diff", alpha=2 * stats.norm.sf(c))
            return lo if d > 0 else -hi

        # Brackets up to c = 8 (alpha ~ 1e-15), where statsmodels' alpha still has precision.
        critical = float(optimize.brentq(newcombe_at, 1e-6, 8, xtol=1e-13)) if d != 0 else 0.0
        case = {
            "control": {"n": n1, "conversions": x1},
            "treatment": {"n": n2, "conversions": x2},
            "critical": z,
            "newcombe": [float(low), float(upp)],
            "wilsonControl": wilson1,
            "wilsonTreatment": wilson2,
            "nullCritical": critical,
            "scorePValue": float(2 * stats.norm.sf(critical)),
        }
        p1, p2 = x1 / n1, x2 / n2
        (l1, u1), (l2, u2) = wilson1, wilson2
        if x1 > 0 and u1 < 2 * p1:
            # MOVER for p2 - θ·p1 = 0: the lower bound solves p2 - θp1 = sqrt((p2 - l2)² + θ²(u1 - p1)²).
            g_low = lambda t: p2 - t * p1 - math.sqrt((p2 - l2) ** 2 + t**2 * (u1 - p1) ** 2)
            g_up = lambda t: t * p1 - p2 - math.sqrt((u2 - p2) ** 2 + t**2 * (p1 - l1) ** 2)
            est = p2 / p1
            lo = 0.0 if x2 == 0 else optimize.brentq(g_low, 0, est, xtol=1e-14)
            hi = optimize.brentq(g_up, est, 1e6, xtol=1e-14)
            case["moverRatio"] = [float(lo), float(hi)]
        out.append(case)
    return out


def planner_cases():
    """Sample sizes for the planned analysis, solved independently: NormalIndPower at alpha/(variants - 1) for a
    corrected fixed-horizon plan, and brentq on the always-valid interval's power for SEQUENTIAL."""
    analysis = NormalIndPower()
    out = []

    def seq_multiplier(total, alpha, rho):
        x = total * rho**2
        return math.sqrt(2 * (x + 1) * math.log(math.sqrt(x + 1) / alpha) / x)

    for rate, mde, target, variants, method, tuning in [
        (0.1, 0.2, 0.8, 2, "SEQUENTIAL", 5000),
        (0.05, 0.1, 0.9, 2, "SEQUENTIAL", 20000),
        (0.1, 0.2, 0.8, 4, "HOLM", None),
        (0.02, 0.15, 0.9, 3, "BENJAMINI_HOCHBERG", None),
    ]:
        alpha = 0.05
        rate_b = rate * (1 + mde)
        var_a, var_b = rate * (1 - rate), rate_b * (1 - rate_b)
        delta = rate_b - rate
        case = {"baseline": {"metricType": "BINOMIAL", "mean": rate}, "mde": mde, "power": target, "variants": variants}
        if method == "SEQUENTIAL":
            rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
            f = lambda n: delta / math.sqrt((var_a + var_b) / n) - seq_multiplier(2 * n, alpha, rho) - stats.norm.ppf(target)
            case.update(method="SEQUENTIAL", correction="NONE", sequentialTuning=tuning)
            case["exactUnitsPerVariant"] = float(optimize.brentq(f, 10, 1e9, xtol=1e-9))
        else:
            d = delta / math.sqrt((var_a + var_b) / 2)
            case.update(method="FREQUENTIST", correction=method)
            case["alpha"] = alpha / (variants - 1)
            case["statsmodelsUnitsPerVariant"] = float(
                analysis.solve_power(effect_size=d, nobs1=None, alpha=alpha / (variants - 1), power=target, ratio=1)
            )
        out.append(case)
    return out


vectors = {
    "comment": (
        "Independent cross-check vectors for src/results/stats, produced by tests/unit/stats/"
        "generate-scipy-vectors.py with a fixed seed using SciPy (ttest_ind_from_stats, t/norm/chi2, chisquare, "
        "truncnorm) and statsmodels (multipletests, NormalIndPower, test_proportions_2indep). Relative effects "
        "use the delta-method variance with SciPy's t distribution; proportions use var p(1-p) and Welch df as "
        "gbstats does. The tests compare at 1e-6 relative tolerance. fieller, newcombe and planner (issue 14): "
        "Fieller bounds as numpy.roots of the defining quadratic, statsmodels' Newcombe and Wilson intervals, "
        "MOVER-R and the score test's critical value by scipy.optimize.brentq, and planned sample sizes by "
        "NormalIndPower (corrected alpha) or brentq on the sequential power."
    ),
    "versions": {"scipy": scipy.__version__, "statsmodels": statsmodels.__version__, "numpy": np.__version__},
    "means": means_cases(12),
    "binomial": binomial_cases(10),
    "bayesian": bayesian_cases(8),
    "srm": srm_cases(9),
    "distributions": distribution_cases(),
    "corrections": correction_cases(8),
    "power": power_cases(12),
    "fieller": fieller_cases(10),
    "newcombe": newcombe_cases(),
    "planner": planner_cases(),
}

OUT.write_text(json.dumps(vectors, indent=1) + "\n")
print(f"wrote {OUT}")
