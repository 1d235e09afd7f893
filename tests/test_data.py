"Loader dtypes and every validation rule, each shown with a bad file through the real CLI."
import json, sys
from pathlib import Path
import pandas as pd
import pytest
from conftest import run_mlkit
import numpy as np
from mlkit.data import (ADULT_TARGET, ADULT_SENSITIVE, load_adult, read_table, infer_schema, infer_task, discover, validate,
                        validate_file, data_hash, Schema, load_dataset, load_for_run, holdout_split, summarize, class_label,
                        apply_schema, stratified_mask, load_recorded, ValidationReport, TASKS, Column)
from mlkit.config import DataError, UsageError, load_settings

@pytest.fixture(scope='module')
def adult():
    return load_adult()

@pytest.fixture(scope='module')
def schema_file(adult, tmp_path_factory):
    return infer_schema(adult[0], ADULT_TARGET, ['sex', 'race']).save(tmp_path_factory.mktemp('s')/'schema.json')

def test_adult_dtypes(adult):
    train, test = adult
    assert (len(train), len(test)) == (32561, 16281)
    nums = ['age', 'fnlwgt', 'education_num', 'capital_gain', 'capital_loss', 'hours_per_week']
    for df in adult:
        assert [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])] == nums
        assert set(df[ADULT_TARGET]) == {'<=50K', '>50K'}
        for c in df.columns.difference(nums):
            vals = df[c].dropna()
            assert (vals == vals.str.strip()).all(), c
            assert '?' not in set(vals), c
    assert train.occupation.isna().sum() == 1843 and test.occupation.isna().sum() == 966

def _validate(tmp_path, df, *extra, schema=None, name='d.csv'):
    p = tmp_path/name
    df.to_csv(p, index=False) if name.endswith('.csv') else df.to_parquet(p)
    args = ['data', 'validate', '--data', p, '--target', ADULT_TARGET, '--json', *extra]
    if schema: args += ['--schema', schema]
    r = run_mlkit(*args)
    return r, (json.loads(r.stdout) if r.stdout.startswith('{') else None)

def _rules(rep, severity='error'):
    return sorted({p['rule'] for p in rep['problems'] if p['severity'] == severity})

def test_valid_file_exit_0(tmp_path, adult, schema_file):
    r, rep = _validate(tmp_path, adult[1].head(2000), schema=schema_file)
    assert r.returncode == 0 and rep['valid'], r.stdout

@pytest.mark.parametrize('rule,mutate', [
    ('missing_column', lambda d: d.drop(columns=['age'])),
    ('extra_column', lambda d: d.assign(extra=range(len(d)))),
    ('wrong_type', lambda d: d.assign(age=['x' if i % 10 == 0 else v for i, v in enumerate(d.age)])),
    ('out_of_range', lambda d: d.assign(age=d.age + 100)),
    ('completeness', lambda d: d.assign(occupation=[None if i % 3 == 0 else v for i, v in enumerate(d.occupation)])),
    ('duplicate_rows', lambda d: pd.concat([d, d.head(100)])),
    ('constant_column', lambda d: d.assign(workclass='Private')),
    ('target_leak', lambda d: d.assign(relationship=d[ADULT_TARGET])),
    ('target_leak', lambda d: d.assign(capital_gain=(d[ADULT_TARGET] == '>50K') * 10000 + d.index % 7)),
    ('target_missing_values', lambda d: d.assign(**{ADULT_TARGET: [None if i == 3 else v for i, v in enumerate(d[ADULT_TARGET])]})),
    ('target_absent', lambda d: d.drop(columns=[ADULT_TARGET])),
    ('target_classes', lambda d: d.assign(**{ADULT_TARGET: d[ADULT_TARGET] + '.'})),
])
def test_each_rule_fails_with_exit_3(tmp_path, adult, schema_file, rule, mutate):
    bad = mutate(adult[1].head(2000).copy())
    r, rep = _validate(tmp_path, bad, schema=schema_file)
    assert r.returncode == 3, r.stdout + r.stderr
    assert rule in _rules(rep), rep['problems']
    assert rep['valid'] is False

def test_one_class_against_schema_is_a_warning(tmp_path, adult, schema_file):
    "A contract file may hold one class (an evaluation file, a retrain batch): valid, with a warning; discovery refuses it."
    one = adult[1].head(2000).assign(**{ADULT_TARGET: '<=50K'})
    r, rep = _validate(tmp_path, one, schema=schema_file)
    assert r.returncode == 0 and rep['valid'] and 'target_one_class' in _rules(rep, 'warning'), r.stdout + r.stderr
    r, rep = _validate(tmp_path, one)
    assert r.returncode == 3 and 'target_one_class' in _rules(rep)

def test_rules_without_schema(tmp_path, adult):
    "Discovery: a leak is an error; a constant column is only dropped, with a warning saying so."
    r, rep = _validate(tmp_path, adult[1].head(500).assign(k=1, leak=lambda d: d[ADULT_TARGET]), name='d.parquet')
    assert r.returncode == 3
    assert _rules(rep) == ['target_leak'] and 'dropped_column' in _rules(rep, 'warning')
    assert rep['dropped'] == {'k': 'constant'} and rep['task'] == 'binary'

def test_every_problem_named_in_table(tmp_path, adult, schema_file):
    bad = adult[1].head(500).drop(columns=['age']).assign(workclass='Private', extra=1)
    p = tmp_path/'bad.csv'; bad.to_csv(p, index=False)
    r = run_mlkit('data', 'validate', '--data', p, '--target', ADULT_TARGET, '--schema', schema_file)
    assert r.returncode == 3
    for word in ['INVALID', 'missing_column', 'age', 'extra_column', 'extra', 'constant_column', 'workclass']:
        assert word in r.stdout

def test_warnings_do_not_fail(tmp_path, adult, schema_file):
    d = adult[1].head(2000).copy()
    d.loc[d.index[0], 'native_country'] = 'Atlantis'
    r, rep = _validate(tmp_path, pd.concat([d, d.head(5)]), schema=schema_file)
    assert r.returncode == 0
    assert _rules(rep, 'warning') == ['duplicate_rows', 'unseen_category']

def test_empty_file_with_header(tmp_path, adult):
    p = tmp_path/'h.csv'; p.write_text(','.join(adult[0].columns) + '\n')
    r = run_mlkit('data', 'validate', '--data', p, '--target', ADULT_TARGET, '--json')
    assert r.returncode == 3 and _rules(json.loads(r.stdout)) == ['empty']

@pytest.mark.parametrize('content,msg', [
    (None, 'data file not found'),
    (b'', 'data file is empty (0 bytes)'),
    (b'a,b,y\n1,2,x\n1,2,3,4\n', 'not well-formed CSV'),
    ('a,y\ncaf\xe9,x\n'.encode('latin-1'), 'not valid utf-8'),
    (b'\x00\x01\x02garbage', 'not CSV text'),
])
def test_malformed_file_one_line_error(tmp_path, content, msg):
    p = tmp_path/'f.csv'
    if content is not None: p.write_bytes(content)
    r = run_mlkit('data', 'validate', '--data', p, '--target', 'y')
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr
    assert msg in r.stderr and str(p.name) in r.stderr

def test_corrupt_parquet(tmp_path):
    p = tmp_path/'f.parquet'; p.write_bytes(b'PAR1 not really')
    with pytest.raises(DataError, match='cannot read'): read_table(p)

def test_schema_roundtrip_cli(tmp_path, adult):
    p = tmp_path/'d.csv'; adult[1].head(300).to_csv(p, index=False)
    out = tmp_path/'s.json'
    r = run_mlkit('data', 'schema', '--data', p, '--target', ADULT_TARGET, '--sensitive', 'sex', '--out', out)
    assert r.returncode == 0, r.stderr
    s = Schema.load(out)
    assert s.sensitive == ['sex'] and s.positive_class == '>50K' and s.columns['age'].kind == 'numeric'
    df, s2 = load_dataset(p, ADULT_TARGET, schema=out)
    assert s2 == s

def test_data_hash_row_order_independent(adult):
    d = adult[1].head(1000)
    assert data_hash(d) == data_hash(d.iloc[::-1]) == data_hash(d[d.columns[::-1]])
    assert data_hash(d) != data_hash(d.head(999))
    assert data_hash(d.assign(age=d.age.astype(float))) != data_hash(d)


# --- issue 11: any user table runs; only unusable data is an error ---

S = lambda *v: pd.Series(list(v), name='y')

@pytest.mark.parametrize('y,task,reason', [
    (S('a', 'b', 'a'), 'binary', 'string target with 2 classes'),
    (S('a', 'b', 'c'), 'multiclass', 'string target with 3 classes'),
    (S(True, False, True), 'binary', 'boolean target with 2 classes'),
    (S(0, 1, 1, 0), 'binary', 'numeric target with 2 distinct values: binary classification'),
    (S(0, 1, 2, 2), 'multiclass', 'numeric target with 3 distinct integer values (<= 20): classification'),
    (pd.Series(list(range(31)) * 2, name='y'), 'regression', 'numeric target with 31 distinct values: regression'),
    (pd.Series(np.linspace(0, 1, 50), name='y'), 'regression', 'numeric target with 50 distinct values: regression'),
    (S(1.0, 2.0, 3.0, None), 'multiclass', 'numeric target with 3 distinct integer values (<= 20): classification'),
])
def test_infer_task_table(y, task, reason):
    assert infer_task(y) == (task, reason)

def test_task_override_is_checked():
    assert infer_task(S(0, 1, 2), 'regression') == ('regression', '--task regression')
    assert infer_task(pd.Series(range(40), name='y'), 'multiclass')[0] == 'multiclass'
    with pytest.raises(UsageError, match=r"3 classes \('a', 'b', 'c'\)"): infer_task(S('a', 'b', 'c'), 'binary')
    with pytest.raises(UsageError, match='has 2 classes.*use --task binary'): infer_task(S('x', 'y'), 'multiclass')
    with pytest.raises(DataError, match='needs a numeric target'): infer_task(S('a', 'b'), 'regression')
    with pytest.raises(UsageError, match='unknown task'): infer_task(S(1, 2), 'ranking')

def test_class_labels():
    assert [class_label(v) for v in [2.0, np.int64(2), True, ' a ', None, np.nan]] == ['2', '2', 'True', 'a', None, None]
    s = infer_schema(pd.DataFrame({'x': range(40), 'y': [10.0, 2.0, 1.0, 2.0] * 10}), 'y')
    assert (s.task, s.classes, s.positive_class) == ('multiclass', ['1', '2', '10'], None)
    s = infer_schema(pd.DataFrame({'x': range(40), 'y': [True, False, False, False] * 10}), 'y')
    assert (s.task, s.classes, s.positive_class) == ('binary', ['False', 'True'], 'True')

def _roles_frame(n=150, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        'row': np.arange(n), 'user_id': rng.permutation(n) + 5000, 'token': [f"T{i:06d}" for i in rng.permutation(n)],
        'income': rng.integers(10_000, 200_000, n), 'height': rng.normal(170, 10, n), 'const': 7, 'blank': None,
        'comment': [f"customer wrote {w} on visit {i}" for i, w in enumerate(rng.choice(['yes', 'no', 'maybe'], n))],
        'signup': pd.date_range('2022-03-01', periods=n, freq='D').strftime('%d/%m/%Y'),
        'mostly_dates': [f"2023-01-{1 + i % 28:02d}" if i % 4 else 'pending' for i in range(n)],
        'ts': pd.date_range('2024-01-01', periods=n, freq='h'), 'member': rng.choice([True, False], n),
        'flag': ['Y' if i % 2 else None for i in range(n)], 'grade': rng.choice(['a', 'b', 'c'], n),
        'y': rng.choice(['p', 'q', 'r'], n)})

def test_column_roles():
    s = infer_schema(_roles_frame(), 'y')
    assert s.dropped == {'row': 'id-like', 'user_id': 'id-like', 'token': 'id-like', 'const': 'constant', 'blank': 'all missing',
                         'comment': 'free text', 'mostly_dates': 'unparsed dates'}
    assert s.numeric() == ['income', 'height']
    assert s.datetime() == ['signup', 'ts'] and s.columns['signup'].min == '2022-03-01T00:00:00'
    assert s.categorical() == ['member', 'flag', 'grade'] and s.columns['member'].categories == ['False', 'True']
    # tiny tables keep their columns: 40 unique codes are too few to call an ID
    assert infer_schema(_roles_frame(40), 'y').dropped.get('token') is None
    # sensitive columns are never dropped as ID or text
    s = infer_schema(_roles_frame(), 'y', sensitive=['token', 'comment'])
    assert 'token' in s.columns and 'comment' in s.columns and s.sensitive == ['token', 'comment']

def test_numbers_are_never_dates_and_unique_measurements_stay():
    rng = np.random.default_rng(1)
    d = pd.DataFrame({'yyyymmdd': rng.integers(20000101, 20241231, 200).astype(str), 'amount': rng.integers(1, 10**6, 200),
                      'score': rng.normal(size=200), 'y': rng.choice(['a', 'b'], 200)})
    s = infer_schema(d, 'y')
    assert s.columns['amount'].kind == 'numeric' and s.columns['score'].kind == 'numeric'
    assert 'yyyymmdd' not in s.datetime()

def test_drop_and_id_columns():
    d = _roles_frame()
    s = infer_schema(d, 'y', drop=['grade'], id_columns=['row'])
    assert s.id_columns == ['row'] and 'row' not in s.columns and 'row' not in s.dropped
    assert s.dropped['grade'] == 'dropped by --drop' and 'grade' not in s.columns
    with pytest.raises(DataError, match='--drop column.*nope'): infer_schema(d, 'y', drop=['nope'])
    with pytest.raises(DataError, match='--id column.*missing_col'): infer_schema(d, 'y', id_columns=['missing_col'])
    with pytest.raises(UsageError, match='target'): infer_schema(d, 'y', drop=['y'])

def _messy(seed=0, n=200):
    "Three classes, 20% missing in a feature, a row without a target, then 13% duplicate rows."
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({'x': rng.normal(size=n), 'c': rng.choice(['u', 'v', 'w'], n), 'z': rng.integers(0, 10**6, n),
                      'y': rng.choice(['low', 'mid', 'high'], n)})
    d.loc[d.index % 5 == 0, 'x'] = np.nan
    d.loc[7, 'y'] = None
    return pd.concat([d, d.sample(30, random_state=seed)], ignore_index=True)

def test_messy_multiclass_table_is_valid_with_warnings():
    d = _messy()
    assert 0.12 < d.duplicated().mean() < 0.14 and d.x.isna().mean() > 0.19
    sch, rep = discover(d, 'y')
    assert rep.ok and sch.task == 'multiclass' and sch.classes == ['high', 'low', 'mid']
    w = {p.rule: p.message for p in rep.warnings}
    assert set(w) == {'completeness', 'duplicate_rows', 'target_missing_values'}
    assert 'imputes them and adds a missing flag' in w['completeness'] and 'kept' in w['duplicate_rows']
    assert 'dropped from training' in w['target_missing_values']
    _, strict = discover(d, 'y', strict=True)
    assert not strict.ok and {p.severity for p in strict.problems} == {'error'} and len(strict.errors) == 3
    # the contract stays strict about the same things
    assert {'completeness', 'duplicate_rows', 'target_missing_values'} <= {p.rule for p in validate(d, 'y', Schema.from_dict(
        {**sch.to_dict(), 'columns': {**sch.to_dict()['columns'], 'x': {**sch.to_dict()['columns']['x'], 'missing_share': 0.0}}})).errors}

def test_discovery_reports_dropped_columns(tmp_path):
    p = tmp_path/'roles.csv'; _roles_frame().to_csv(p, index=False)
    r = run_mlkit('data', 'validate', '--data', p, '--target', 'y', '--json')
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep['dropped']['token'] == 'id-like' and rep['dropped']['comment'] == 'free text' and rep['task'] == 'multiclass'
    dropped = {p['column']: p['message'] for p in rep['problems'] if p['rule'] == 'dropped_column'}
    assert set(dropped) == set(rep['dropped']) and all('dropped from the inputs' in m for m in dropped.values())
    assert {p['column'] for p in rep['problems'] if p['rule'] == 'date_column'} == {'signup', 'ts'}

def test_rare_class_is_an_error(tmp_path):
    d = _messy().dropna(subset=['y'])
    d = pd.concat([d, d.head(2).assign(y='rare')], ignore_index=True)
    _, rep = discover(d, 'y')
    assert [(p.rule, p.value) for p in rep.errors] == [('target_rare_class', 2)]
    assert "class 'rare' has only 2 rows" in rep.errors[0].message and 'cannot be split' in rep.errors[0].message
    p = tmp_path/'rare.csv'; d.to_csv(p, index=False)
    with pytest.raises(DataError, match="class 'rare' has only 2 rows"): load_for_run(p, 'y')

@pytest.mark.parametrize('mutate,rule', [
    (lambda d: d.head(0), 'empty'), (lambda d: d.drop(columns='y'), 'target_absent'),
    (lambda d: d.assign(y=None), 'target_missing_values'), (lambda d: d.assign(y='low'), 'target_one_class'),
    (lambda d: d.assign(copy=d.y), 'target_leak')])
def test_unusable_data_errors(mutate, rule):
    _, rep = discover(mutate(_messy().dropna(subset=['y'])), 'y')
    assert [p.rule for p in rep.errors] == [rule]

def test_contract_multiclass(tmp_path):
    d = _roles_frame().assign(extra_id=range(150))
    sch, rep = discover(d, 'y', id_columns=['extra_id'])
    assert rep.ok
    assert validate(d, 'y', sch).ok                          # ID and dropped columns are allowed extras
    bad = d.copy(); bad.loc[:2, 'y'] = 's'; bad.loc[:4, 'signup'] = 'tomorrow'
    errs = {p.rule: p for p in validate(bad, 'y', sch).errors}
    assert set(errs) == {'target_classes', 'wrong_type'} and errs['wrong_type'].column == 'signup'
    assert "'s'" in errs['target_classes'].message
    f = sch.save(tmp_path/'s.json')
    assert Schema.load(f) == sch
    assert validate_file(_write(tmp_path, bad), 'y', f).ok is False

def _write(tmp_path, d, name='d.csv'):
    p = tmp_path/name; d.to_csv(p, index=False); return p

def test_old_schema_json_still_loads(tmp_path, schema_file):
    d = json.loads(Path(schema_file).read_text())
    for k in ('id_columns', 'dropped', 'task_reason'): d.pop(k)
    p = tmp_path/'old.json'; p.write_text(json.dumps(d))
    s = Schema.load(p)
    assert (s.id_columns, s.dropped, s.task_reason, s.task, s.positive_class) == ([], {}, '', 'binary', '>50K')
    assert s.columns == Schema.load(schema_file).columns

def test_adult_schema_unchanged(adult):
    train, test, s = load_for_run()
    assert (len(train), len(test)) == (32561, 16281)
    assert (s.task, s.classes, s.positive_class, s.sensitive) == ('binary', ['<=50K', '>50K'], '>50K', ADULT_SENSITIVE)
    assert s.dropped == {} and s.id_columns == []
    assert s.numeric() == ['age', 'fnlwgt', 'education_num', 'capital_gain', 'capital_loss', 'hours_per_week']
    assert s.categorical() == ['workclass', 'education', 'marital_status', 'occupation', 'relationship', 'race', 'sex',
                               'native_country']
    assert s.datetime() == [] and s.columns['fnlwgt'].kind == 'numeric'

def test_load_for_run_user_file(tmp_path):
    d = _messy(3, 400).dropna(subset=['y'])
    d = pd.concat([d, d.head(5).assign(y='tiny')], ignore_index=True)
    d['ref'] = range(len(d))
    p = _write(tmp_path, d)
    tr, te, s, rep = load_for_run(p, 'y', id_columns=['ref'], report=True, seed=3)
    assert rep.ok and s.classes == ['high', 'low', 'mid', 'tiny'] and s.id_columns == ['ref']
    assert set(te.y) == set(s.classes) and set(tr.y) == set(s.classes)
    assert len(tr) + len(te) == len(d) and not set(tr.ref) & set(te.ref)
    assert s.columns['x'].missing_share == pytest.approx(tr.x.isna().mean())   # ranges from the training part
    with pytest.raises(UsageError, match='use --task multiclass'): load_for_run(p, 'y', task='binary')
    with pytest.raises(DataError, match=r'd\.csv is invalid: '): load_for_run(p, 'y', strict=True)
    assert summarize(te, 'y')['class_balance'].keys() == {'high', 'low', 'mid', 'tiny'}

def test_holdout_split_every_class():
    d = pd.DataFrame({'y': ['a'] * 50 + ['b'] * 3 + ['c'] * 2 + ['d'] + [None] * 4, 'x': range(60)})
    tr, te = holdout_split(d, 'y', 0.2)
    assert sorted(te.y.unique()) == ['a', 'b', 'c'] and set(tr.y.dropna()) == {'a', 'b', 'c', 'd'}
    assert te.y.notna().all() and tr.y.isna().sum() == 4


def _dated_table(n=240, seed=0):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({'x': rng.normal(size=n), 'c': rng.choice(['u', 'v'], n),
                      'day': (pd.Timestamp('2023-01-01') + pd.to_timedelta(rng.integers(0, 400, n), unit='D')).strftime('%Y-%m-%d'),
                      'y': rng.choice(['a', 'b', 'c'], n)})
    return d.drop_duplicates().reset_index(drop=True)

def test_separate_test_file_is_validated(tmp_path):
    d = _dated_table()
    p = _write(tmp_path, d)
    drift = _write(tmp_path, d.head(50).assign(x=lambda f: f.x * 50), 'drift.csv')
    tr, te, s, rep = load_for_run(p, 'y', test_data=drift, report=True)
    assert len(tr) == len(d) and len(te) == 50 and rep.ok
    assert [w.rule for w in rep.warnings if w.message.startswith('test data:')] == ['out_of_range']
    bad = d.head(50).drop(columns=['c']).copy()
    bad.loc[bad.index[:2], 'y'] = 'zz'
    bad.loc[bad.index[:3], 'day'] = 'soon'
    bad['x'] = bad.x.astype(object); bad.loc[bad.index[:3], 'x'] = 'many'
    with pytest.raises(DataError) as e: load_for_run(p, 'y', test_data=_write(tmp_path, bad, 'bad.csv'))
    msg = str(e.value)
    assert msg.startswith(f"test data {tmp_path/'bad.csv'} is invalid: ")
    for part in ('missing_column c:', 'wrong_type day:', 'wrong_type x:', "target_classes y:", "'zz'"): assert part in msg, part
    assert 'out_of_range' not in msg

def test_validate_ranges_keyword(adult, schema_file):
    s = Schema.load(schema_file)
    d = adult[1].head(300).assign(age=lambda f: f.age + 200)
    assert [p.rule for p in validate(d, ADULT_TARGET, s).errors] == ['out_of_range']
    r = validate(d, ADULT_TARGET, s, ranges='warning')
    assert r.ok and 'out_of_range' in [p.rule for p in r.warnings]
    with pytest.raises(UsageError, match='ranges'): validate(d, ADULT_TARGET, s, ranges='drift')

def test_one_class_is_an_error_only_in_discovery(adult, schema_file):
    one = adult[0][adult[0][ADULT_TARGET] == '>50K'].head(200)
    assert [p.rule for p in validate(one, ADULT_TARGET).errors] == ['target_one_class']
    r = validate(one, ADULT_TARGET, Schema.load(schema_file))
    assert r.ok and [p.rule for p in r.warnings if p.column == ADULT_TARGET] == ['target_one_class']
    assert "'>50K'" in [p for p in r.warnings if p.rule == 'target_one_class'][0].message

def test_each_date_column_parsed_once(tmp_path, monkeypatch):
    import mlkit.data as md
    calls, orig = [], md._date_lookup
    monkeypatch.setattr(md, '_date_lookup', lambda *a, **k: calls.append(1) or orig(*a, **k))
    d = _dated_table()
    p = _write(tmp_path, d)
    tr, te, s = load_for_run(p, 'y')
    assert s.columns['day'].kind == 'datetime' and len(calls) == 1
    assert s.columns['day'].min == pd.to_datetime(tr.day).min().isoformat()      # the range of the training part
    calls.clear(); s.save(tmp_path/'s.json')
    load_for_run(p, 'y', schema=tmp_path/'s.json', test_data=_write(tmp_path, d.head(40), 't.csv'))
    assert len(calls) == 2                                                         # the data file once, the test file once
    calls.clear(); infer_schema(d, 'y')
    assert len(calls) == 1

def test_apply_schema_uses_class_label():
    s = Schema({'k': Column('categorical', categories=['1', '2.5'])}, 'y')
    out = apply_schema(pd.DataFrame({'k': [1.0, 2.5, np.nan, 7], 'y': [0, 1, 0, 1]}), s)
    assert out.k.tolist()[:2] == [class_label(1.0), class_label(2.5)] == ['1', '2.5'] and pd.isna(out.k[2]) and out.k[3] == '7'

def test_stratified_mask_rule_and_many_classes():
    y = pd.Series([f"k{i:02d}" for i in range(25)] * 3 + ['lone', None, None])
    m = stratified_mask(y, 0.2, np.random.default_rng(0))
    picked = y[m]
    assert set(picked) == {f"k{i:02d}" for i in range(25)} and 'lone' not in set(picked) and picked.notna().all()
    assert (y[~m].value_counts() >= 1).all() and m.tolist() == stratified_mask(y, 0.2, np.random.default_rng(0)).tolist()
    d = pd.DataFrame({'y': y, 'x': range(len(y))})
    tr, te = holdout_split(d, 'y', 0.2)                      # 25 classes: stratified (the old rule split it at random)
    assert te.y.nunique() == 25 and tr.y.isna().sum() == 2
    r = pd.DataFrame({'y': np.linspace(0, 1, 50), 'x': range(50)})
    assert holdout_split(r, 'y', 0.2)[1].x.tolist() == holdout_split(r, 'y', 0.2, stratify=False)[1].x.tolist()   # regression: random
    assert len(holdout_split(r, 'y', 0.2)[1]) == 10 and len(holdout_split(r, 'y', 0.2, stratify=True)[0]) == 50   # 50 one-row 'classes': each stays in training

def test_raise_if_invalid_format():
    r = ValidationReport('f.csv', 10, 2, [])
    assert r.raise_if_invalid('f.csv') is r
    r.add('missing_column', 'age', "column 'age' of the schema is missing")
    r.add('duplicate_rows', None, '9 duplicate rows', 0.9)
    r.add('completeness', 'x', 'most missing', 0.5, 'warning')
    with pytest.raises(DataError) as e: r.raise_if_invalid('data f.csv')
    assert str(e.value) == "data f.csv is invalid: missing_column age: column 'age' of the schema is missing; duplicate_rows: 9 duplicate rows"

def test_schema_with_discovery_options_is_refused(tmp_path):
    d = _dated_table()
    p = _write(tmp_path, d)
    infer_schema(d, 'y').save(tmp_path/'s.json')
    with pytest.raises(UsageError, match=r'^--task cannot be combined with --schema: the schema decides'):
        load_for_run(p, 'y', schema=tmp_path/'s.json', task='multiclass')
    with pytest.raises(UsageError, match=r'^--drop, --id, --positive-class cannot be combined with --schema'):
        load_for_run(p, 'y', schema=tmp_path/'s.json', drop=['c'], id_columns=['x'], positive_class='a')
    assert load_for_run(p, 'y', schema=tmp_path/'s.json', drop=[], id_columns=())[2].task == 'multiclass'

def test_load_recorded_replays_the_run(tmp_path):
    d = _dated_table()
    p = _write(tmp_path, d)
    tr, te, s = load_for_run(p, 'y', seed=4, drop=['c'])
    for rec in (dict(data=str(p), target='y', seed=4, data_options=dict(drop=['c'])),
                dict(data=str(p), target='y', params=dict(seed=4), data_options=dict(drop=['c']))):
        tr2, te2, s2 = load_recorded(rec)
        assert data_hash(tr2) == data_hash(tr) and data_hash(te2) == data_hash(te) and s2 == s
    assert data_hash(load_recorded(dict(data=str(p), target='y'))[1]) == data_hash(load_for_run(p, 'y', seed=0)[1])
    s.save(tmp_path/'s.json')
    tr3, te3, s3, rep = load_recorded(dict(data=str(p), target='y', data_options=dict(schema=str(tmp_path/'s.json'))), report=True)
    assert s3.dropped == {'c': 'dropped by --drop'} and rep.ok
    a_tr, a_te, a_s = load_recorded(dict(data='bundled:adult', target=ADULT_TARGET, sensitive=['sex', 'race'], seed=1))
    assert (len(a_tr), len(a_te), a_s.positive_class) == (32561, 16281, '>50K')

def test_tasks_defined_once_in_data():
    assert TASKS == ('binary', 'multiclass', 'regression')
