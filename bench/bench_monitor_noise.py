"""False alarms on clean data (issue 13, "the case above"): does `mlkit monitor` page on a random sample of the very
test file the model was evaluated on?

What a user does, through the real CLI (the venv's `mlkit`, subprocesses, isolated state, default settings, run in an
empty folder so that no `mlkit.toml` applies):
1. `mlkit train` on the bundled Adult data (trains on the Adult train file, evaluates on the Adult test file and
   registers the model; `train` does not promote), then `mlkit models promote TAG`, so that `mlkit monitor` (alias
   `production` by default) monitors it.
2. `--samples` random `--rows`-row samples (seeds 0..N-1, without replacement) of the Adult test file, labels included,
   each written as Parquet and checked with `mlkit monitor --current FILE --json`: exit code, breach names, drift
   share, the race and sex gaps with their intervals and small groups, and the old rule's largest gap (point estimates
   over every group, small ones included: the spread of selection rate, TPR and FPR) and whether it breaches 0.25.
3. One clearly shifted sample (test rows with age > 45 and sex == 'Male'; up to `--rows` of them): exit code and breaches.
4. The full test file once, with the default settings and with `-t min_group_size 0` (the race equalized-odds gap).

Goals (reported, never asserted): every same-distribution sample exits 0; the shifted sample exits 3. Also reported:
how many samples the old rule would have paged on, and the seconds per `mlkit monitor` call.
Usage: bench_monitor_noise.py [--samples 20] [--rows 3000] [-p NAME VALUE ...] [--timeout 600]
"""
from __future__ import annotations
import argparse, json, os, re, subprocess, sys, time
from pathlib import Path
import common

GAPS = ('demographic_parity_difference', 'equalized_odds_difference')
ATTRS = ('race', 'sex')

def mlkit(args, cwd, timeout) -> tuple:
    "Run the venv's `mlkit ARGS`: (exit code or 'timeout', stdout, stderr, seconds)."
    t0 = time.perf_counter()
    try: p = subprocess.run([str(common.VENV_BIN/'mlkit'), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired: return 'timeout', '', f'timeout after {timeout} s', round(time.perf_counter() - t0, 2)
    return p.returncode, p.stdout, p.stderr, round(time.perf_counter() - t0, 2)

def _spread(xs):
    xs = [x for x in xs if x is not None]
    return max(xs) - min(xs) if len(xs) > 1 else None

def old_rule(fairness: dict, threshold=0.25) -> dict:
    "The rule before issue 13: point gaps over every group (small ones included), per attribute; breach above `threshold`."
    per = {}
    for attr, f in (fairness or {}).items():
        g = list((f.get('groups') or {}).values())
        dp = _spread([m.get('selection_rate') for m in g])
        eo = [x for x in (_spread([m.get(r) for m in g]) for r in ('tpr', 'fpr')) if x is not None]
        per[attr] = dict(demographic_parity_difference=dp, equalized_odds_difference=max(eo) if eo else None)
    vals = [(f"{a}:{k}", v) for a, d in per.items() for k, v in d.items() if v is not None]
    worst = max(vals, key=lambda kv: kv[1]) if vals else (None, None)
    r = lambda v: None if v is None else round(v, 4)
    return dict(largest_gap=r(worst[1]), largest_gap_name=worst[0], breached=bool(worst[1] is not None and worst[1] > threshold),
                breaches=[k for k, v in vals if v > threshold], per_attribute={a: {k: r(v) for k, v in d.items()} for a, d in per.items()})

def record(rc, out, err, sec) -> dict:
    "What one `mlkit monitor --json` call gave: exit code, breaches, drift, the race/sex gaps, the old rule."
    rec = dict(exit_code=rc, seconds=sec)
    try: j = json.loads(out)
    except json.JSONDecodeError:
        rec['error'] = (err or out or '')[-800:]; return rec
    rec.update(rows=j.get('rows'), drift_share=j.get('drift_share'), breaches=[b['name'] for b in j.get('breaches') or []],
               breach_details=[{k: b.get(k) for k in ('name', 'value', 'ci', 'threshold', 'message')} for b in j.get('breaches') or []])
    fair = j.get('fairness') or {}
    for a in ATTRS:
        f = fair.get(a)
        if f is None: continue
        rec[a] = dict(**{k: f.get(k) for g in GAPS for k in (g, f'{g}_ci')}, small_groups=f.get('small_groups'),
                      counts={str(n): m.get('count') for n, m in (f.get('groups') or {}).items()})
    rec['old_rule'] = old_rule(fair)
    return rec

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--samples', type=int, default=20, help='same-distribution samples of the Adult test file (seeds 0..N-1)')
    ap.add_argument('--rows', type=int, default=3000, help='rows per sample (and at most this many shifted rows)')
    ap.add_argument('-p', '--param', nargs=2, action='append', metavar=('NAME', 'VALUE'), default=[],
                    help='a training parameter passed to `mlkit train` (default: none, the defaults a user gets)')
    ap.add_argument('--timeout', type=int, default=600, help='seconds allowed per `mlkit monitor` call')
    ap.add_argument('--train-timeout', type=int, default=1800, help='seconds allowed for `mlkit train`')
    a = ap.parse_args()
    tmp = common.isolate()
    work = tmp/'cwd'; work.mkdir()            # no mlkit.toml here: default settings
    try:
        from mlkit.data import load_adult
        from mlkit.config import load_settings
        s = load_settings()
        settings = {k: getattr(s, k, None) for k in ('max_fairness_gap', 'min_group_size', 'breach_rule', 'ci_level', 'max_drift_share')}
        # 1. train + promote, as a user does
        targs = ['train'] + [x for nv in a.param for x in ('-p', *nv)]
        rc, out, err, train_s = mlkit(targs, work, a.train_timeout)
        tag = next((l.split()[-1] for l in (out + '\n' + err).splitlines() if l.startswith('registered ')), None)
        print(f"mlkit {' '.join(targs)}: exit {rc} in {train_s:.0f} s, {tag}", flush=True)
        if rc != 0 or not tag: raise SystemExit(f"mlkit train failed (exit {rc}):\n{(err or out)[-3000:]}")
        prc, pout, perr, _ = mlkit(['models', 'promote', tag, '--reason', 'benchmark'], work, 300)
        if prc != 0: raise SystemExit(f"mlkit models promote failed (exit {prc}):\n{(perr or pout)[-2000:]}")
        runs = [m.group(1) for m in re.finditer(r'^run \S+: (/.+)$', out, re.M)]     # `run ID: FOLDER`, the last line
        run_dir = runs[-1] if runs else None
        eval_metrics = None
        if run_dir and (Path(run_dir)/'metrics.json').exists():
            m = json.loads((Path(run_dir)/'metrics.json').read_text())
            eval_metrics = {k: m.get(k) for k in ('accuracy', 'roc_auc')}
            eval_metrics['race_equalized_odds_difference'] = ((m.get('fairness') or {}).get('race') or {}).get('equalized_odds_difference')
        test = load_adult('test')
        calls = []
        def monitor(name, df, extra=()):
            path = tmp/f'{name}.parquet'; df.to_parquet(path, index=False)
            rec = record(*mlkit(['monitor', '--current', str(path), '--json', *extra], work, a.timeout))
            rec['name'] = name; calls.append(rec['seconds'])
            print(f"{name}: exit {rec['exit_code']} in {rec['seconds']:.1f} s, breaches {rec.get('breaches')}, "
                  f"race EO {(rec.get('race') or {}).get('equalized_odds_difference')} {(rec.get('race') or {}).get('equalized_odds_difference_ci')}, "
                  f"old rule {rec.get('old_rule', {}).get('largest_gap')}" + (f", error {rec['error'][-300:]}" if 'error' in rec else ''), flush=True)
            return rec
        # 2. same-distribution samples
        samples = [monitor(f'sample-{k}', test.sample(a.rows, random_state=k).reset_index(drop=True)) for k in range(a.samples)]
        # 3. a clearly shifted sample
        old_male = test[(test['age'] > 45) & (test['sex'] == 'Male')]
        shifted = monitor('shifted', old_male.sample(min(a.rows, len(old_male)), random_state=0).reset_index(drop=True))
        shifted['definition'] = f"test rows with age > 45 and sex == 'Male' ({len(old_male):,} rows; {min(a.rows, len(old_male)):,} drawn)"
        # 4. the full test file: default settings and no small groups
        full = {'default': monitor('full', test), 'min_group_size_0': monitor('full-mgs0', test, ('-t', 'min_group_size', '0'))}

        n = len(samples)
        clean = sum(r['exit_code'] == 0 for r in samples)
        paged = sum(r.get('old_rule', {}).get('breached', False) for r in samples)
        false_alarms = [dict(sample=r['name'], exit_code=r['exit_code'], breaches=r.get('breaches'), details=r.get('breach_details'))
                        for r in samples if r['exit_code'] != 0]
        nonzero = ', '.join(f"{x['sample']} exit {x['exit_code']} {x['breaches']}" for x in false_alarms)
        sec = common.stats(calls, 2)
        eo = lambda r: (r.get('race') or {}).get('equalized_odds_difference')
        eo_ci = lambda r: (r.get('race') or {}).get('equalized_odds_difference_ci')
        fmt_ci = lambda ci: f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ''
        fmt = lambda v: 'n/a' if v is None else f"{v:.3f}"
        s_eo = [eo(r) for r in samples if eo(r) is not None]
        s_old = [r['old_rule']['largest_gap'] for r in samples if r.get('old_rule', {}).get('largest_gap') is not None]
        small = sorted({g for r in samples for g in ((r.get('race') or {}).get('small_groups') or [])})
        table = [
            dict(metric=f"same-distribution samples ({a.rows:,} rows of adult.test) exiting 0", value=f"{clean}/{n}" +
                 (f" (non-zero: {nonzero})" if false_alarms else ''),
                 goal=f"{n}/{n}", met=clean == n),
            dict(metric="old rule (point gaps, every group, > 0.25) would have paged", value=f"{paged}/{n}; largest gap "
                 f"{common.spread(common.stats(s_old))}" if s_old else f"{paged}/{n}", goal='', met=None),
            dict(metric="race equalized odds difference on the samples (small groups left out)",
                 value=f"{common.spread(common.stats(s_eo))}; small race groups seen: {', '.join(small) or 'none'}" if s_eo else 'n/a', goal='', met=None),
            dict(metric=f"shifted sample exit code ({shifted['definition']})", value=f"{shifted['exit_code']}; breaches: {', '.join(shifted.get('breaches') or []) or 'none'}",
                 goal='3', met=shifted['exit_code'] == 3),
            dict(metric="full adult.test, race equalized odds difference",
                 value=f"min_group_size 0: {fmt(eo(full['min_group_size_0']))} {fmt_ci(eo_ci(full['min_group_size_0']))}; "
                       f"default (min_group_size {settings['min_group_size']}): {fmt(eo(full['default']))} {fmt_ci(eo_ci(full['default']))}; "
                       f"exit codes {full['min_group_size_0']['exit_code']} / {full['default']['exit_code']}", goal='', met=None),
            dict(metric="seconds per `mlkit monitor` call", value=common.spread(sec, '{:.1f}', ' s') + f" over {sec['n']} calls", goal='', met=None),
        ]
        for row in table: print(row, flush=True)
        common.write_result('monitor_noise', dict(
            params=dict(samples=a.samples, rows=a.rows, train_params=dict(a.param), timeout=a.timeout),
            settings=settings, train=dict(command=f"mlkit {' '.join(targs)}", exit_code=rc, seconds=train_s, model=tag,
                                          run_dir=run_dir, evaluation=eval_metrics, stdout_tail=out[-1500:]),
            summary=dict(clean_exit_0=clean, samples=n, old_rule_paged=paged, shifted_exit_code=shifted['exit_code'],
                         full_race_eod_min_group_size_0=eo(full['min_group_size_0']), full_race_eod_default=eo(full['default']),
                         seconds_per_monitor_call=sec, false_alarms=false_alarms),
            samples=samples, shifted=shifted, full=full, table=table, load_avg_at_end=[round(x, 2) for x in os.getloadavg()],
            notes=("`mlkit train` (bundled Adult: train file -> test file, registered) + `mlkit models promote`, then "
                   "`mlkit monitor --current FILE --json` with default settings on random samples of adult.test (labels "
                   "included), one shifted sample and the full file. Old rule: the largest of the selection-rate, TPR and "
                   "FPR spreads over every group (point estimates, small groups included), paging above 0.25. "
                   "Timings include the process start and the monitor notebook.")))
    finally: common.cleanup(tmp)

if __name__ == '__main__': main()
