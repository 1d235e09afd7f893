"Known answers for mlkit.stats: interval coverage, the breach rule on noise and on a planted gap, the sequential A/B test under the null and at its planned size."
import math, time
import numpy as np
import pytest
from mlkit.stats import (z_value, wilson, newcombe_diff, mean_ci, auc_ci, bootstrap_ci, gap_interval, ratio_interval,
                         breached, ab_test, ab_sample_size, srm_check)

ALPHA = 0.05

def test_published_intervals():
    "Wilson and Newcombe against Newcombe (1998a, 1998b); t interval by hand."
    assert wilson(0, 10) == pytest.approx([0.0, 0.2775], abs=5e-5)
    assert wilson(10, 10) == pytest.approx([0.7225, 1.0], abs=5e-5)
    assert wilson(81, 263) == pytest.approx([0.2553, 0.3662], abs=5e-5)
    assert newcombe_diff(56, 70, 48, 80) == pytest.approx([0.0524, 0.3339], abs=5e-5)
    assert mean_ci([1, 2, 3]) == pytest.approx([2 - 2.4841, 2 + 2.4841], abs=1e-4)
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert wilson(0, 0) is None and newcombe_diff(1, 2, 0, 0) is None and mean_ci([1.0]) is None

def test_wilson_coverage():
    "Over 4,000 samples of n=50 at p=0.1 the 95% Wilson interval holds p at least 93% of the time."
    n, p = 50, 0.1
    ks = np.random.default_rng(1).binomial(n, p, 4000)
    table = np.array([wilson(k, n) for k in range(n + 1)])
    cover = np.mean((table[ks, 0] <= p) & (p <= table[ks, 1]))
    assert cover >= 0.93, cover

def test_auc_ci_matches_bootstrap():
    "The DeLong interval's width agrees with a stratified bootstrap of the AUC within 15%."
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(2)
    y = (rng.uniform(size=600) < 0.3).astype(int); s = rng.normal(y * 1.0, 1.0)
    lo, hi = auc_ci(y, s)
    b = bootstrap_ci(roc_auc_score, [y, s], resamples=1000, seed=0, strata=y)
    assert lo < roc_auc_score(y, s) < hi
    assert abs((hi - lo) / (b[1] - b[0]) - 1) < 0.15, ((lo, hi), b)
    assert auc_ci([1, 1, 1], [0.1, 0.2, 0.3]) is None

def _sample_groups(rng, n=3000, shares=(0.85, 0.1, 0.03, 0.02), rates=(0.60, 0.55, 0.50, 0.42)):
    ns = rng.multinomial(n, shares)
    return [(int(rng.binomial(m, p)), int(m)) for m, p in zip(ns, rates)]

def test_gap_breach_rate_on_same_distribution_samples():
    "True largest gap 0.18 < threshold 0.25: over 200 samples the interval rule fires at most alpha, the point rule more often."
    rng = np.random.default_rng(3)
    gaps = [gap_interval(_sample_groups(rng), 1 - ALPHA) for _ in range(200)]
    interval = np.mean([breached(g['value'], g['ci'], 0.25, 'interval') for g in gaps])
    point = np.mean([breached(g['value'], g['ci'], 0.25, 'point') for g in gaps])
    assert interval <= ALPHA, interval
    assert point > interval and point > ALPHA, (point, interval)

def test_gap_breach_rate_at_the_threshold():
    "The hardest null: a true largest gap of exactly the threshold 0.25. The interval rule still fires at most alpha of 200 samples."
    rng = np.random.default_rng(9)
    gaps = [gap_interval(_sample_groups(rng, rates=(0.60, 0.55, 0.50, 0.35)), 1 - ALPHA) for _ in range(200)]
    interval = np.mean([breached(g['value'], g['ci'], 0.25, 'interval') for g in gaps])
    assert interval <= ALPHA, interval

def test_planted_gap_is_caught():
    "A true gap of 0.2 between two groups of 1,000 rows: its interval excludes 0, and threshold 0.1 is breached >= 95% of the time."
    rng = np.random.default_rng(4)
    gaps = [gap_interval([(int(rng.binomial(1000, 0.5)), 1000), (int(rng.binomial(1000, 0.3)), 1000)]) for _ in range(100)]
    assert all(g['ci'][0] > 0 for g in gaps)
    caught = np.mean([breached(g['value'], g['ci'], 0.1) for g in gaps])
    assert caught >= 0.95, caught

def test_ratio_interval_covers_and_bounds():
    "Simultaneous ratio interval: holds the true ratio 0.5 in >= 95% of 200 samples, and never exceeds 1."
    rng = np.random.default_rng(5)
    rs = [ratio_interval([(int(rng.binomial(500, 0.2)), 500), (int(rng.binomial(800, 0.4)), 800)]) for _ in range(200)]
    assert np.mean([r['ci'][0] <= 0.5 <= r['ci'][1] for r in rs]) >= 0.95
    assert all(0 <= r['ci'][0] <= r['value'] <= r['ci'][1] <= 1 for r in rs)

def _naive_peeking(y, t, looks=20):
    "A fixed-horizon z-test looked at `looks` times; rejects if any look has |z| > 1.96."
    for end in np.ceil(np.arange(1, looks + 1) * len(y) / looks).astype(int):
        a, b = y[:end][t[:end]], y[:end][~t[:end]]
        se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        if se > 0 and abs(a.mean() - b.mean()) / se > z_value(1 - ALPHA): return True
    return False

def test_ab_null_false_positive_rate_with_peeking():
    "No true difference, 20 looks, 400 simulations: the mSPRT rejects at most alpha of the time; the naive peeking z-test more."
    rng = np.random.default_rng(6)
    sims = [((rng.uniform(size=2000) < 0.1).astype(float), rng.uniform(size=2000) < 0.5) for _ in range(400)]
    fpr = np.mean([ab_test(y, t, level=1 - ALPHA, looks=20)['significant'] for y, t in sims])
    naive = np.mean([_naive_peeking(y, t) for y, t in sims])
    assert fpr <= ALPHA, fpr
    assert naive > ALPHA, naive

def test_ab_planned_size_detects_the_mde():
    "Planned n for baseline 0.10, mde 0.03, power 0.8: >= 75% of 200 simulated tests detect the lift; a quarter of n clearly fewer."
    plan = ab_sample_size(0.10, 0.03, level=1 - ALPHA, power=0.8)
    assert plan['n_control'] + plan['n_treatment'] == plan['n_total'] > plan['fixed_horizon_total']
    rng = np.random.default_rng(7)
    def detect(n):
        t = rng.uniform(size=n) < 0.5
        r = ab_test((rng.uniform(size=n) < np.where(t, 0.13, 0.10)).astype(float), t, level=1 - ALPHA)
        return r['significant'] and r['ci'][0] > 0
    full = np.mean([detect(plan['n_total']) for _ in range(200)])
    quarter = np.mean([detect(plan['n_total'] // 4) for _ in range(200)])
    assert full >= 0.75, (plan, full)
    assert quarter < full - 0.3, (full, quarter)

def test_ab_test_degenerate_inputs():
    r = ab_test([1.0, 0.0, 1.0], [True, False, False])
    assert r['p_value'] is None and r['significant'] is False and 'fewer than 2' in r['note']
    r = ab_test([0, 0, 0, 0], [True, False, True, False])
    assert r['p_value'] == 1.0 and r['significant'] is False and 'variance' in r['note']

def test_srm_check():
    assert srm_check([5000, 5000], [0.5, 0.5])['mismatch'] is False
    r = srm_check([5300, 4700], [0.5, 0.5])
    assert r['mismatch'] is True and r['p_value'] < 1e-8 and r['expected'] == [5000.0, 5000.0]

def test_bootstrap_is_seeded_fast_and_covers_a_mean():
    rng = np.random.default_rng(8)
    x = rng.exponential(size=300)
    assert bootstrap_ci(np.mean, [x], seed=11) == bootstrap_ci(np.mean, [x], seed=11)
    assert bootstrap_ci(np.mean, [x], seed=11) != bootstrap_ci(np.mean, [x], seed=12)
    yt, yp = rng.integers(0, 2, 16_000), rng.integers(0, 2, 16_000)
    t0 = time.perf_counter(); bootstrap_ci(lambda a, b: (a == b).mean(), [yt, yp], resamples=1000); dt = time.perf_counter() - t0
    assert dt < 3, dt                                                 # ~0.2 s unloaded
    cover = np.mean([lo <= 1.0 <= hi for lo, hi in
                     (bootstrap_ci(np.mean, [rng.exponential(size=100)], resamples=400, seed=i) for i in range(200))])
    assert cover >= 0.88, cover                                       # nominal 0.95; the percentile bootstrap runs a little short on skewed data
