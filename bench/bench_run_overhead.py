"""Run overhead: the papermill-executed training notebook against calling the same code directly.

With the same tiny parameters (default: limit_rows 3000, max_epochs 2), interleaved repeats of:
  notebook        `mlkit.runs.execute_workflow('train', ...)`: papermill starts a kernel and runs nbs/workflows/train.ipynb
                  (load + validate data, fit, params.json, schema, held-out evaluation, wandb finish; WANDB_MODE=disabled)
  same_code       the notebook's cells called in this (warm) process: the same work without papermill or a kernel
  same_code_cold  the same code in a fresh `python` process (interpreter start and imports included, as a kernel pays)
  fit_only        `fit(df, schema, params, progress=False, logger=False)` alone, in this process
Extra seconds per notebook = notebook - fit_only (what a user pays over calling fit) and notebook - same_code (papermill
and the kernel alone); notebook - same_code_cold is what papermill adds over a plain script.

    .venv/bin/python bench/bench_run_overhead.py [--repeats 3] [--limit-rows 3000] [--max-epochs 2]
"""
from __future__ import annotations
import argparse, contextlib, io, json, os, subprocess, sys, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
TMP = common.isolate()

SAME_CODE = r'''
import sys, time, json
from pathlib import Path
t0 = time.perf_counter()
from mlkit.data import load_for_run, validate, data_hash
from mlkit.train import TrainParams, fit, finish_wandb, wandb_mode
from mlkit.config import write_json
from mlkit.runs import evaluate_predictor, format_metrics, git_commit
def same_code(params, run_dir, run_id):
    "The cells of nbs/workflows/train.ipynb (defaults: bundled Adult data), in order."
    p = TrainParams.make(**params)
    run_dir = Path(run_dir); run_dir.mkdir(parents=True, exist_ok=True)
    train, test, schema = load_for_run(None, None, None, test_data=None, seed=p.seed)
    report = validate(train, schema.target, schema, path=None)
    if not report.ok: raise ValueError('training data is invalid')
    res = fit(train, schema, p, run_dir=run_dir, run_id=run_id, progress='lines')
    write_json(run_dir/'params.json', dict(run_id=run_id, params=res.params, data=None, target=schema.target,
               sensitive=schema.sensitive, test_data=None, seed=p.seed, data_hash=data_hash(train),
               test_data_hash=data_hash(test), train_rows=res.train_rows, val_rows=res.val_rows, epochs=res.epochs,
               train_seconds=res.seconds, val_metrics=res.val_metrics, git_commit=git_commit(), schema=schema.to_dict()))
    schema.save(Path(res.model_dir)/'schema.json')
    m, _ = evaluate_predictor(res.predictor, test, schema)
    format_metrics(m)
    finish_wandb(res.logger, {f'test/{k}': v for k, v in m.items()}, artifact_dir=res.model_dir, name=f"model-{run_id}")
    return m
'''

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--limit-rows', type=int, default=3000); ap.add_argument('--max-epochs', type=int, default=2)
    a = ap.parse_args()
    params = dict(limit_rows=a.limit_rows, max_epochs=a.max_epochs)
    ns = {}; exec(SAME_CODE, ns)
    same_code = ns['same_code']
    from mlkit.runs import execute_workflow, kernel_name
    from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
    from mlkit.train import TrainParams, fit
    train, _ = load_adult(); schema = infer_schema(train, ADULT_TARGET, ADULT_SENSITIVE)
    quiet = io.StringIO()
    k = [0]
    def rdir():
        k[0] += 1; return TMP/'runs'/f'r{k[0]}', f'bench-{k[0]}'
    def notebook():
        d, rid = rdir()
        execute_workflow('train', d/'train.ipynb', dict(run_dir=str(d), run_id=rid, params=params, progress='lines'), out=quiet)
    def direct():
        d, rid = rdir()
        with contextlib.redirect_stdout(quiet): ns['same_code'](params, d, rid)
    def cold():
        d, rid = rdir()
        code = SAME_CODE + f"\nsame_code({params!r}, {str(d)!r}, {rid!r})\n"
        r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=os.environ.copy(), timeout=600)
        if r.returncode: raise RuntimeError(f"fresh-process run failed: {r.stderr[-800:]}")
    def fit_only():
        fit(train, schema, TrainParams.make(**params), progress=False, logger=False)
    variants = dict(notebook=notebook, same_code=direct, same_code_cold=cold, fit_only=fit_only)
    print(f"params {params}, kernel {kernel_name()!r}, {a.repeats} interleaved repeats (after one warm-up of the in-process variants)", flush=True)
    warnings.filterwarnings('ignore', message='.*wandb run already in progress.*')
    direct(); fit_only()                        # lazy imports and first-touch costs out of the in-process numbers
    times = {v: [] for v in variants}
    for i in range(a.repeats):
        for name, f in variants.items():
            t0 = time.perf_counter(); f(); dt = time.perf_counter() - t0
            times[name].append(dt)
            print(f"repeat {i + 1} {name:15s} {dt:6.2f}s", flush=True)
    # what a fresh kernel pays before the first cell does any work: the interpreter and the imports of the train notebook
    imp = {'python -c pass': 'pass', 'import mlkit.train': 'import mlkit.train',
           'import torch': 'import torch'}
    imports = {}
    for label, code in imp.items():
        xs = []
        for _ in range(3):
            t0 = time.perf_counter(); subprocess.run([sys.executable, '-c', code], env=os.environ.copy(), check=True); xs.append(time.perf_counter() - t0)
        imports[label] = common.stats(xs, 3)
        print(f"fresh process: {label:25s} {imports[label]['median']:.2f}s", flush=True)
    st = {k: common.stats(v, 3) for k, v in times.items()}
    med = {k: v['median'] for k, v in st.items()}
    extra_fit = round(med['notebook'] - med['fit_only'], 3)
    extra_same = round(med['notebook'] - med['same_code'], 3)
    extra_cold = round(med['notebook'] - med['same_code_cold'], 3)
    pair = lambda a_, b_: common.stats([x - y for x, y in zip(times[a_], times[b_])], 3)
    goal = 2.0
    res = dict(params=params, kernel=kernel_name(), seconds=st, fresh_process_s=imports,
               extra_s_notebook_vs_fit=extra_fit, extra_s_notebook_vs_same_code=extra_same, extra_s_notebook_vs_same_code_cold=extra_cold,
               extra_s_per_repeat=dict(vs_fit=pair('notebook', 'fit_only'), vs_same_code=pair('notebook', 'same_code'),
                                       vs_same_code_cold=pair('notebook', 'same_code_cold')),
               goals=dict(extra_s_max=goal))
    res['table'] = [
        dict(metric='papermill train notebook', value=common.spread(st['notebook'], '{:.2f}', ' s')),
        dict(metric='same cells, in this process', value=common.spread(st['same_code'], '{:.2f}', ' s')),
        dict(metric='same cells, fresh python process', value=common.spread(st['same_code_cold'], '{:.2f}', ' s')),
        dict(metric='fit() alone', value=common.spread(st['fit_only'], '{:.2f}', ' s')),
        dict(metric='extra s per notebook vs the same library calls as a script (fresh python process): papermill + kernel',
             value=f"{extra_cold:.2f} s (per repeat {common.spread(res['extra_s_per_repeat']['vs_same_code_cold'], '{:.2f}')})",
             goal=f'<= {goal} s', met=extra_cold <= goal),
        dict(metric='extra s per notebook vs the same code in this warm process (papermill + kernel + cold imports)', value=f"{extra_same:.2f} s"),
        dict(metric='extra s per notebook vs fit() alone, warm (also counts validation, evaluation, files)',
             value=f"{extra_fit:.2f} s (per repeat {common.spread(res['extra_s_per_repeat']['vs_fit'], '{:.2f}')})"),
    ] + [dict(metric=f'fresh process: `{k}`', value=common.spread(v, '{:.2f}', ' s')) for k, v in imports.items()]
    imp_train, bare = imports['import mlkit.train']['median'], imports['python -c pass']['median']
    res['notes'] = ["The goal is judged against the same library calls run as a plain script: a scheduled or command-line run "
                    "starts a fresh process either way, so the notebook's own cost is what papermill and the kernel add to it. "
                    "The warm in-process comparisons below show what a kept-warm process would save (the imports).",
                    f"Tiny run: {params}; the notebook also validates the data, writes params/schema, evaluates on the "
                    "16,281-row test file and closes wandb (disabled), so `vs fit()` counts that work as overhead too.",
                    f"**Where the extra {extra_fit:.1f} s go:** the cells' own work beyond fit() (validation, evaluation, files) "
                    f"{med['same_code'] - med['fit_only']:.1f} s; a fresh interpreter importing the training stack "
                    f"(`import mlkit.train` {imp_train:.1f} s, of which torch {imports['import torch']['median']:.1f} s) — together "
                    f"the fresh-process run is {med['same_code_cold'] - med['same_code']:.1f} s slower than the same cells in a warm "
                    f"process; papermill and the Jupyter kernel protocol add {extra_cold:.1f} s on top. Against a warm process, a run can only "
                    f"get close by not paying the cold imports per run (a kept-warm kernel or worker process, or lighter "
                    f"imports: everything but torch — lightning, pandas and the rest — is ~{max(imp_train - imports['import torch']['median'], 0):.0f} s of `import mlkit.train` here)."]
    common.write_result('run_overhead', res)

if __name__ == '__main__':
    try: main()
    finally: common.cleanup(TMP)
