"Loader dtypes and every validation rule, each shown with a bad file through the real CLI."
import json, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from conftest import mlkit_cmd
from mlkit.data import (ADULT_TARGET, load_adult, read_table, infer_schema, validate, validate_file, data_hash,
                        Schema, load_dataset)
from mlkit.config import DataError

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
    r = subprocess.run(mlkit_cmd(*args), capture_output=True, text=True)
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
    ('target_one_class', lambda d: d.assign(**{ADULT_TARGET: '<=50K'})),
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

def test_rules_without_schema(tmp_path, adult):
    r, rep = _validate(tmp_path, adult[1].head(500).assign(k=1, leak=lambda d: d[ADULT_TARGET]), name='d.parquet')
    assert r.returncode == 3
    assert {'constant_column', 'target_leak'} <= set(_rules(rep))

def test_every_problem_named_in_table(tmp_path, adult, schema_file):
    bad = adult[1].head(500).drop(columns=['age']).assign(workclass='Private', extra=1)
    p = tmp_path/'bad.csv'; bad.to_csv(p, index=False)
    r = subprocess.run(mlkit_cmd('data', 'validate', '--data', p, '--target', ADULT_TARGET, '--schema', schema_file),
                       capture_output=True, text=True)
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
    r = subprocess.run(mlkit_cmd('data', 'validate', '--data', p, '--target', ADULT_TARGET, '--json'), capture_output=True, text=True)
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
    r = subprocess.run(mlkit_cmd('data', 'validate', '--data', p, '--target', 'y'), capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr
    assert msg in r.stderr and str(p.name) in r.stderr

def test_corrupt_parquet(tmp_path):
    p = tmp_path/'f.parquet'; p.write_bytes(b'PAR1 not really')
    with pytest.raises(DataError, match='cannot read'): read_table(p)

def test_schema_roundtrip_cli(tmp_path, adult):
    p = tmp_path/'d.csv'; adult[1].head(300).to_csv(p, index=False)
    out = tmp_path/'s.json'
    r = subprocess.run(mlkit_cmd('data', 'schema', '--data', p, '--target', ADULT_TARGET, '--sensitive', 'sex', '--out', out),
                       capture_output=True, text=True)
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
