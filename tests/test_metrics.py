"Metrics against scikit-learn, ECE against a plain loop, fairness against hand-computed numbers, plots on disk."
import json, math
import numpy as np, pandas as pd
import pytest
from sklearn import metrics as skm
from mlkit.metrics import (expected_calibration_error, classification_metrics, regression_metrics, group_metrics,
                           fairness_metrics, evaluate_predictions, save_plots, plot_groups)

TOL = dict(rel=1e-12, abs=1e-12)

def _binary_case(seed, n, pos_rate, ties=False):
    "Labels with the given imbalance and scores that carry some signal; optionally rounded so that scores tie."
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < pos_rate).astype(int)
    s = np.clip(0.35 * y + 0.65 * rng.uniform(size=n), 0, 1)
    if ties: s = np.round(s, 1)
    return y, s

CASES = [(0, 50, 0.5, 0.5, False), (1, 500, 0.1, 0.3, False), (2, 2000, 0.02, 0.5, True), (3, 37, 0.9, 0.7, False),
         (4, 1000, 0.3, 0.5, True), (5, 7, 0.5, 0.0, False), (6, 200, 0.4, 1.0, True)]

@pytest.mark.parametrize('seed,n,pos_rate,threshold,ties', CASES)
def test_classification_matches_sklearn(seed, n, pos_rate, threshold, ties):
    y, s = _binary_case(seed, n, pos_rate, ties)
    m = classification_metrics(y, s, threshold)
    p = (s >= threshold).astype(int)
    assert m['accuracy'] == pytest.approx(skm.accuracy_score(y, p), **TOL)
    assert m['roc_auc'] == pytest.approx(skm.roc_auc_score(y, s), **TOL)
    assert m['precision'] == pytest.approx(skm.precision_score(y, p, zero_division=0), **TOL)
    assert m['recall'] == pytest.approx(skm.recall_score(y, p, zero_division=0), **TOL)
    assert m['f1'] == pytest.approx(skm.f1_score(y, p, zero_division=0), **TOL)
    assert m['brier'] == pytest.approx(skm.brier_score_loss(y, s), **TOL)
    assert m['log_loss'] == pytest.approx(skm.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15)), **TOL)
    tn, fp, fn, tp = skm.confusion_matrix(y, p, labels=[0, 1]).ravel()
    assert m['fpr'] == pytest.approx(fp / (fp + tn), **TOL)
    assert m['ece'] == pytest.approx(_ece_loop(y, s, 15), **TOL)
    assert (m['n'], m['threshold']) == (n, float(threshold))
    assert m['positive_rate'] == pytest.approx(y.mean(), **TOL)

def test_keys_and_plain_types():
    y, s = _binary_case(0, 100, 0.3)
    m = classification_metrics(pd.Series(y, index=range(100, 200)), list(s))
    assert set(m) == {'accuracy', 'roc_auc', 'precision', 'recall', 'f1', 'brier', 'ece', 'log_loss', 'fpr',
                      'threshold', 'n', 'positive_rate'}
    assert all(type(v) in (float, int) for v in m.values()), {k: type(v) for k, v in m.items()}
    assert json.loads(json.dumps(m)) == m

def test_nothing_predicted_positive_uses_zero_division():
    y, s = _binary_case(1, 60, 0.3)
    m = classification_metrics(y, s * 0.4, threshold=0.5)   # every prediction negative
    assert (m['precision'], m['recall'], m['f1'], m['fpr']) == (0.0, 0.0, 0.0, 0.0)
    p = np.zeros_like(y)
    assert m['precision'] == skm.precision_score(y, p, zero_division=0)
    assert m['f1'] == skm.f1_score(y, p, zero_division=0)

def test_extreme_scores_log_loss_clipped():
    y = np.array([1, 0, 1, 0]); s = np.array([0.0, 1.0, 1.0, 0.0])
    m = classification_metrics(y, s)
    assert math.isfinite(m['log_loss'])
    assert m['log_loss'] == pytest.approx(skm.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15)), **TOL)
    # scikit-learn forms 1 - p for the negative class, and 1 - (1 - 1e-15) is 1.11e-15 in floating point, so the
    # result is close to, not equal to, the textbook -log(1e-15) / 2
    assert m['log_loss'] == pytest.approx(-math.log(1e-15) / 2, rel=1e-4)

@pytest.mark.parametrize('y', [[0, 0, 0, 0], [1, 1, 1, 1]])
def test_one_class_roc_auc_none(y):
    s = [0.1, 0.6, 0.3, 0.9]
    m = classification_metrics(y, s)
    assert m['roc_auc'] is None
    assert m['brier'] == pytest.approx(skm.brier_score_loss(y, s, labels=[0, 1]), **TOL)
    assert m['log_loss'] == pytest.approx(skm.log_loss(y, s, labels=[0, 1]), **TOL)
    assert m['accuracy'] == pytest.approx(skm.accuracy_score(y, np.array(s) >= 0.5), **TOL)

# --- ECE ---------------------------------------------------------------------------------------------------------

def _ece_loop(y, s, n_bins):
    "ECE straight from its definition: bin b holds scores in (b/B, (b+1)/B], the first bin also 0."
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        members = [i for i in range(len(s)) if (lo < s[i] <= hi) or (b == 0 and s[i] == 0)]
        if not members: continue
        acc = sum(y[i] for i in members) / len(members)
        conf = sum(s[i] for i in members) / len(members)
        total += len(members) / len(s) * abs(acc - conf)
    return total

@pytest.mark.parametrize('seed,n,n_bins', [(0, 100, 15), (1, 500, 10), (2, 33, 5), (3, 1000, 1), (4, 250, 20)])
def test_ece_matches_loop(seed, n, n_bins):
    y, s = _binary_case(seed, n, 0.3)
    s[:5] = [0.0, 1.0, 0.5, 0.2, 0.8]      # exact bin edges and both ends
    assert expected_calibration_error(y, s, n_bins) == pytest.approx(_ece_loop(y, s, n_bins), **TOL)

def test_ece_hand_examples():
    assert expected_calibration_error([1, 0, 0, 0], [0.8, 0.8, 0.2, 0.2]) == pytest.approx(0.25, **TOL)
    assert expected_calibration_error([1, 0], [1.0, 0.0]) == 0.0
    assert expected_calibration_error([1, 1], [0.0, 0.0]) == 1.0
    # one bin: the gap between the positive rate and the mean score
    assert expected_calibration_error([1, 0, 0], [0.9, 0.3, 0.3], n_bins=1) == pytest.approx(abs(1 / 3 - 0.5), **TOL)

# --- regression --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('seed,n,noise', [(0, 10, 0.1), (1, 300, 1.0), (2, 1000, 5.0), (3, 2, 0.5)])
def test_regression_matches_sklearn(seed, n, noise):
    rng = np.random.default_rng(seed)
    y = rng.normal(50, 10, n); p = y + rng.normal(0, noise, n)
    r = regression_metrics(y, p)
    assert r['rmse'] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)), **TOL)
    assert r['mae'] == pytest.approx(skm.mean_absolute_error(y, p), **TOL)
    assert r['r2'] == pytest.approx(skm.r2_score(y, p), **TOL)
    assert r['n'] == n and set(r) == {'rmse', 'mae', 'r2', 'n'}

def test_regression_constant_target_and_one_row():
    assert regression_metrics([3, 3, 3], [3, 3, 3])['r2'] == skm.r2_score([3, 3, 3], [3, 3, 3]) == 1.0
    assert regression_metrics([3, 3, 3], [3, 4, 3])['r2'] == skm.r2_score([3, 3, 3], [3, 4, 3]) == 0.0
    assert regression_metrics([1.0], [2.0]) == dict(rmse=1.0, mae=1.0, r2=None, n=1)

# --- groups and fairness -----------------------------------------------------------------------------------------

#          row:  0    1    2    3    4    5    6    7
Y     = np.array([1,   1,   0,   0,   1,   0,   0,   0])
P     = np.array([1,   0,   0,   0,   1,   1,   1,   0])
SEX   = ['F', 'F', 'F', 'F', 'M', 'M', 'M', 'M']
GRP   = ['a', 'a', 'b', 'b', 'c', 'c', 'c', None]

def test_group_metrics_by_hand():
    g = group_metrics(Y, P, GRP)
    assert list(g) == ['(missing)', 'a', 'b', 'c']
    assert g['a'] == dict(count=2, selection_rate=0.5, tpr=0.5, fpr=None, accuracy=0.5)
    assert g['b'] == dict(count=2, selection_rate=0.0, tpr=None, fpr=0.0, accuracy=1.0)
    assert g['c'] == pytest.approx(dict(count=3, selection_rate=1.0, tpr=1.0, fpr=1.0, accuracy=1 / 3))
    assert g['(missing)'] == dict(count=1, selection_rate=0.0, tpr=None, fpr=0.0, accuracy=1.0)

def test_fairness_by_hand():
    f = fairness_metrics(Y, P, pd.DataFrame({'sex': SEX, 'grp': GRP}))
    assert list(f) == ['sex', 'grp']
    sex = f['sex']
    # F: selected 1/4, TPR 1/2, FPR 0/2; M: selected 3/4, TPR 1/1, FPR 2/3
    assert sex['groups']['F'] == dict(count=4, selection_rate=0.25, tpr=0.5, fpr=0.0, accuracy=0.75)
    assert sex['groups']['M'] == pytest.approx(dict(count=4, selection_rate=0.75, tpr=1.0, fpr=2 / 3, accuracy=0.5))
    assert sex['demographic_parity_difference'] == pytest.approx(0.5, **TOL)
    assert sex['demographic_parity_ratio'] == pytest.approx(1 / 3, **TOL)
    assert sex['equalized_odds_difference'] == pytest.approx(2 / 3, **TOL)   # max(TPR gap 0.5, FPR gap 2/3)
    grp = f['grp']
    # selection 0 .. 1; TPR gap over a, c only (0.5 vs 1); FPR gap over b, c, (missing) (0, 1, 0)
    assert (grp['demographic_parity_difference'], grp['demographic_parity_ratio']) == (1.0, 0.0)
    assert grp['equalized_odds_difference'] == 1.0

def test_fairness_dict_input_and_nobody_selected():
    f = fairness_metrics([1, 0, 1, 0], [0, 0, 0, 0], {'g': np.array(['x', 'x', 'y', 'y'])})
    assert f['g']['demographic_parity_difference'] == 0.0 and f['g']['demographic_parity_ratio'] == 1.0
    assert f['g']['equalized_odds_difference'] == 0.0

def _fairlearn_reference(y, p, groups):
    """fairlearn's definitions, written independently: per-group rates with MetricFrame semantics
    (NaN where a rate is undefined), difference = max - min ignoring NaN, ratio = min / max,
    equalized odds difference = max(TPR difference, FPR difference)."""
    g = pd.Series(groups, dtype=object).fillna('(missing)').astype(str).to_numpy()
    sel, tpr, fpr = {}, {}, {}
    for k in np.unique(g):
        m = g == k
        sel[k] = p[m].sum() / m.sum()
        pos, neg = m & (y == 1), m & (y == 0)
        tpr[k] = p[pos].sum() / pos.sum() if pos.sum() else np.nan
        fpr[k] = p[neg].sum() / neg.sum() if neg.sum() else np.nan
    sel, tpr, fpr = pd.Series(sel), pd.Series(tpr), pd.Series(fpr)
    diff = lambda s: s.max() - s.min()
    return dict(dpd=diff(sel), dpr=sel.min() / sel.max(), eod=np.nanmax([diff(tpr), diff(fpr)]), sel=sel, tpr=tpr, fpr=fpr)

@pytest.mark.parametrize('seed,n,k', [(0, 300, 2), (1, 1000, 5), (2, 60, 8), (3, 5000, 3)])
def test_fairness_matches_fairlearn_definitions(seed, n, k):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.25).astype(int)
    p = (rng.uniform(size=n) < 0.2 + 0.3 * y).astype(int)
    groups = rng.choice([f'g{i}' for i in range(k)], n, p=np.linspace(1, 3, k) / np.linspace(1, 3, k).sum()).astype(object)
    groups[rng.uniform(size=n) < 0.03] = None
    f = fairness_metrics(y, p, {'attr': groups})['attr']
    ref = _fairlearn_reference(y, p, groups)
    assert f['demographic_parity_difference'] == pytest.approx(ref['dpd'], **TOL)
    assert f['demographic_parity_ratio'] == pytest.approx(ref['dpr'], **TOL)
    assert f['equalized_odds_difference'] == pytest.approx(ref['eod'], **TOL)
    assert list(f['groups']) == sorted(ref['sel'].index)
    for key, gm in f['groups'].items():
        assert gm['selection_rate'] == pytest.approx(ref['sel'][key], **TOL)
        for rate in ('tpr', 'fpr'):
            assert (gm[rate] is None) == bool(np.isnan(ref[rate][key]))
            if gm[rate] is not None: assert gm[rate] == pytest.approx(ref[rate][key], **TOL)

# --- evaluate_predictions ----------------------------------------------------------------------------------------

def test_evaluate_binary_with_fairness_is_json():
    y, s = _binary_case(7, 400, 0.3)
    sens = pd.DataFrame({'sex': np.where(np.arange(400) % 3 == 0, 'F', 'M'), 'race': np.arange(400) % 4})
    ev = evaluate_predictions(y, s, sens, threshold=0.4, positive_class='>50K')
    assert ev['positive_class'] == '>50K'
    assert {k: ev[k] for k in classification_metrics(y, s, 0.4)} == classification_metrics(y, s, 0.4)
    assert ev['fairness'] == fairness_metrics(y, (s >= 0.4).astype(int), sens)
    assert list(ev['fairness']['race']['groups']) == ['0', '1', '2', '3']
    assert json.loads(json.dumps(ev)) == ev

def test_evaluate_raw_labels_and_regression():
    ev = evaluate_predictions(np.array(['>50K', '<=50K', '>50K', '<=50K']), [0.7, 0.2, 0.4, 0.6], positive_class='>50K')
    assert (ev['recall'], ev['precision'], ev['fpr'], ev['fairness']) == (0.5, 0.5, 0.5, {})
    r = evaluate_predictions([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], task='regression')
    assert r == dict(regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]), fairness={})
    with pytest.raises(ValueError, match='unknown task'): evaluate_predictions([0, 1], [0.1, 0.9], task='multiclass')

# --- validation --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('y,s,msg', [
    ([0, 1, 1], [0.1, 0.9], 'lengths differ'),
    ([], [], 'empty'),
    ([0, 1], [0.1, 1.1], r'within \[0, 1\]'),
    ([0, 1], [-0.1, 0.5], r'within \[0, 1\]'),
    ([0, 1], [0.1, np.nan], 'non-finite'),
    ([0, 1], [0.1, np.inf], 'non-finite'),
    ([0, 2], [0.1, 0.9], 'only 0 and 1'),
    ([0, np.nan], [0.1, 0.9], 'only 0 and 1'),
    (['no', 'yes'], [0.1, 0.9], 'only 0 and 1'),
    ([0, 1], [[0.9, 0.1], [0.2, 0.8]], '1-D'),
])
def test_validation_errors(y, s, msg):
    with pytest.raises(ValueError, match=msg): classification_metrics(y, s)

def test_other_validation_errors():
    with pytest.raises(ValueError, match='n_bins'): expected_calibration_error([0, 1], [0.2, 0.8], n_bins=0)
    with pytest.raises(ValueError, match='lengths differ'): group_metrics([0, 1], [0, 1], ['a'])
    with pytest.raises(ValueError, match='y_pred must hold only 0 and 1'): group_metrics([0, 1], [0, 0.5], ['a', 'b'])
    with pytest.raises(ValueError, match='DataFrame or a dict'): fairness_metrics([0, 1], [0, 1], ['a', 'b'])
    with pytest.raises(ValueError, match='lengths differ'): regression_metrics([1, 2], [1])
    with pytest.raises(ValueError, match='non-finite'): regression_metrics([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match='threshold'): classification_metrics([0, 1], [0.2, 0.8], threshold=float('nan'))

# --- plots -------------------------------------------------------------------------------------------------------

def test_save_plots_writes_pngs(tmp_path):
    import matplotlib.pyplot as plt
    y, s = _binary_case(8, 500, 0.3)
    sens = {'sex': np.where(y == 1, 'M', np.where(np.arange(500) % 2, 'F', 'M')), 'race': np.arange(500) % 5}
    fair = evaluate_predictions(y, s, sens)['fairness']
    before = len(plt.get_fignums())
    paths = save_plots(tmp_path/'plots', y, s, fair, labels=('<=50K', '>50K'))
    assert [p.name for p in paths] == ['roc.png', 'calibration.png', 'confusion.png', 'fairness.png']
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000
        assert p.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert len(plt.get_fignums()) == before     # every figure closed
    paths = save_plots(tmp_path/'nofair', y, s, {})
    assert [p.name for p in paths] == ['roc.png', 'calibration.png', 'confusion.png']
    assert not (tmp_path/'nofair'/'fairness.png').exists()

def test_plots_one_class_and_empty_fairness(tmp_path):
    paths = save_plots(tmp_path, [0, 0, 0], [0.1, 0.5, 0.9], {})
    assert all(p.stat().st_size > 0 for p in paths)
    with pytest.raises(ValueError, match='no sensitive'): plot_groups({})
