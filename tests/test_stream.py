"Tables larger than memory (issue 17): streamed reading, hashing, splitting, the transform, training batches and evaluation."
import numpy as np, pandas as pd, pytest, torch
from mlkit.config import DataError, load_settings
from mlkit.data import (read_table, data_hash, table_files, table_rows, sample_rows, scan_table, hash_split, load_for_run,
                        stream_decision, write_parts, TRAIN, VAL, TEST)
from mlkit.features import FeatureTransform
from mlkit.model import Predictor
from mlkit.train import TrainParams, make_module
import mlkit.stream as ms

S = load_settings(stream_rows=1000, quantile_sample_rows=2000, stream_batch_rows=300, shuffle_buffer_rows=800)

def table(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n); k = rng.choice(['a', 'b', 'c'], n)
    return pd.DataFrame({'id': np.arange(n), 'x': np.where(rng.random(n) < 0.05, np.nan, x), 'z': rng.exponential(size=n),
                         'cnt': pd.array(np.where(rng.random(n) < 0.02, None, rng.integers(0, 9, n)), dtype='Int64'),
                         'k': k, 'g': rng.choice(['f', 'm'], n), 'flag': rng.random(n) < 0.3,
                         'y': np.where(x + (k == 'a') + rng.normal(scale=0.7, size=n) > 0.5, 'yes', 'no')})

def write(df, folder, files=3, row_group=400, order=None):
    folder.mkdir(parents=True, exist_ok=True)
    idx = np.array_split(np.arange(len(df)) if order is None else order, files)
    for j, ix in enumerate(idx): df.iloc[ix].to_parquet(folder/f'part-{j}.parquet', index=False, row_group_size=row_group)
    return folder

@pytest.fixture(scope='module')
def tab(tmp_path_factory):
    return write(table(), tmp_path_factory.mktemp('stream')/'tab')

@pytest.fixture(scope='module')
def parts(tab):
    train, test, schema = load_for_run(tab, 'y', ['g'], id_columns=['id'], settings=S)
    return train, test, schema

def test_streaming_hash_equals_data_hash(tab):
    whole = read_table(tab)
    assert whole.cnt.dtype == 'float64'                      # nullable integers: float64, in every batch as in the whole frame
    assert scan_table(tab, 'y', batch_rows=256).part_hash() == data_hash(whole)
    assert scan_table(tab, 'y', batch_rows=1000).part_hash() == data_hash(whole.sample(frac=1, random_state=1))

def test_dir_and_glob_sources(tab):
    assert [f.name for f in table_files(tab)] == ['part-0.parquet', 'part-1.parquet', 'part-2.parquet']
    assert table_rows(f"{tab}/part-*.parquet") == table_rows(tab) == 3000
    assert data_hash(read_table(f"{tab}/*.parquet")) == data_hash(read_table(tab))
    s = sample_rows(tab, 500, seed=2)
    assert len(s) == 500 and s.id.is_unique and s.equals(sample_rows(f"{tab}/*.parquet", 500, seed=2))

def test_clear_errors(tmp_path, tab):
    (tmp_path/'empty').mkdir()
    with pytest.raises(DataError, match='no Parquet or CSV files found'): table_files(tmp_path/'empty')
    with pytest.raises(DataError, match='no Parquet or CSV files found'): table_files(tmp_path/'nothing-*.parquet')
    bad = write(table(300), tmp_path/'bad', files=2)
    table(300).assign(x='text').iloc[:10].to_parquet(bad/'part-9.parquet', index=False)
    with pytest.raises(DataError, match=r'part-9\.parquet does not match the schema'): read_table(bad)
    with pytest.raises(DataError, match=r'part-9\.parquet does not match the schema'): scan_table(bad, 'y')

def test_automatic_switch_is_stated(tab):
    assert stream_decision(tab, S) == (True, 'streaming 3,000 rows from 3 files (>= stream_rows 1,000)')
    assert stream_decision(tab)[1] == 'reading 3,000 rows from 3 files in memory (< stream_rows 2,000,000)'
    assert isinstance(load_for_run(tab, 'y')[0], pd.DataFrame)

def test_hash_split_stable_across_file_orderings(tmp_path, parts):
    df = table()
    other = write(df, tmp_path/'shuffled', files=5, row_group=150, order=np.random.default_rng(5).permutation(len(df)))
    tr2, te2, _ = load_for_run(other, 'y', ['g'], id_columns=['id'], settings=S)
    ids = lambda part: sorted(pd.concat(list(part.frames())).id)
    assert ids(te2) == ids(parts[1]) and ids(tr2) == ids(parts[0])
    assert len(set(ids(parts[0])) & set(ids(parts[1]))) == 0 and len(parts[0]) + len(parts[1]) == 3000
    assert te2.hash == parts[1].hash

def test_quantiles_within_the_sample_bound(tmp_path):
    n = 40_000
    d = write(table(n, seed=3), tmp_path/'q', files=2, row_group=5000)
    s = load_settings(stream_rows=1000, quantile_sample_rows=8000)
    train, _, schema = load_for_run(d, 'y', ['g'], id_columns=['id'], settings=s)
    ft = ms.fit_transform(train, schema, TrainParams(), s)
    z = pd.concat(list(train.frames())).z.to_numpy()
    exact = np.quantile(z, [0.05, 0.5, 0.95])
    rank = lambda v: (z <= v).mean()
    assert abs(rank(ft.numeric['z']['median']) - 0.5) < 4 * np.sqrt(0.25 / 8000)       # 4 standard errors of a sample quantile's rank
    assert abs(ft.numeric['z']['scale'] - (exact[2] - exact[0])) / (exact[2] - exact[0]) < 0.05

def test_transform_vocabularies_are_exact_and_serving_loads_it(parts):
    train, _, schema = parts
    ft = ms.fit_transform(train, schema, TrainParams(), S)
    mem = FeatureTransform.fit(pd.concat(list(train.frames())), schema)
    assert ft.categorical == mem.categorical and ft.num_indicators == mem.num_indicators
    assert FeatureTransform.from_dict(ft.to_dict()).to_dict() == ft.to_dict()

def _batches(ds): return [tuple(t.clone() for t in b) for b in ds]

def test_shuffle_is_deterministic_per_seed_and_epoch(parts):
    train, _, schema = parts
    ft = ms.fit_transform(train, schema, TrainParams(), S)
    mk = lambda seed: ms.StreamData(train, ft, 'y', TRAIN, 128, True, seed, buffer_rows=800, batch_rows=300)
    a, b = mk(1), mk(1)
    e1, e1b = _batches(a), _batches(b)
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[2], y[2]) for x, y in zip(e1, e1b)) and len(e1) == len(e1b)
    assert not torch.equal(_batches(a)[0][0], e1[0][0])               # epoch 2: another order
    assert not torch.equal(_batches(mk(2))[0][0], e1[0][0])            # another seed: another order
    col = lambda bs: np.sort(np.concatenate([x[0][:, 1].numpy() for x in bs]))
    assert np.array_equal(col(e1), col(_batches(mk(2))))               # the same rows, in another order

@pytest.mark.parametrize('row_group', [400, 100])    # 8 row groups (< 4 a rank: rows are dealt), 30 (units are dealt)
def test_rank_shards_are_disjoint_and_cover_every_row(tmp_path, monkeypatch, row_group):
    d = write(table(), tmp_path/f'rg{row_group}', row_group=row_group)
    train, _, schema = load_for_run(d, 'y', ['g'], id_columns=['id'], settings=S)
    ft = ms.fit_transform(train, schema, TrainParams(), S)
    whole = np.sort(np.concatenate([b[0][:, 1].numpy() for b in ms.StreamData(train, ft, 'y', TRAIN, 128, False)]))
    shards = []
    for r in range(2):
        monkeypatch.setattr(ms, '_rank_world', lambda r=r: (r, 2))
        ds = ms.StreamData(train, ft, 'y', TRAIN, 128, True, 0, buffer_rows=800, batch_rows=300)
        got = _batches(ds)
        assert all(len(b[2]) <= 64 for b in got)                          # each rank: its half of the global batch
        shards.append(np.concatenate([b[0][:, 1].numpy() for b in got]))
    assert len(set(shards[0]) & set(shards[1])) == 0
    assert np.array_equal(np.sort(np.concatenate(shards)), whole)
    steps = []
    for r in range(2):                                                    # with the row count: the same steps on every rank
        monkeypatch.setattr(ms, '_rank_world', lambda r=r: (r, 2))
        steps.append(len(_batches(ms.StreamData(train, ft, 'y', TRAIN, 128, True, 0, n_rows=len(whole)))))
    assert steps[0] == steps[1] == len(whole) // 128

def test_streaming_metrics_equal_in_memory(parts, tmp_path):
    from mlkit.runs import evaluate_predictor
    train, test, schema = parts
    ft = ms.fit_transform(train, schema, TrainParams(), S)
    torch.manual_seed(0)
    pred = Predictor(make_module(ft, TrainParams(network='mlp', hidden=(16,)), 1).net.eval(), ft)
    rows, outs = ms.score_part(pred, test, schema, batch_rows=250)
    m_s, p_s = evaluate_predictor(ms.Scored(pred, outs), rows, schema, resamples=50)
    whole = read_table(train.path)
    tdf = whole[hash_split(whole, 0.2, 0.15, 0, key=['id']) == TEST].reset_index(drop=True)
    m_m, p_m = evaluate_predictor(pred, tdf, schema, resamples=50)
    def close(a, b):
        if isinstance(a, dict): return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
        if isinstance(a, list): return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
        if isinstance(a, float): return abs(a - b) < 1e-7
        return a == b
    assert close(m_s, m_m), (m_s, m_m)
    assert np.allclose(p_s.y_score, p_m.y_score, atol=1e-6) and list(p_s.id) == list(p_m.id)
    write_parts(p_s, tmp_path/'p.parquet', rows=200)
    import pyarrow.parquet as pq
    assert pq.ParquetFile(tmp_path/'p.parquet').metadata.num_row_groups == -(-len(p_s) // 200)

def test_fit_stream_trains(parts):
    train, _, schema = parts
    res = ms.fit_stream(train, schema, TrainParams(max_epochs=1, network='mlp', hidden=(16,)), progress=False, logger=False, settings=S)
    assert res.epochs == 1 and res.params['streamed'] and 0.5 < res.val_metrics['accuracy'] <= 1

def test_split_column_decides_the_parts(tmp_path):
    df = table(2000).assign(part=lambda d: np.where(d.id % 5 == 0, 'test', np.where(d.id % 5 == 1, 'val', 'train')))
    d = write(df, tmp_path/'sc')
    tr, te, sch = load_for_run(d, 'y', ['g'], id_columns=['id'], split_column='part', settings=S)
    assert sorted(pd.concat(list(te.frames())).id) == list(df.id[df.part == 'test']) and 'part' not in sch.columns
    ft = ms.fit_transform(tr, sch, TrainParams(), S)
    val = sum(len(b[2]) for b in ms.StreamData(tr, ft, 'y', VAL, 256, False))
    assert val == int((df.part == 'val').sum())
    mtr, mte, msch = load_for_run(d, 'y', ['g'], id_columns=['id'], split_column='part', stream=False)
    assert sorted(mte.id) == list(df.id[df.part == 'test']) and 'part' not in msch.columns

def test_a_pass_is_cached(tab, monkeypatch):
    first = load_for_run(tab, 'y', ['g'], id_columns=['id'], settings=S, report=True)
    import mlkit.data as D
    monkeypatch.setattr(D, 'scan_table', lambda *a, **k: pytest.fail('scanned again'))
    again = load_for_run(tab, 'y', ['g'], id_columns=['id'], settings=S, report=True)
    assert again[:3] == first[:3] and again[3].to_dict() == first[3].to_dict()

@pytest.mark.slow
def test_torchrun_streams_a_shard_per_rank(parts, tmp_path, monkeypatch):
    "`mlkit train --launcher torchrun` on a streamed table: the ranks read the part's description and stream their shards."
    from mlkit.launch import fit_torchrun, INPUTS
    train, _, schema = parts
    monkeypatch.setenv('WANDB_MODE', 'disabled')
    for k, v in dict(MLKIT_STREAM_ROWS=1000, MLKIT_QUANTILE_SAMPLE_ROWS=2000).items(): monkeypatch.setenv(k, str(v))
    res = fit_torchrun(train, schema, dict(max_epochs=1, network='mlp', hidden=(16,)), tmp_path/'run', 'ddp-stream', nproc_per_node=2)
    assert (tmp_path/'run'/INPUTS/'train.json').exists() and not (tmp_path/'run'/INPUTS/'train.parquet').exists()
    assert res.params['streamed'] and res.epochs == 1 and 0.5 < res.val_metrics['accuracy'] <= 1

def test_streamed_run_registers_gates_and_simulates(tab, tmp_path, monkeypatch):
    "A run on a table forced to stream, past training: `register_run` (a bounded reference sample), the gates (production scored on the streamed test part) and the main job's simulated batch."
    import io, shutil
    from pathlib import Path
    from mlkit.config import write_json, model_settings
    from mlkit.runs import evaluate_predictor, register_run
    from mlkit.registry import promote, model_path
    from mlkit.monitoring import REFERENCE
    from mlkit.gates import judge
    from mlkit.job import simulated_batch
    for k, v in dict(STREAM_ROWS=1000, QUANTILE_SAMPLE_ROWS=2000, STREAM_BATCH_ROWS=300, REFERENCE_MAX_ROWS=800, BOOTSTRAP_RESAMPLES=20).items():
        monkeypatch.setenv(f'MLKIT_{k}', str(v))
    train, test, schema = load_for_run(tab, 'y', ['g'], id_columns=['id'])
    assert not isinstance(test, pd.DataFrame)                  # TableParts: a pandas call on them would fail
    rdir = tmp_path/'run0'
    res = ms.fit_stream(train, schema, TrainParams(max_epochs=1, network='mlp', hidden=(16,)), run_dir=rdir, progress=False, logger=False)
    schema.save(Path(res.model_dir)/'schema.json')
    m, _ = evaluate_predictor(res.predictor, test, schema, resamples=0)          # the streamed test part, batch by batch
    write_json(rdir/'metrics.json', m)
    write_json(rdir/'params.json', dict(run_id='run0', params=res.params, data=str(tab), target='y', sensitive=['g'], seed=0,
                                        data_options=dict(id_columns=['id'], stream=True), data_hash=data_hash(train),
                                        test_data_hash=data_hash(test), schema=schema.to_dict()))
    shutil.copytree(rdir, tmp_path/'run1')
    tags = [register_run(tmp_path/f'run{i}', 'tab') for i in range(2)]
    ref = pd.read_parquet(model_path(tags[0])/REFERENCE)
    assert len(ref) == 800 and {'x', 'k', 'y'} <= set(ref.columns)  # reference_max_rows, not the whole table
    assert np.isin(train.codes(ref), (TRAIN, VAL)).all()        # the training part's rows only, no held-out ones
    from mlkit.registry import card as model_card, training_data_of, ModelError
    with pytest.raises(ModelError, match='streams'): training_data_of(model_card(tags[0]))
    promote(tags[0], 'production', reason='test')
    j = judge(tags[1], m, test, model_settings('tab'))           # production is evaluated on the streamed test part
    assert j['production'] == tags[0] and j['production_metrics']['rows'] == m['rows'] == len(test)
    assert j['production_metrics']['accuracy'] == m['accuracy']
    assert {'probe', 'vs_production:accuracy', 'vs_production:roc_auc'} <= {g['gate'] for g in j['gates'] if g['passed']}
    b = simulated_batch(test, 100, shift_col='x', threshold=0.5)
    assert len(b) == 100 and int((b.x >= 0.5).sum()) == 80 and (test.codes(b) == TEST).all()
    from mlkit.retrain import retrain
    with pytest.raises(Exception, match='trained on a streamed table'): retrain(out=io.StringIO())
