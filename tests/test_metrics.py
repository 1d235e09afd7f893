"Metrics against scikit-learn, ECE against a plain loop, fairness against hand-computed numbers, plots on disk."
import json, math
import numpy as np, pandas as pd
import pytest
from sklearn import metrics as skm
from mlkit.data import Schema, Column
from mlkit.metrics import (expected_calibration_error, classification_metrics, regression_metrics, group_metrics,
                           fairness_metrics, evaluate_predictions, save_plots, plot_groups, multiclass_metrics,
                           primary_metric, fit_baselines, plot_confusion, plot_baselines, TASK_METRICS, headline_metrics,
                           compare_metrics, report_metrics, plot_calibration, plot_top_label_calibration)
import mlkit.data, mlkit.metrics
from mlkit.stats import wilson, gap_interval, ratio_interval, auc_ci

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

def _rates(m):
    "A group's numbers without their intervals."
    return {k: v for k, v in m.items() if not k.endswith('_ci')}

def test_group_metrics_by_hand():
    g = group_metrics(Y, P, GRP)
    assert list(g) == ['(missing)', 'a', 'b', 'c']
    assert _rates(g['a']) == dict(count=2, small=False, selection_rate=0.5, tpr=0.5, fpr=None, accuracy=0.5)
    assert _rates(g['b']) == dict(count=2, small=False, selection_rate=0.0, tpr=None, fpr=0.0, accuracy=1.0)
    assert _rates(g['c']) == pytest.approx(dict(count=3, small=False, selection_rate=1.0, tpr=1.0, fpr=1.0, accuracy=1 / 3))
    assert _rates(g['(missing)']) == dict(count=1, small=False, selection_rate=0.0, tpr=None, fpr=0.0, accuracy=1.0)
    assert list(g['a']) == ['count', 'small', 'selection_rate', 'selection_rate_ci', 'tpr', 'tpr_ci', 'fpr', 'fpr_ci',
                            'accuracy', 'accuracy_ci']

def test_group_intervals_are_wilson_of_the_rates_own_counts():
    "Selection rate and accuracy over the group, TPR over its positives, FPR over its negatives; None where undefined."
    g = group_metrics(Y, P, GRP, level=0.9)
    # c: rows 4, 5, 6 -> labels 1, 0, 0; predictions 1, 1, 1
    assert g['c']['selection_rate_ci'] == wilson(3, 3, 0.9)
    assert g['c']['tpr_ci'] == wilson(1, 1, 0.9) and g['c']['fpr_ci'] == wilson(2, 2, 0.9)
    assert g['c']['accuracy_ci'] == wilson(1, 3, 0.9)
    assert g['a']['fpr_ci'] is None and g['b']['tpr_ci'] is None
    rng = np.random.default_rng(21)
    y, p = (rng.uniform(size=3000) < 0.3).astype(int), (rng.uniform(size=3000) < 0.4).astype(int)
    grp = rng.choice(['x', 'y', 'z'], 3000)
    for k, m in group_metrics(y, p, grp).items():
        r = grp == k
        assert m['selection_rate_ci'] == wilson(int(p[r].sum()), int(r.sum()))
        assert m['tpr_ci'] == wilson(int(p[r & (y == 1)].sum()), int((r & (y == 1)).sum()))
        assert m['fpr_ci'] == wilson(int(p[r & (y == 0)].sum()), int((r & (y == 0)).sum()))
        assert m['accuracy_ci'] == wilson(int((p[r] == y[r]).sum()), int(r.sum()))
        for rate in ('selection_rate', 'tpr', 'fpr', 'accuracy'):
            assert m[f'{rate}_ci'][0] <= m[rate] <= m[f'{rate}_ci'][1]

def test_fairness_by_hand():
    f = fairness_metrics(Y, P, pd.DataFrame({'sex': SEX, 'grp': GRP}))
    assert list(f) == ['sex', 'grp']
    sex = f['sex']
    # F: selected 1/4, TPR 1/2, FPR 0/2; M: selected 3/4, TPR 1/1, FPR 2/3
    assert _rates(sex['groups']['F']) == dict(count=4, small=False, selection_rate=0.25, tpr=0.5, fpr=0.0, accuracy=0.75)
    assert _rates(sex['groups']['M']) == pytest.approx(dict(count=4, small=False, selection_rate=0.75, tpr=1.0, fpr=2 / 3, accuracy=0.5))
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
    assert {k: v for k, v in r.items() if not k.endswith('_ci')} == dict(regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]), fairness={})
    assert [k for k in r if k.endswith('_ci')] == ['rmse_ci', 'mae_ci', 'r2_ci']
    with pytest.raises(ValueError, match="unknown task 'ranking': use 'binary', 'multiclass' or 'regression'"):
        evaluate_predictions([0, 1], [0.1, 0.9], task='ranking')

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

# --- multiclass ----------------------------------------------------------------------------------------------------

def _multiclass_case(seed, n, k, absent=()):
    "Probabilities with some signal, labels drawn from them; classes in `absent` never occur in the labels."
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)); y = rng.integers(0, k, n)
    for c in absent: y[y == c] = (c + 1) % k
    logits[np.arange(n), y] += 1.0
    p = np.exp(logits); p /= p.sum(1, keepdims=True)
    return y, p

def _top_ece_loop(y, p, n_bins):
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    return _ece_loop(correct, conf, n_bins)

@pytest.mark.parametrize('seed,n,k,absent', [(0, 300, 3, ()), (1, 2000, 10, ()), (2, 50, 3, ()), (3, 500, 10, (4, 7)),
                                             (4, 400, 3, (2,))])
def test_multiclass_matches_sklearn(seed, n, k, absent):
    y, p = _multiclass_case(seed, n, k, absent)
    classes = [f'c{i}' for i in range(k)]
    labels = np.array(classes, dtype=object)[y]
    m = multiclass_metrics(labels, p, classes)
    pred, L = p.argmax(1), list(range(k))
    assert m['accuracy'] == pytest.approx(skm.accuracy_score(y, pred), **TOL)
    assert m['balanced_accuracy'] == pytest.approx(skm.balanced_accuracy_score(y, pred), **TOL)
    for avg in ('macro', 'weighted'):
        pr, rc, f1, _ = skm.precision_recall_fscore_support(y, pred, labels=L, average=avg, zero_division=0)
        assert (m[f'precision_{avg}'], m[f'recall_{avg}'], m[f'f1_{avg}']) == pytest.approx((pr, rc, f1), **TOL)
    pr, rc, f1, sup = skm.precision_recall_fscore_support(y, pred, labels=L, average=None, zero_division=0)
    for i, c in enumerate(classes):
        assert m['per_class'][c] == pytest.approx(dict(precision=pr[i], recall=rc[i], f1=f1[i], support=sup[i]), **TOL)
        assert type(m['per_class'][c]['support']) is int
    assert m['log_loss'] == pytest.approx(skm.log_loss(y, p, labels=L), **TOL)
    if not absent:
        assert m['roc_auc'] == pytest.approx(skm.roc_auc_score(y, p, multi_class='ovr', average='macro', labels=L), **TOL)
    else:   # scikit-learn refuses OvR AUC with absent classes: the mean over the present ones
        present = sorted(set(y))
        assert m['roc_auc'] == pytest.approx(np.mean([skm.roc_auc_score(y == c, p[:, c]) for c in present]), **TOL)
    assert m['confusion'] == skm.confusion_matrix(y, pred, labels=L).tolist()
    assert m['ece'] == pytest.approx(_top_ece_loop(y, p, 15), **TOL)
    assert (m['n'], m['classes']) == (n, classes)
    assert set(m) == {'accuracy', 'balanced_accuracy', 'precision_macro', 'recall_macro', 'f1_macro', 'precision_weighted',
                      'recall_weighted', 'f1_weighted', 'log_loss', 'roc_auc', 'ece', 'n', 'classes', 'per_class', 'confusion'}
    assert json.loads(json.dumps(m)) == m

def test_multiclass_labels_compared_as_strings():
    y, p = _multiclass_case(5, 100, 3)
    ref = multiclass_metrics(np.array(['1', '2', '10'])[y], p, ['1', '2', '10'])
    assert multiclass_metrics(np.array([1.0, 2.0, 10.0])[y], p, [1, 2, 10]) == ref
    assert multiclass_metrics(pd.Series(np.array([1, 2, 10])[y]), p, ['1', '2', '10']) == ref
    assert multiclass_metrics(np.array([' 1', '2 ', '10'], dtype=object)[y], p, ['1', '2', '10']) == ref

def test_multiclass_two_classes():
    "Two classes as a multiclass task: the one-vs-rest AUC is the binary AUC of either class."
    y, p = np.array(['a', 'a', 'b', 'b']), np.array([[0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.45, 0.55]])
    m = evaluate_predictions(y, p, task='multiclass', classes=['a', 'b'], resamples=20)
    assert m['roc_auc'] == pytest.approx(skm.roc_auc_score(y == 'b', p[:, 1]), **TOL)

def test_multiclass_one_class_present_roc_auc_none():
    _, p = _multiclass_case(6, 20, 3)
    m = multiclass_metrics(['a'] * 20, p, ['a', 'b', 'c'])
    assert m['roc_auc'] is None and m['per_class']['b']['support'] == 0

@pytest.mark.parametrize('y,p,classes,msg', [
    (['a', 'x', 'y'], np.full((3, 3), 1 / 3), ['a', 'b', 'c'], r"not in classes \['a', 'b', 'c'\]: \['x', 'y'\]"),
    (['a', None], np.full((2, 3), 1 / 3), ['a', 'b', 'c'], '1 missing label'),
    (['a', 'b'], np.full((2, 2), 0.5), ['a', 'b', 'c'], r'shape \[n, 3\]'),
    (['a', 'b'], np.full(2, 0.5), ['a', 'b', 'c'], r'shape \[n, 3\]'),
    (['a', 'b'], [[0.5, 0.6, 0.0], [0.2, 0.3, 0.5]], ['a', 'b', 'c'], 'sum to 1'),
    (['a', 'b'], [[np.nan, 0.5, 0.5], [0.2, 0.3, 0.5]], ['a', 'b', 'c'], 'non-finite'),
    (['a', 'b'], [[-0.5, 1.0, 0.5], [0.2, 0.3, 0.5]], ['a', 'b', 'c'], r'within \[0, 1\]'),
    (['a', 'b', 'c'], np.full((2, 3), 1 / 3), ['a', 'b', 'c'], 'lengths differ'),
    (['a'], np.full((1, 3), 1 / 3), ['a', 'a', 'b'], 'repeats'),
    (['a'], np.full((1, 3), 1 / 3), None, 'classes is required'),
])
def test_multiclass_validation(y, p, classes, msg):
    with pytest.raises(ValueError, match=msg): multiclass_metrics(y, p, classes)

# multiclass fairness, by hand
#         row:  0    1    2    3    4    5    6    7
YM  = np.array(['a', 'a', 'b', 'c', 'a', 'b', 'b', 'c'])
PM  = np.array(['a', 'b', 'b', 'c', 'a', 'a', 'b', 'b'])
SXM = ['F', 'F', 'F', 'F', 'M', 'M', 'M', 'M']

def test_multiclass_fairness_by_hand():
    f = fairness_metrics(YM, PM, {'sex': SXM}, classes=['a', 'b', 'c'])['sex']
    F, M = f['groups']['F'], f['groups']['M']
    assert _rates(F) == (dict(count=4, small=False, accuracy=0.75, selection_rate={'a': 0.25, 'b': 0.5, 'c': 0.25},
                                   tpr={'a': 0.5, 'b': 1.0, 'c': 1.0}, fpr={'a': 0.0, 'b': 1 / 3, 'c': 0.0}))
    assert _rates(M) == (dict(count=4, small=False, accuracy=0.5, selection_rate={'a': 0.5, 'b': 0.5, 'c': 0.0},
                                   tpr={'a': 1.0, 'b': 0.5, 'c': 0.0}, fpr={'a': 1 / 3, 'b': 0.5, 'c': 0.0}))
    # per class gaps in selection: a 1/4, b 0, c 1/4; ratios a 1/2, b 1, c 0; TPR/FPR gaps a 1/2, b 1/2, c 1
    assert f['demographic_parity_difference'] == pytest.approx(0.25, **TOL)
    assert f['demographic_parity_ratio'] == 0.0
    assert f['equalized_odds_difference'] == 1.0

def test_multiclass_fairness_undefined_rates_and_same_keys():
    f = fairness_metrics(['a', 'a'], ['a', 'b'], {'g': ['x', 'y']}, classes=['a', 'b'])['g']
    assert f['groups']['x']['tpr'] == {'a': 1.0, 'b': None} and f['groups']['x']['fpr'] == {'a': None, 'b': 0.0}
    assert f['equalized_odds_difference'] == 1.0     # TPR of 'a': 1 vs 0
    binary = fairness_metrics([1, 0], [1, 1], {'g': ['x', 'y']})['g']
    assert list(f) == list(binary) == ['demographic_parity_difference', 'demographic_parity_difference_ci',
                                       'demographic_parity_ratio', 'demographic_parity_ratio_ci',
                                       'equalized_odds_difference', 'equalized_odds_difference_ci', 'small_groups', 'groups']
    assert f['groups']['x']['tpr_ci'] == {'a': wilson(1, 1), 'b': None}

def test_multiclass_fairness_matches_one_vs_rest_binary():
    "Each class's one-vs-rest binary fairness numbers; the multiclass ones are the worst over classes."
    rng = np.random.default_rng(9)
    classes = ['p', 'q', 'r', 's']
    y, p = rng.choice(classes, 500), rng.choice(classes, 500)
    groups = rng.choice(['g1', 'g2', 'g3'], 500)
    f = fairness_metrics(y, p, {'a': groups}, classes=classes)['a']
    per = [fairness_metrics((y == c).astype(int), (p == c).astype(int), {'a': groups})['a'] for c in classes]
    assert f['demographic_parity_difference'] == pytest.approx(max(b['demographic_parity_difference'] for b in per), **TOL)
    assert f['demographic_parity_ratio'] == pytest.approx(min(b['demographic_parity_ratio'] for b in per), **TOL)
    assert f['equalized_odds_difference'] == pytest.approx(max(b['equalized_odds_difference'] for b in per), **TOL)
    for g in ('g1', 'g2', 'g3'):
        for c, b in zip(classes, per):
            for r in ('selection_rate', 'tpr', 'fpr'): assert f['groups'][g][r][c] == pytest.approx(b['groups'][g][r], **TOL)
        assert f['groups'][g]['accuracy'] == pytest.approx(np.mean(y[groups == g] == p[groups == g]), **TOL)

def test_evaluate_multiclass():
    y, p = _multiclass_case(10, 200, 3)
    classes = ['lo', 'mid', 'hi']; labels = np.array(classes)[y]
    sens = pd.DataFrame({'sex': np.where(np.arange(200) % 2, 'F', 'M')})
    ev = evaluate_predictions(labels, p, sens, task='multiclass', classes=classes)
    assert {k: v for k, v in ev.items() if k != 'fairness' and not k.endswith('_ci')} == multiclass_metrics(labels, p, classes)
    assert [k for k in ev if k.endswith('_ci')] == [f'{k}_ci' for k in report_metrics('multiclass')]
    assert ev['fairness'] == fairness_metrics(labels, np.array(classes)[p.argmax(1)], sens, classes)
    assert evaluate_predictions(labels, p, None, task='multiclass', classes=classes)['fairness'] == {}
    assert json.loads(json.dumps(ev)) == ev
    with pytest.raises(ValueError, match='classes is required'): evaluate_predictions(labels, p, task='multiclass')

def test_primary_metric():
    assert [primary_metric(t) for t in ('binary', 'multiclass', 'regression')] == [('roc_auc', True), ('accuracy', True), ('rmse', False)]
    with pytest.raises(ValueError, match='unknown task'): primary_metric('ranking')

def test_task_metrics_table():
    "One table for every task of the data module; every key it names is a number evaluate_predictions gives for that task."
    assert mlkit.metrics.TASKS is mlkit.data.TASKS and set(TASK_METRICS) == set(mlkit.data.TASKS)
    assert headline_metrics('binary') == ['accuracy', 'roc_auc', 'f1', 'log_loss', 'ece']
    for task in mlkit.data.TASKS:
        keys = headline_metrics(task) + compare_metrics(task) + report_metrics(task)
        m = evaluate_predictions(*{'binary': ([0, 1, 1, 0], [0.3, 0.8, 0.4, 0.6]),
                                   'multiclass': (['0', '1', '2'], [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]]),
                                   'regression': ([1.0, 2.0, 4.0], [1.0, 2.5, 3.0])}[task], task=task, classes=['0', '1', '2'])
        assert all(isinstance(m[k], float) for k in keys), (task, keys)
        key = primary_metric(task)[0]
        assert key in headline_metrics(task) and key in compare_metrics(task) and key in report_metrics(task)
        assert len(set(report_metrics(task))) == len(report_metrics(task))
    headline_metrics('regression').append('x')          # callers get copies
    assert headline_metrics('regression') == ['rmse', 'mae', 'r2']
    for f in (headline_metrics, compare_metrics, report_metrics):
        with pytest.raises(ValueError, match="unknown task 'ranking'"): f('ranking')

# --- baselines -----------------------------------------------------------------------------------------------------

def _table(n, seed, task):
    "A learnable table: the target follows a number, a category and a date; a sensitive column and some missing values."
    rng = np.random.default_rng(seed)
    x, g = rng.normal(size=n), rng.choice(['u', 'v', 'w', 7], n).astype(object)
    days = rng.integers(0, 730, n)
    when = (pd.Timestamp('2023-01-01') + pd.to_timedelta(days, 'D')).strftime('%Y-%m-%d').to_numpy(dtype=object)
    signal = 2 * x + np.where(g == 'u', 1.5, np.where(g == 7, -1.5, 0.0)) + (days > 365) * 1.0
    if task == 'binary': y = np.where(signal + rng.normal(scale=0.3, size=n) > 0.5, 'yes', 'no').astype(object)
    elif task == 'multiclass': y = np.digitize(signal + rng.normal(scale=0.3, size=n), [-1.0, 1.0]).astype(float)  # 0., 1., 2.
    else: y = 10 + 3 * signal + rng.normal(scale=0.5, size=n)
    x[rng.uniform(size=n) < 0.05] = np.nan; g[rng.uniform(size=n) < 0.05] = None; when[:3] = 'not a date'
    df = pd.DataFrame({'x': x, 'g': g, 'when': when, 'sex': rng.choice(['F', 'M'], n), 'target': y})
    df.loc[df.index[-2:], 'target'] = None      # rows without a target are dropped
    return df

def _schema(task):
    cols = {'x': Column('numeric'), 'g': Column('categorical'), 'when': Column('datetime'), 'sex': Column('categorical')}
    if task == 'binary': return Schema(cols, 'target', 'binary', ['no', 'yes'], 'yes', ['sex'])
    if task == 'multiclass': return Schema(cols, 'target', 'multiclass', ['0', '1', '2'], None, ['sex'])
    return Schema(cols, 'target', 'regression', None, None, ['sex'])

def _model_keys(task):
    "The keys evaluate_predictions gives a model of `task`, without fairness."
    if task == 'binary': ev = evaluate_predictions([0, 1], [0.2, 0.8], positive_class='yes')
    elif task == 'multiclass': ev = evaluate_predictions(['0', '1'], [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]], task='multiclass', classes=['0', '1', '2'])
    else: ev = evaluate_predictions([1.0, 2.0], [1.0, 2.5], task='regression')
    return set(ev) - {'fairness'}

@pytest.mark.parametrize('task', ['binary', 'multiclass', 'regression'])
def test_baselines_keys_skill_and_determinism(task):
    train, test, schema = _table(400, 0, task), _table(200, 1, task), _schema(task)
    b = fit_baselines(train, test, schema, seed=3)
    assert list(b) == ['trivial', 'linear', 'hist_gradient_boosting']
    for name, m in b.items():
        assert 'error' not in m, (name, m)
        assert set(m) == _model_keys(task) | {'fit_seconds'}, name
        assert m['n'] == 198 and m['fit_seconds'] >= 0
    key, higher = primary_metric(task)
    skill = (b['hist_gradient_boosting'][key] - b['trivial'][key]) * (1 if higher else -1)
    assert skill > {'binary': 0.3, 'multiclass': 0.25, 'regression': 2.0}[task], (key, b)
    again = fit_baselines(train, test, schema, seed=3)
    strip = lambda r: {k: {kk: vv for kk, vv in v.items() if kk != 'fit_seconds'} for k, v in r.items()}
    assert strip(again) == strip(b)
    assert json.loads(json.dumps(b)) == b
    if task == 'binary': assert b['linear']['positive_class'] == 'yes'
    if task == 'multiclass': assert b['trivial']['classes'] == ['0', '1', '2']

def test_baselines_ignore_sensitive_and_use_dates():
    "The sensitive column is no input: changing it changes nothing; a target made of the date alone is learnt."
    train, test, schema = _table(300, 2, 'binary'), _table(150, 3, 'binary'), _schema('binary')
    b = fit_baselines(train, test, schema)
    b2 = fit_baselines(train.assign(sex=train['sex'].map({'F': 'M', 'M': 'F'})), test, schema)
    assert b2['linear']['roc_auc'] == b['linear']['roc_auc'] and b2['hist_gradient_boosting']['roc_auc'] == b['hist_gradient_boosting']['roc_auc']
    only_date = Schema({'when': Column('datetime')}, 'target', 'binary', ['no', 'yes'], 'yes')
    late = lambda d: d.assign(target=np.where(pd.to_datetime(d['when'], errors='coerce') > '2024-01-01', 'yes', 'no'))
    b = fit_baselines(late(train), late(test), only_date)
    assert b['hist_gradient_boosting']['roc_auc'] > 0.95 and b['linear']['roc_auc'] > 0.9, b

def _dated(n, seed, max_day):
    "Day-first dates in 2022 (days up to `max_day`), the target whether the date is in the second half of the year."
    rng = np.random.default_rng(seed)
    month, day = rng.integers(1, 13, n), rng.integers(1, max_day + 1, n)
    return pd.DataFrame({'when': [f"{d:02d}/{m:02d}/2022" for d, m in zip(day, month)],
                         'target': np.where(month >= 7, 'yes', 'no')})

def test_baselines_read_dates_as_the_model():
    "Day first is decided once on the training rows and applies to the test rows, whose days alone do not tell."
    first = mlkit.metrics._dayfirst(pd.DataFrame({'when': ['25/12/2021', '03/04/2022']}), dict(datetime=['when']))
    assert first == {'when': mlkit.data.date_dayfirst(['25/12/2021', '03/04/2022'])} == {'when': True}
    X = mlkit.metrics._baseline_frame(pd.DataFrame({'when': ['03/04/2022', '25/12/2021']}), dict(numeric=[], categorical=[], datetime=['when']),
                                      first, 'test')
    epoch = pd.Timestamp(0)
    assert X['when'].tolist() == [(pd.Timestamp('2022-04-03') - epoch).days, (pd.Timestamp('2021-12-25') - epoch).days]
    train, test = _dated(400, 20, 28), _dated(200, 21, 12)      # no test day above 12
    schema = Schema({'when': Column('datetime')}, 'target', 'binary', ['no', 'yes'], 'yes')
    b = fit_baselines(train, test, schema)
    assert b['hist_gradient_boosting']['roc_auc'] > 0.95 and b['linear']['roc_auc'] > 0.9, b

def test_one_ece_computation():
    "The top-label ECE is the binary ECE of the top-label outcomes; the reliability diagrams show the same number."
    y, p = _multiclass_case(14, 300, 4)
    classes = ['a', 'b', 'c', 'd']
    m = multiclass_metrics(np.array(classes)[y], p, classes)
    right, conf = (p.argmax(1) == y).astype(int), p.max(1)
    assert m['ece'] == pytest.approx(expected_calibration_error(right, conf), **TOL)
    assert m['ece'] == pytest.approx(_ece_loop(right, conf, 15), **TOL)
    fig = plot_top_label_calibration(np.array(classes)[y], p, classes)
    assert fig.axes[0].lines[1].get_label() == f"model (ECE {expected_calibration_error(right, conf, 10):.3f})"
    yb, s = _binary_case(15, 300, 0.4)
    assert plot_calibration(yb, s).axes[0].lines[1].get_label() == f"model (ECE {_ece_loop(yb, s, 10):.3f})"

def test_baselines_failures_and_unseen_classes():
    schema = _schema('multiclass')
    train, test = _table(300, 4, 'multiclass'), _table(150, 5, 'multiclass')
    one = fit_baselines(train.assign(target=1.0), test, schema)      # one class in training
    assert 'one class' in one['linear']['error'] and 'error' not in one['trivial']
    assert one['trivial']['log_loss'] > 10 and math.isfinite(one['trivial']['log_loss'])   # probability 0 clipped
    two = fit_baselines(train[train.target != 2.0], test, schema)   # class '2' never seen in training
    assert all('error' not in m for m in two.values())
    assert all(m['per_class']['2']['recall'] == 0.0 for m in two.values())
    with pytest.raises(Exception, match=r"labels not in the schema's classes \['0', '1', '2'\]: \['5'\]"):
        fit_baselines(train, test.assign(target=5), schema)
    with pytest.raises(Exception, match=r"lacks the input column\(s\) \['x'\]"):
        fit_baselines(train, test.drop(columns='x'), schema)
    with pytest.raises(Exception, match='no row with a target'):
        fit_baselines(train.assign(target=None), test, schema)

def test_baselines_high_cardinality_category():
    "More than 255 categories: ordinal codes as a number for the booster, one-hot with rare levels pooled for the linear model."
    rng = np.random.default_rng(11)
    def frame(n):
        code = rng.integers(0, 600, n)
        return pd.DataFrame({'zip': code.astype(str), 'target': 5.0 * (code % 2) + rng.normal(scale=0.1, size=n)})
    schema = Schema({'zip': Column('categorical')}, 'target', 'regression')
    b = fit_baselines(frame(3000), frame(500), schema)
    assert all('error' not in m for m in b.values()), b
    assert b['linear']['rmse'] < b['trivial']['rmse']

# --- multiclass and regression plots -------------------------------------------------------------------------------

def test_save_plots_multiclass_and_regression(tmp_path):
    classes = ['c0', 'c1', 'c2', 'c3', 'c4']
    y, p = _multiclass_case(12, 300, 5)
    labels = np.array(classes)[y]
    sens = {'sex': np.where(np.arange(300) % 3, 'F', 'M')}
    ev = evaluate_predictions(labels, p, sens, task='multiclass', classes=classes)
    base = {'trivial': dict(accuracy=0.2, balanced_accuracy=0.2, f1_macro=0.07), 'linear': {'error': 'ValueError: x'}}
    paths = save_plots(tmp_path/'mc', labels, p, ev['fairness'], labels=classes, task='multiclass', baselines=base, model_metrics=ev)
    assert [q.name for q in paths] == ['confusion.png', 'calibration.png', 'fairness.png', 'baselines.png']
    assert all(q.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and q.stat().st_size > 1000 for q in paths)
    yr = np.linspace(0, 10, 100); pr = yr + np.sin(yr)
    paths = save_plots(tmp_path/'reg', yr, pr, {}, task='regression', baselines={'trivial': dict(rmse=3.0, mae=2.5)})
    assert [q.name for q in paths] == ['regression.png', 'baselines.png']
    yb, s = _binary_case(13, 200, 0.4)
    paths = save_plots(tmp_path/'bin', yb, s, {}, baselines={'trivial': dict(roc_auc=0.5, accuracy=0.6, f1=0.0)})
    assert [q.name for q in paths] == ['roc.png', 'calibration.png', 'confusion.png', 'baselines.png']
    with pytest.raises(ValueError, match='labels=the classes'): save_plots(tmp_path, labels, p, {}, task='multiclass')

def test_multiclass_plot_parts():
    fig = plot_confusion(list('abcc'), list('abac'), labels=['a', 'b', 'c'])
    assert [t.get_text() for t in fig.axes[0].texts] == ['1', '0', '0', '0', '1', '0', '1', '0', '1']
    fig = plot_groups(fairness_metrics(YM, PM, {'sex': SXM, 'grp': list('xyxyxyxy')}, classes=['a', 'b', 'c']))
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 2 * 4
    fig = plot_baselines(dict(rmse=1.0, mae=0.5), {'trivial': dict(rmse=3.0, mae=2.0)}, ['rmse', 'mae'])
    assert len(fig.axes[0].patches) == 4

# --- intervals and small groups (issue 13) -------------------------------------------------------------------------

GAP_KEYS = ('demographic_parity_difference', 'demographic_parity_ratio', 'equalized_odds_difference')

def _two_groups(seed=30, n=2000, sel=(0.5, 0.3)):
    "Two groups of n/2 rows with selection rates about `sel`; labels independent of the group."
    rng = np.random.default_rng(seed)
    g = np.where(np.arange(n) % 2, 'F', 'M')
    y = (rng.uniform(size=n) < 0.3).astype(int)
    p = (rng.uniform(size=n) < np.where(g == 'F', sel[1], sel[0])).astype(int)
    return y, p, g

def test_small_group_marked_and_left_out_of_gaps():
    "A planted tiny group with an extreme rate is shown and marked, and changes no gap."
    y, p, g = _two_groups()
    base = fairness_metrics(y, p, {'a': g}, min_group_size=50)['a']
    y2, p2, g2 = np.r_[y, [0, 0, 1, 0, 0]], np.r_[p, [1, 1, 1, 1, 1]], np.r_[g, ['tiny'] * 5]
    every = fairness_metrics(y2, p2, {'a': g2})['a']
    f = fairness_metrics(y2, p2, {'a': g2}, min_group_size=50)['a']
    assert f['small_groups'] == ['tiny'] and every['small_groups'] == []
    assert f['groups']['tiny']['small'] is True and f['groups']['tiny']['count'] == 5
    assert f['groups']['F']['small'] is False and f['groups']['tiny']['selection_rate'] == 1.0
    for k in GAP_KEYS:
        assert f[k] == base[k] and f[f'{k}_ci'] == base[f'{k}_ci'], k
    assert every['demographic_parity_difference'] > 0.45 > f['demographic_parity_difference']
    assert every['equalized_odds_difference'] > f['equalized_odds_difference']

def test_all_small_or_one_large_group_gives_no_gap():
    y, p, g = _two_groups()
    for size in (10_000, 1001):      # no group large enough; one group only (1000 rows each: both small at 1001)
        f = fairness_metrics(y, p, {'a': g}, min_group_size=size)['a']
        assert all(f[k] is None and f[f'{k}_ci'] is None for k in GAP_KEYS)
        assert f['small_groups'] == ['F', 'M'] and f['groups']['F']['selection_rate'] is not None
    g3 = np.where(np.arange(len(g)) < 30, 'tiny', 'big')      # one large group, one small
    f = fairness_metrics(y, p, {'a': g3}, min_group_size=50)['a']
    assert all(f[k] is None and f[f'{k}_ci'] is None for k in GAP_KEYS) and f['small_groups'] == ['tiny']
    mc = fairness_metrics(np.array(['u', 'v'])[y], np.array(['u', 'v'])[p], {'a': g}, classes=['u', 'v'], min_group_size=10_000)['a']
    assert all(mc[k] is None for k in GAP_KEYS)
    json.dumps(f); json.dumps(mc)

def test_fairness_intervals_from_stats():
    "Demographic parity: gap_interval / ratio_interval of the selection counts; equalized odds: TPR and FPR together (tests=2)."
    y, p, g = _two_groups(31, 1000, (0.4, 0.35))
    f = fairness_metrics(y, p, {'a': g}, level=0.9)['a']
    kn = lambda mask: [(int(p[(g == k) & mask].sum()), int(((g == k) & mask).sum())) for k in ('F', 'M')]
    every = np.ones(len(y), bool)
    assert f['demographic_parity_difference_ci'] == gap_interval(kn(every), 0.9)['ci']
    assert f['demographic_parity_ratio_ci'] == ratio_interval(kn(every), 0.9)['ci']
    tpr, fpr = gap_interval(kn(y == 1), 0.9, tests=2)['ci'], gap_interval(kn(y == 0), 0.9, tests=2)['ci']
    assert f['equalized_odds_difference_ci'] == [max(tpr[0], fpr[0]), max(tpr[1], fpr[1])]
    for k in GAP_KEYS: assert f[f'{k}_ci'][0] <= f[k] <= f[f'{k}_ci'][1], k

def test_planted_gap_is_caught_and_no_gap_is_not():
    "Groups of 1,000 with selection rates 0.5 and 0.3: the interval of the gap lies above 0.1; equal rates: it holds 0."
    y, p, g = _two_groups(32, 2000, (0.5, 0.3))
    f = fairness_metrics(y, p, {'a': g}, min_group_size=50)['a']
    assert 0.15 < f['demographic_parity_difference'] < 0.25 and f['demographic_parity_difference_ci'][0] > 0.1
    y, p, g = _two_groups(33, 2000, (0.4, 0.4))
    assert fairness_metrics(y, p, {'a': g})['a']['demographic_parity_difference_ci'][0] == 0.0

def test_multiclass_fairness_intervals_simultaneous_over_classes():
    rng = np.random.default_rng(34)
    classes = ['p', 'q', 'r']
    y, p, g = rng.choice(classes, 900), rng.choice(classes, 900), rng.choice(['g1', 'g2'], 900)
    f = fairness_metrics(y, p, {'a': g}, classes=classes)['a']
    sel = [gap_interval([(int((p[g == k] == c).sum()), int((g == k).sum())) for k in ('g1', 'g2')], tests=3)['ci'] for c in classes]
    assert f['demographic_parity_difference_ci'] == [max(s[0] for s in sel), max(s[1] for s in sel)]
    assert f['groups']['g1']['selection_rate_ci']['q'] == wilson(int((p[g == 'g1'] == 'q').sum()), int((g == 'g1').sum()))
    for k in GAP_KEYS: assert f[f'{k}_ci'][0] <= f[k] <= f[f'{k}_ci'][1], k

def _check_intervals(ev, task):
    for k in report_metrics(task):
        lo, hi = ev[f'{k}_ci']
        assert lo <= ev[k] <= hi, (k, ev[k], ev[f'{k}_ci'])
        assert hi - lo < 0.2, (k, ev[f'{k}_ci'])

def test_evaluate_intervals_contain_estimates_and_use_known_methods():
    y, s = _binary_case(35, 3000, 0.3)
    ev = evaluate_predictions(y, s, threshold=0.5, resamples=300)
    _check_intervals(ev, 'binary')
    p = (s >= 0.5).astype(int)
    tp, fp = int(((p == 1) & (y == 1)).sum()), int(((p == 1) & (y == 0)).sum())
    assert ev['accuracy_ci'] == wilson(int((p == y).sum()), 3000)
    assert ev['precision_ci'] == wilson(tp, tp + fp) and ev['recall_ci'] == wilson(tp, int(y.sum()))
    assert ev['fpr_ci'] == wilson(fp, int((y == 0).sum())) and ev['roc_auc_ci'] == auc_ci(y, s)
    yc, pc = _multiclass_case(36, 3000, 5)
    classes = [f'c{i}' for i in range(5)]
    em = evaluate_predictions(np.array(classes)[yc], pc, task='multiclass', classes=classes, resamples=300)
    _check_intervals(em, 'multiclass')
    assert em['accuracy_ci'] == wilson(int((pc.argmax(1) == yc).sum()), 3000)
    rng = np.random.default_rng(37); yr = rng.normal(10, 2, 3000)
    er = evaluate_predictions(yr, yr + rng.normal(0, 0.5, 3000), task='regression', resamples=300)
    _check_intervals(er, 'regression')
    assert json.loads(json.dumps(ev)) == ev and json.loads(json.dumps(em)) == em

def test_bootstrap_intervals_deterministic_for_a_seed():
    y, s = _binary_case(38, 1000, 0.3)
    a, b = (evaluate_predictions(y, s, resamples=200, seed=5) for _ in range(2))
    c = evaluate_predictions(y, s, resamples=200, seed=6)
    assert a == b
    assert a['f1_ci'] != c['f1_ci'] and a['accuracy_ci'] == c['accuracy_ci']     # Wilson does not depend on the seed
    none = evaluate_predictions(y, s, resamples=0)
    assert none['f1_ci'] is None and none['roc_auc_ci'] == a['roc_auc_ci']

def test_evaluate_passes_min_group_size_and_level():
    y, s = _binary_case(39, 1000, 0.3)
    sens = {'g': np.where(np.arange(1000) < 10, 'tiny', np.where(np.arange(1000) % 2, 'F', 'M'))}
    ev = evaluate_predictions(y, s, sens, level=0.8, min_group_size=50, resamples=50)
    p = (s >= 0.5).astype(int)
    assert ev['fairness'] == fairness_metrics(y, p, sens, min_group_size=50, level=0.8)
    assert ev['fairness']['g']['small_groups'] == ['tiny']
    assert ev['accuracy_ci'] == wilson(int((p == y).sum()), 1000, 0.8)

def test_plot_groups_error_bars_counts_and_small_groups():
    from matplotlib.container import ErrorbarContainer
    y, p, g = _two_groups()
    g = np.where(np.arange(len(g)) < 12, 'tiny', g)
    f = fairness_metrics(y, p, {'a': g, 'b': np.where(np.arange(len(g)) % 3, 'u', 'v')}, min_group_size=50)
    fig = plot_groups(f)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 3 and all(c.has_yerr for c in bars)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    n = {k: m['count'] for k, m in f['a']['groups'].items()}
    assert labels == [f"F\nn={n['F']:,}", f"M\nn={n['M']:,}", "tiny\nn=12 (small)"]
    assert ax.get_xticklabels()[2].get_color() == 'grey'
    assert [b.get_hatch() for b in ax.patches[:3]] == [None, None, '///']
    assert '[' in ax.get_title()            # the gap with its interval
    sel_only = {'a': dict(f['a'], groups={k: {kk: m[kk] for kk in ('count', 'small', 'selection_rate', 'selection_rate_ci')}
                                          for k, m in f['a']['groups'].items()})}
    assert sum(isinstance(c, ErrorbarContainer) for c in plot_groups(sel_only).axes[0].containers) == 1   # monitoring's groups
    none = fairness_metrics(y, p, {'a': g}, min_group_size=10_000)
    assert 'n/a' in plot_groups(none).axes[0].get_title()
