"""The records path of date columns (plain ISO 8601 values by `datetime.fromisoformat`, the rest by pandas) gives
exactly the arrays, and the errors, of `FeatureTransform.transform` on the same rows."""
import numpy as np, pandas as pd, pytest
from mlkit.config import DataError
from mlkit.data import Column, Schema
from mlkit.features import FeatureTransform


def _fit(values, dayfirst_train: bool):
    "A transform with one numeric and one date column, fitted on `values` (plus one day-first date when asked)."
    train = list(values) + (['31/01/2023'] if dayfirst_train else [])
    df = pd.DataFrame({'x': np.arange(len(train), dtype=float), 'when': train, 'y': 1.0})
    s = Schema({'x': Column('numeric'), 'when': Column('datetime')}, 'y', task='regression')
    return FeatureTransform.fit(df, s)


NAIVE, AWARE = [0, 1, 2, 3, 7, 8, 9, 10, 11], [0, 4, 5, 6, 7, 10, 11]


def _random_values(rng, n, forms=range(12)):
    "Random date strings in the given `forms`: dates, times, fractions, offsets, Z, padding, missing, day-first."
    base = pd.Timestamp('1990-01-01') + pd.to_timedelta(rng.integers(0, 40 * 365 * 86_400, n), unit='s')
    base = base + pd.to_timedelta(rng.integers(0, 10**6, n), unit='us')
    out = []
    for t, k in zip(base, rng.choice(list(forms), n)):
        off = f"{'+-'[int(rng.integers(0, 2))]}{int(rng.integers(0, 14)):02d}:{int(rng.choice([0, 30, 45])):02d}"
        out.append([t.strftime('%Y-%m-%d'), t.strftime('%Y-%m-%d %H:%M'), t.strftime('%Y-%m-%dT%H:%M:%S'),
                    t.strftime('%Y-%m-%dT%H:%M:%S.%f'), t.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + off,
                    t.strftime('%Y-%m-%dT%H:%M:%SZ'), t.strftime('%Y-%m-%d %H:%M:%S') + off, f"  {t.strftime('%Y-%m-%d')} ",
                    t.strftime('%d/%m/%Y'), t.strftime('%d/%m/%Y %H:%M'), None, ''][int(k)])
    return out


def _frame(ft, recs): return ft.transform(pd.DataFrame.from_records(recs))['x_num']


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('forms', [NAIVE, AWARE])
def test_records_equal_frame_for_random_dates(seed, forms):
    rng = np.random.default_rng(seed)
    vals = _random_values(rng, 300, forms)
    ft = _fit(vals, dayfirst_train=True)
    assert ft.dayfirst == {'when': True} and 'when__hour' in ft.numeric
    recs = [{'x': float(i), 'when': v} for i, v in enumerate(vals)]
    assert np.array_equal(_frame(ft, recs), ft.transform_records(recs)['x_num'])


def test_one_row_at_a_time_equals_frame_for_every_form():
    "A served row, in any form (offsets and naive times alike), gives the frame's arrays for that row."
    rng = np.random.default_rng(3)
    vals = _random_values(rng, 240)
    ft = _fit(vals, dayfirst_train=True)
    recs = [{'x': float(i), 'when': v} for i, v in enumerate(vals)]
    single = np.concatenate([_frame(ft, [r]) for r in recs])
    assert np.array_equal(single, np.concatenate([ft.transform_records([r])['x_num'] for r in recs]))
    # a batch mixing offsets and naive times gives the frame's arrays (pandas reads such a batch its own way)
    assert np.array_equal(_frame(ft, recs), ft.transform_records(recs)["x_num"])


EDGES = ['2023-01-31T10:00:05.123456789', '2023-01-31T10:00:00.1234567', '2023-01-31T10:00+01', '2023-01-31T10:00:00+0530',
         '20230131T1000', '2023-01-31T10', '1677-09-22', '1678-01-01T00:30+01:00', '2261-12-31T23:30-01:00', '2262-04-11',
         '2023-01-31 10:00+01:00', '2023-01-31T00:00:00-00:00', '2024-02-29T23:59:59.999999Z', '31/01/2023', '01/02/2023',
         '2023-01-31T10:00:00.5', 'Jan 31 2023']


def test_records_equal_frame_on_edge_forms():
    ft = _fit(['2023-01-01 10:00', '2023-06-01', '2024-02-01 03:00'] * 3, dayfirst_train=True)
    for v in EDGES:
        rec = [{'x': 1.0, 'when': v}]
        assert np.array_equal(ft.transform(pd.DataFrame.from_records(rec))['x_num'], ft.transform_records(rec)['x_num']), v


@pytest.mark.parametrize('bad', ['yesterday', '2023-02-30', '2023-W05-2', '20230131', '1500-01-01', '2023-01-31t10:00', 3])
def test_non_dates_raise_the_same_error(bad):
    ft = _fit(['2023-01-01', '2023-06-01', '2024-02-01'] * 3, dayfirst_train=False)
    recs = [{'x': 1.0, 'when': '2023-01-05'}, {'x': 2.0, 'when': bad}, {'x': 3.0, 'when': 'also bad'}]
    with pytest.raises(DataError) as frame: ft.transform(pd.DataFrame.from_records(recs))
    with pytest.raises(DataError) as records: ft.transform_records(recs)
    assert str(records.value) == str(frame.value) and 'must be a date' in str(records.value)
