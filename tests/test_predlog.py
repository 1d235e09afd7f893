"The bounded prediction log: rotation under concurrent writer processes, gzip, retention, reads across files, sampling, failed writes."
import errno, gzip, json, multiprocessing as mp, os, time
from datetime import datetime, timezone
from pathlib import Path
import pytest
from mlkit.predlog import PredictionLog, read_prediction_log, log_files, prune, compress_rotated, sampled

def plog(d, **kw):
    "A log with explicit bounds (no settings file involved)."
    return PredictionLog(d, **{**dict(max_bytes=10**9, keep_days=30, max_total_bytes=10**12, sample_rate=1, required=False), **kw})

def raw_lines(d) -> list:
    "Every line of every log file, strictly parsed (a torn or interleaved line fails json.loads)."
    out = []
    for p in log_files(d):
        data = gzip.decompress(p.read_bytes()) if p.suffix == '.gz' else p.read_bytes()
        assert data == b'' or data.endswith(b'\n'), p
        out += [json.loads(l) for l in data.splitlines()]
    return out

def _writer(d, k, n, max_bytes):
    lg = plog(d, max_bytes=max_bytes)
    for i in range(n):   # 1-3 lines a request, ~1 kB each: lines of one write must stay together
        lg.append([dict(ts=datetime.now(timezone.utc).isoformat(), request_id=f'{k}-{i}', model='m', inputs={'pad': 'x' * 1000, 'j': j}, score=0.5)
                   for j in range(1 + i % 3)])
    lg.close()

def test_rotation_under_concurrent_writers(tmp_path):
    "4 processes x 400 requests with a 50 kB max_bytes: hundreds of rotations; every line present exactly once, whole, rotated files gzipped."
    procs, n = 4, 400
    ps = [mp.get_context('fork').Process(target=_writer, args=(tmp_path, k, n, 50_000)) for k in range(procs)]
    for p in ps: p.start()
    for p in ps: p.join(120)
    assert [p.exitcode for p in ps] == [0] * procs
    plog(tmp_path).maintain()
    files = log_files(tmp_path)
    rows = raw_lines(tmp_path)
    want = {(f'{k}-{i}', j) for k in range(procs) for i in range(n) for j in range(1 + i % 3)}
    got = [(r['request_id'], r['inputs']['j']) for r in rows]
    assert len(got) == len(want) == procs * sum(1 + i % 3 for i in range(n)) and set(got) == want   # exactly once each
    assert len(files) > 50, len(files)                                  # many rotations happened
    assert all(p.name.endswith('.jsonl.gz') for p in files[:-1]) and files[-1].name.endswith(f'{datetime.now(timezone.utc):%Y-%m-%d}.jsonl')
    assert not list(tmp_path.glob('*.tmp'))
    for p in files[:-1]: assert p.stat().st_size < 50_000 // 5          # compressed (1 kB lines of 'x' compress far below)
    df = read_prediction_log(tmp_path)
    assert len(df) == len(want)
    for k in range(procs):                                               # each writer's lines in the order it wrote them
        mine = df[df.request_id.str.startswith(f'{k}-')].request_id.str.split('-').str[1].astype(int)
        assert mine.is_monotonic_increasing

def test_rotated_files_are_gzip_and_readable(tmp_path):
    lg = plog(tmp_path, max_bytes=600)
    for i in range(50): lg.append([dict(ts=f'2026-01-01T00:00:{i:02d}+00:00', request_id=f'r{i}', model='m', inputs={'i': i}, score=0.1)])
    lg.close()
    files = log_files(tmp_path)
    gz = [p for p in files if p.suffix == '.gz']
    assert len(gz) >= 3 and len(gz) == len(files) - 1
    assert [p.name.split('.')[1] for p in gz] == [f'{k:06d}' for k in range(1, len(gz) + 1)]      # numbered in order
    first = [json.loads(l) for l in gzip.open(gz[0], 'rt')]
    assert first[0]['request_id'] == 'r0'

def test_read_across_rotated_compressed_and_current_equals_what_was_written(tmp_path):
    lg = plog(tmp_path, max_bytes=2_000)
    written = [dict(ts=f'2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00', request_id=f'r{i}', model='a' if i % 3 else 'b',
                    inputs={'x': i, 'c': f'v{i % 4}'}, label='y', score=i / 200) for i in range(200)]
    for i in range(0, 200, 2): lg.append(written[i:i + 2])
    lg.close()
    files = log_files(tmp_path)
    plain = files[len(files) // 2]                                       # one rotated file not compressed yet
    plain.with_name(plain.name[:-3]).write_bytes(gzip.decompress(plain.read_bytes())); plain.unlink()
    kinds = {('gz' if p.suffix == '.gz' else 'rotated' if p.name.count('.') == 2 else 'current') for p in log_files(tmp_path)}
    assert kinds == {'gz', 'rotated', 'current'}, kinds
    df = read_prediction_log(tmp_path)
    assert df.request_id.tolist() == [r['request_id'] for r in written]
    assert df.x.tolist() == list(range(200)) and df.score.tolist() == [r['score'] for r in written]
    assert read_prediction_log(tmp_path, model='b').x.tolist() == [i for i in range(200) if i % 3 == 0]
    assert read_prediction_log(tmp_path, since='2026-01-01T00:03:00+00:00').x.tolist() == list(range(180, 200))

def test_retention_by_age_and_by_total_size(tmp_path):
    for i in range(1, 7): (tmp_path/f'predictions-2026-01-01.{i:06d}.jsonl').write_bytes(b'{"ts":"2026-01-01T00:00:00+00:00","inputs":{}}\n' * 500)
    (tmp_path/'predictions-2026-01-02.jsonl').write_bytes(b'{"ts":"2026-01-02T00:00:00+00:00","inputs":{}}\n' * 500)
    compress_rotated(tmp_path)
    assert len(list(tmp_path.glob('*.jsonl.gz'))) == 6 and not list(tmp_path.glob('*.00000?.jsonl'))
    old = time.time() - 10 * 86400
    for i in (1, 2): os.utime(tmp_path/f'predictions-2026-01-01.{i:06d}.jsonl.gz', (old, old))
    gone = prune(tmp_path, keep_days=7, max_total_bytes=10**9)                   # by age
    assert sorted(p.name for p in gone) == ['predictions-2026-01-01.000001.jsonl.gz', 'predictions-2026-01-01.000002.jsonl.gz']
    sizes = {p.name: p.stat().st_size for p in log_files(tmp_path)}
    cap = sizes['predictions-2026-01-02.jsonl'] + sizes['predictions-2026-01-01.000006.jsonl.gz']
    gone = prune(tmp_path, keep_days=7, max_total_bytes=cap)                      # by size: oldest rotated first, current kept
    assert [p.name for p in gone] == [f'predictions-2026-01-01.{i:06d}.jsonl.gz' for i in (3, 4, 5)]
    assert [p.name for p in log_files(tmp_path)] == ['predictions-2026-01-01.000006.jsonl.gz', 'predictions-2026-01-02.jsonl']
    gone = prune(tmp_path, keep_days=7, max_total_bytes=1)                        # never the current file
    assert [p.name for p in log_files(tmp_path)] == ['predictions-2026-01-02.jsonl']

def test_maintain_rotates_past_days_and_applies_the_bounds(tmp_path):
    (tmp_path/'predictions-2020-01-01.jsonl').write_text('{"ts":"2020-01-01T00:00:00+00:00","inputs":{}}\n')
    old = time.time() - 40 * 86400
    os.utime(tmp_path/'predictions-2020-01-01.jsonl', (old, old))
    lg = plog(tmp_path, keep_days=365 * 100)
    lg.maintain()
    assert [p.name for p in log_files(tmp_path)] == ['predictions-2020-01-01.000001.jsonl.gz']
    lg.keep_days = 30; lg.maintain()
    assert log_files(tmp_path) == []

def test_sampling_rate_recorded_and_reproducible(tmp_path):
    for run in ('a', 'b'):
        lg = plog(tmp_path/run, sample_rate=0.2)
        for i in range(500): lg.append([dict(ts='2026-01-01T00:00:00+00:00', request_id=f'r{i}', model='m', inputs={}, score=0.5)] * 3)
        lg.close()
    a, b = read_prediction_log(tmp_path/'a'), read_prediction_log(tmp_path/'b')
    assert a.request_id.tolist() == b.request_id.tolist()                       # the same requests in every run
    assert set(a.sample_rate) == {0.2} and (a.groupby('request_id').size() == 3).all()
    assert 60 <= a.request_id.nunique() <= 140
    assert set(a.request_id) == {f'r{i}' for i in range(500) if sampled(f'r{i}', 0.2)}
    lg = plog(tmp_path/'c'); lg.append([dict(ts='2026-01-01T00:00:00+00:00', request_id='r', model='m', inputs={}, score=0.5)]); lg.close()
    assert 'sample_rate' not in read_prediction_log(tmp_path/'c').columns      # absent = 1.0

@pytest.mark.parametrize('how', ['full_disk', 'unwritable', 'path_is_a_file'])
def test_failed_writes_are_counted_or_raise_when_required(tmp_path, how):
    d = tmp_path/'log'
    if how == 'full_disk':        # the current file is /dev/full: every write fails with ENOSPC, as on a full disk
        d.mkdir(); (d/f'predictions-{datetime.now(timezone.utc):%Y-%m-%d}.jsonl').symlink_to('/dev/full')
    elif how == 'unwritable':
        if os.geteuid() == 0: pytest.skip('root writes into a read-only folder: see path_is_a_file and full_disk')
        d.mkdir(); d.chmod(0o500)
    else: d = tmp_path/'file'/'log'; (tmp_path/'file').write_text('not a folder')
    seen = []
    lg = plog(d, on_error=seen.append)
    row = [dict(ts='2026-01-01T00:00:00+00:00', request_id='r', model='m', inputs={}, score=0.5)]
    assert lg.append(row) is False and lg.append(row) is False and lg.errors == 2
    assert all(isinstance(e, OSError) for e in seen)
    if how == 'full_disk': assert seen[0].errno == errno.ENOSPC
    lg.required = True
    with pytest.raises(Exception, match='cannot be written'): lg.append(row)
    assert lg.errors == 3
