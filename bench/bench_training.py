"""Training benchmark: Lightning against a plain PyTorch loop on the default network, then Adult side by side.

1. Lightning vs a hand loop. Both train the same network (the default, TabM: `build_network(net_config(...))`) on the
same full Adult training split (85% of the training file, as `fit` uses), with the same batch size, `batch_loader`,
AdamW + cosine schedule, loss (each ensemble member's, `member_loss`) and a validation pass per epoch (loss,
accuracy, AUC, as `TabularModule` logs), for a fixed number of epochs without early stopping. Repeats are
interleaved, their order rotating each repeat, so drifting machine load hits all alike. Reported: seconds per epoch
(median of the per-run means over the repeats, plus per-epoch medians that exclude set-up) and the Lightning / plain
ratio (goal <= 1.05x). Lightning runs twice per repeat: `bare` (no logger, no progress bar, no checkpointing, no early
stopping: only the training loop is compared) and `fit_callbacks` (the callbacks `fit()` adds: EarlyStopping with
patience large enough not to stop, ModelCheckpoint to a temp folder, log_every_n_steps=10). One torch thread
(`--threads`). A TabM epoch costs about 4 s on one thread here, so the default is 2 epochs x 6 repeats (two full
rotations of the three variants) to keep the whole script near 6 minutes.

2. Adult side by side, train file -> official test file, each fit on the whole training file by `fit()` (its own 15%
validation split, early stopping), with the torch default threads (`--fit-threads`): the previous default (the MLP),
the new default (TabM), the sweep's best (the params of bench/results/sweep_adult_best.json, written by
bench_sweep.py), a logistic regression and HistGradientBoosting (`mlkit.metrics.fit_baselines`, as in every
evaluation). Each: fit seconds, epochs, test accuracy and ROC AUC (`mlkit.runs.evaluate_predictor`), the 1-minute
load average before it. Goals: the default reaches accuracy >= 0.870, AUC >= 0.927 in <= 60 s; whether it beats
HistGradientBoosting is reported (an aim, not a goal).

    .venv/bin/python bench/bench_training.py [--epochs 2] [--repeats 6] [--threads 1] [--fit-threads 0]
                                             [--skip-compare] [--skip-profile] [--skip-fit] [--sweep-best FILE]
"""
from __future__ import annotations
import argparse, json, os, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
TMP = common.isolate()

import numpy as np, torch
from dataclasses import asdict
import lightning as L
from sklearn.metrics import roc_auc_score
from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
from mlkit.features import FeatureTransform
from mlkit.model import build_network, net_config
from mlkit.runs import evaluate_predictor
from mlkit.train import TrainParams, ArrayData, batch_loader, TabularModule, fit, member_loss, _quiet_lightning
from mlkit.data import split_rows

def prepare(p: TrainParams):
    train, test = load_adult()
    schema = infer_schema(train, ADULT_TARGET, ADULT_SENSITIVE)
    df = train[train[schema.target].notna()]
    tr, va = split_rows(df, schema.target, p.val_fraction, p.seed, schema.task != 'regression')
    ft = FeatureTransform.fit(tr, schema, use_sensitive=p.use_sensitive, min_count=p.min_count, n_bins=p.n_bins)
    cfg = net_config(ft, **asdict(p))
    dtr = ArrayData(ft.transform(tr), ft.encode_target(tr[schema.target]))
    dva = ArrayData(ft.transform(va), ft.encode_target(va[schema.target]))
    return train, test, schema, cfg, dtr, dva

class EpochTimer(L.Callback):
    "Wall time of each epoch: training batches plus the validation pass (on_train_epoch_end runs after validation)."
    def __init__(self): self.times, self._t = [], None
    def on_train_epoch_start(self, trainer, module): self._t = time.perf_counter()
    def on_train_epoch_end(self, trainer, module): self.times.append(time.perf_counter() - self._t)

def run_lightning(cfg, dtr, dva, p: TrainParams, epochs: int, with_fit_callbacks: bool):
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    import tempfile
    t0, c0 = time.perf_counter(), time.process_time()
    L.seed_everything(p.seed, workers=True, verbose=False)
    module = TabularModule(cfg, p.lr, p.weight_decay, epochs)
    timer = EpochTimer()
    root = tempfile.mkdtemp(prefix='lt-', dir=TMP)
    cbs = [timer]
    if with_fit_callbacks:
        cbs += [EarlyStopping('val_loss', patience=10_000, mode='min'),
                ModelCheckpoint(dirpath=f'{root}/checkpoints', monitor='val_loss', mode='min', save_top_k=1, filename='best-{epoch}')]
    trainer = L.Trainer(max_epochs=epochs, accelerator='cpu', devices=1, precision=p.precision, deterministic=True,
                        logger=False, callbacks=cbs, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=with_fit_callbacks, log_every_n_steps=10, default_root_dir=root,
                        num_sanity_val_steps=0)
    trainer.fit(module, batch_loader(dtr, p.batch_size, True, p.seed), batch_loader(dva, 4096, False))
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return dict(total_s=total, cpu_s=cpu, epochs=trainer.current_epoch, epoch_s=timer.times, val_loss=m.get('val_loss'), val_auc=m.get('val_auc'))

def run_plain(cfg, dtr, dva, p: TrainParams, epochs: int):
    "The hand-written equivalent of TabularModule under Trainer(deterministic=True)."
    t0, c0 = time.perf_counter(), time.process_time()
    L.seed_everything(p.seed, workers=True, verbose=False)
    torch.use_deterministic_algorithms(True)
    net = build_network(cfg)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    opt = torch.optim.AdamW(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    tl, vl = batch_loader(dtr, p.batch_size, True, p.seed), batch_loader(dva, 4096, False)
    times, val_loss, val_auc = [], None, None
    for _ in range(epochs):
        te = time.perf_counter()
        net.train()
        tot, n = torch.zeros(()), 0
        for x_num, x_cat, y in tl:
            loss = member_loss(loss_fn, net.heads(x_num, x_cat) if hasattr(net, 'heads') else net(x_num, x_cat), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.detach() * len(y); n += len(y)     # the epoch-mean train_loss Lightning logs
        train_loss = float(tot / n)
        net.eval()
        outs, ys, vsum, vn = [], [], 0.0, 0
        with torch.no_grad():
            for x_num, x_cat, y in vl:
                out = net(x_num, x_cat)
                vsum += float(loss_fn(out, y)) * len(y); vn += len(y)
                outs.append(out); ys.append(y)
        out, y = torch.cat(outs), torch.cat(ys)
        pr, yy = torch.sigmoid(out).numpy(), y.numpy()
        val_acc = float(((pr >= 0.5) == (yy == 1)).mean()); val_auc = float(roc_auc_score(yy, pr)); val_loss = vsum / vn
        sched.step()
        times.append(time.perf_counter() - te)
    return dict(total_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0, epochs=epochs, epoch_s=times, val_loss=val_loss, val_auc=val_auc,
                train_loss=train_loss)

# Lightning functions whose cumulative time is overhead relative to the plain loop (not the model's own compute)
OVERHEAD_PARTS = {
    'self.log(train_loss) per step': ('lightning/pytorch/core/module.py', 'log'),
    'training loop on_advance_end (step metrics, callbacks)': ('loops/training_epoch_loop.py', 'on_advance_end'),
    'batch fetching, DataLoader work included (CombinedLoader, _DataFetcher)': ('loops/fetchers.py', '__next__'),
    'callback hook dispatch': ('trainer/call.py', '_call_callback_hooks'),
    'zero_grad through the strategy': ('loops/optimization/automatic.py', '_optimizer_zero_grad'),
    'apply_to_collection (all callers)': ('lightning_utilities/core/apply_func.py', 'apply_to_collection'),
}

def overhead_profile(cfg, dtr, dva, p, epochs=2) -> dict:
    import cProfile, pstats
    out = {}
    for name, f in (('plain', lambda: run_plain(cfg, dtr, dva, p, epochs)), ('lightning', lambda: run_lightning(cfg, dtr, dva, p, epochs, False))):
        pr = cProfile.Profile(); t0 = time.perf_counter(); pr.enable(); f(); pr.disable()
        out[name] = (time.perf_counter() - t0, pstats.Stats(pr).stats)
    parts = {}
    for label, (path, fn) in OVERHEAD_PARTS.items():
        ct = sum(v[3] for (file, _, func), v in out['lightning'][1].items() if file.endswith(path) and func == fn)
        parts[label] = round(ct / epochs, 4)
    return dict(epochs=epochs, plain_s_per_epoch=round(out['plain'][0] / epochs, 4), lightning_s_per_epoch=round(out['lightning'][0] / epochs, 4),
                gap_s_per_epoch=round((out['lightning'][0] - out['plain'][0]) / epochs, 4), parts_s_per_epoch=parts,
                note='under cProfile (which inflates Python-heavy code); parts overlap (apply_to_collection is also inside self.log)')

# the previous default network and its training parameters (before TabM), for the "before" row
PREVIOUS_DEFAULT = dict(network='mlp', lr=1e-3, weight_decay=1e-4, dropout=0.15, max_epochs=30, patience=4, hidden='256,256',
                        d_cat=16, d_num=16, n_bins=48)
SWEEP_BEST = common.KEEP/'sweep_adult_best.json'
GOALS = dict(ratio_max=1.05, default_test_accuracy_min=0.870, default_test_roc_auc_min=0.927, default_fit_seconds_max=60.0)

def compare(a, p, cfg, dtr, dva, res: dict, table: list):
    "Lightning (bare, fit callbacks) against the plain loop: s/epoch, CPU s/epoch and ratios, into `res` and `table`."
    runs = dict(lightning_bare=[], lightning_fit_callbacks=[], plain=[])
    # a warm-up epoch of each, unmeasured (first-touch allocations, lazy imports)
    run_lightning(cfg, dtr, dva, p, 1, False); run_plain(cfg, dtr, dva, p, 1)
    variants = [('lightning_bare', lambda: run_lightning(cfg, dtr, dva, p, a.epochs, False)),
                ('plain', lambda: run_plain(cfg, dtr, dva, p, a.epochs)),
                ('lightning_fit_callbacks', lambda: run_lightning(cfg, dtr, dva, p, a.epochs, True))]
    for i in range(a.repeats):
        # the order rotates each repeat, so no variant always runs first (or right after another) when load drifts
        for name, f in variants[i % 3:] + variants[:i % 3]:
            load = os.getloadavg()[0]
            r = f(); r['load_1m_before'] = round(load, 2); runs[name].append(r)
            print(f"repeat {i + 1} {name}: {r['total_s']:.2f}s total, {r['total_s'] / a.epochs:.3f}s/epoch, "
                  f"per-epoch {[round(t, 3) for t in r['epoch_s']]}, val_loss {r['val_loss']:.4f}, load {load:.2f}", flush=True)
    per_epoch = {k: common.stats([r['total_s'] / a.epochs for r in v]) for k, v in runs.items()}          # incl. set-up
    cpu_epoch = {k: common.stats([r['cpu_s'] / a.epochs for r in v]) for k, v in runs.items()}            # process CPU time
    loop_epoch = {k: common.stats([float(np.median(r['epoch_s'])) for r in v]) for k, v in runs.items()}  # epochs only
    all_epochs = {k: common.stats([t for r in v for t in r['epoch_s']]) for k, v in runs.items()}       # every epoch pooled
    ratio = lambda a_, b_: round(a_ / b_, 4)
    res.update(
        seconds_per_epoch_incl_setup=per_epoch, seconds_per_epoch_loop_only=loop_epoch,
        ratio_lightning_bare_vs_plain=ratio(per_epoch['lightning_bare']['median'], per_epoch['plain']['median']),
        ratio_lightning_fit_callbacks_vs_plain=ratio(per_epoch['lightning_fit_callbacks']['median'], per_epoch['plain']['median']),
        ratio_loop_only_lightning_bare_vs_plain=ratio(loop_epoch['lightning_bare']['median'], loop_epoch['plain']['median']),
        ratio_per_repeat_bare_vs_plain=common.stats([l['total_s'] / q['total_s'] for l, q in zip(runs['lightning_bare'], runs['plain'])]),
        cpu_seconds_per_epoch=cpu_epoch,
        cpu_ratio_lightning_bare_vs_plain=ratio(cpu_epoch['lightning_bare']['median'], cpu_epoch['plain']['median']),
        cpu_ratio_lightning_fit_callbacks_vs_plain=ratio(cpu_epoch['lightning_fit_callbacks']['median'], cpu_epoch['plain']['median']),
        final_val_loss={k: [round(r['val_loss'], 5) for r in v] for k, v in runs.items()},
        seconds_per_epoch_all_epochs=all_epochs, best_epoch_s={k: v['min'] for k, v in all_epochs.items()},
        ratio_all_epochs_median_bare_vs_plain=ratio(all_epochs['lightning_bare']['median'], all_epochs['plain']['median']),
        runs={k: [dict(total_s=round(r['total_s'], 4), cpu_s=round(r['cpu_s'], 4), epoch_s=[round(t, 4) for t in r['epoch_s']], load_1m_before=r['load_1m_before'])
                  for r in v] for k, v in runs.items()},
    )
    g = GOALS['ratio_max']
    table += [
        dict(metric='Lightning (bare) s/epoch', value=common.spread(per_epoch['lightning_bare'])),
        dict(metric='Lightning (fit callbacks: early stopping + checkpoint) s/epoch', value=common.spread(per_epoch['lightning_fit_callbacks'])),
        dict(metric='plain PyTorch loop s/epoch', value=common.spread(per_epoch['plain'])),
        dict(metric='ratio Lightning bare / plain', value=f"{res['ratio_lightning_bare_vs_plain']:.3f}x "
             f"(per repeat {common.spread(res['ratio_per_repeat_bare_vs_plain'])})", goal=f'<= {g}x',
             met=res['ratio_lightning_bare_vs_plain'] <= g),
        dict(metric='ratio Lightning fit callbacks / plain (also writes a checkpoint file whenever val_loss improves; the plain loop writes none)',
             value=f"{res['ratio_lightning_fit_callbacks_vs_plain']:.3f}x"),
        dict(metric='process CPU s/epoch: Lightning bare / fit callbacks / plain',
             value=f"{common.spread(cpu_epoch['lightning_bare'])} / {common.spread(cpu_epoch['lightning_fit_callbacks'])} / {common.spread(cpu_epoch['plain'])}"),
        dict(metric='ratio by process CPU time, Lightning bare / plain', value=f"{res['cpu_ratio_lightning_bare_vs_plain']:.3f}x",
             goal=f'<= {g}x', met=res['cpu_ratio_lightning_bare_vs_plain'] <= g),
        dict(metric='ratio by process CPU time, Lightning fit callbacks / plain', value=f"{res['cpu_ratio_lightning_fit_callbacks_vs_plain']:.3f}x"),
        dict(metric='ratio, epoch loop only (set-up excluded), bare / plain', value=f"{res['ratio_loop_only_lightning_bare_vs_plain']:.3f}x"),
        dict(metric='every epoch pooled: Lightning bare / plain s/epoch', value=f"{common.spread(all_epochs['lightning_bare'])} / "
             f"{common.spread(all_epochs['plain'])} = {res['ratio_all_epochs_median_bare_vs_plain']:.3f}x"),
    ]
    if not a.skip_profile:
        print("profiling where Lightning's extra time goes (cProfile, 1 epoch each) ...", flush=True)
        res['lightning_overhead_profile'] = op = overhead_profile(cfg, dtr, dva, p, epochs=1)
        table.append(dict(metric="where Lightning's extra time goes (cProfile, s/epoch; inflates Python overhead)",
                          value=f"gap {op['gap_s_per_epoch']:.3f} s/epoch: " + '; '.join(f"{k} {v:.3f}" for k, v in op['parts_s_per_epoch'].items())))

def _fit_row(name, params: TrainParams, train, test, schema, a) -> dict:
    "fit() on the whole training file, evaluated on the test file: seconds, epochs, accuracy, AUC."
    if a.fit_limit_rows or a.fit_max_epochs:      # smoke runs only
        params = TrainParams.make(**{**asdict(params), 'limit_rows': a.fit_limit_rows or params.limit_rows,
                                     'max_epochs': a.fit_max_epochs or params.max_epochs})
    load = os.getloadavg()[0]
    print(f"{name}: fit() on the training file (load {load:.2f}) ...", flush=True)
    t0 = time.perf_counter()
    fr = fit(train, schema, params, progress=False, logger=False)
    wall = time.perf_counter() - t0
    m, _ = evaluate_predictor(fr.predictor, test, schema)
    row = dict(model=name, fit_seconds=round(wall, 2), fit_result_seconds=fr.seconds, epochs=fr.epochs, test_accuracy=round(m['accuracy'], 5),
               test_roc_auc=round(m['roc_auc'], 5), train_rows=fr.train_rows, val_rows=fr.val_rows, test_rows=m['rows'],
               seconds_per_epoch=round(wall / max(fr.epochs, 1), 3), val_metrics={k: round(v, 5) for k, v in fr.val_metrics.items()},
               load_1m_before=round(load, 2), torch_threads=torch.get_num_threads(),
               params={k: v for k, v in fr.params.items() if k in ('network', 'k', 'd_block', 'n_blocks', 'hidden', 'lr', 'weight_decay',
                       'dropout', 'd_num', 'd_cat', 'n_bins', 'max_epochs', 'patience', 'batch_size', 'effective_max_epochs',
                       'effective_patience', 'limit_rows')})
    print(f"{name}: {wall:.1f}s, {fr.epochs} epochs, test accuracy {row['test_accuracy']:.4f}, AUC {row['test_roc_auc']:.4f}", flush=True)
    return row

def side_by_side(a, train, test, schema, res: dict, table: list, notes: list):
    "The Adult table: previous default, new default, sweep best, logistic regression, HistGradientBoosting."
    from mlkit.metrics import fit_baselines
    from dataclasses import replace
    if a.fit_threads: torch.set_num_threads(a.fit_threads)
    else: torch.set_num_threads(res['params']['torch_default_threads'])
    rows = {}
    rows['previous_default_mlp'] = _fit_row('previous default (MLP)', TrainParams.make(**PREVIOUS_DEFAULT), train, test, schema, a)
    rows['default_tabm'] = _fit_row('new default (TabM)', TrainParams(), train, test, schema, a)
    best_file = Path(a.sweep_best)
    if best_file.exists():
        best = json.loads(best_file.read_text())
        bp = {**best['params'], 'limit_rows': 0}
        rows['sweep_best'] = _fit_row(f"sweep best (trial {best.get('trial')})", TrainParams.make(**bp), train, test, schema, a)
        rows['sweep_best'].update(sweep=dict(file=str(best_file.relative_to(common.ROOT) if best_file.is_relative_to(common.ROOT) else best_file),
                                             study=best.get('study'), trial=best.get('trial'), cv_value=best.get('value'),
                                             cv_std=best.get('std'), metric=best.get('metric'), n_trials=best.get('n_trials'),
                                             params=best['params']))
    else:
        rows['sweep_best'] = dict(model='sweep best', missing=f"{best_file} does not exist: run bench/bench_sweep.py first")
        print(rows['sweep_best']['missing'], flush=True)
    load = os.getloadavg()[0]
    print(f"baselines (fit_baselines; load {load:.2f}) ...", flush=True)
    tr = train.iloc[:a.fit_limit_rows] if a.fit_limit_rows else train
    b = fit_baselines(tr, test, schema)
    for key, name in (('linear', 'logistic regression'), ('hist_gradient_boosting', 'HistGradientBoosting')):
        m = b.get(key, {})
        rows[key] = dict(model=name, fit_seconds=m.get('fit_seconds'), epochs=None, test_accuracy=_r5(m.get('accuracy')),
                         test_roc_auc=_r5(m.get('roc_auc')), load_1m_before=round(load, 2), error=m.get('error'))
    res['adult_side_by_side'] = rows
    # the table, one row per model, then the goals
    for key, r in rows.items():
        if r.get('missing'): table.append(dict(metric=f"Adult: {r['model']}", value=r['missing'])); continue
        ep = f", {r['epochs']} epochs" if r.get('epochs') is not None else ''
        table.append(dict(metric=f"Adult: {r['model']}", value=f"acc {_f4(r['test_accuracy'])}, AUC {_f4(r['test_roc_auc'])}, "
                                                            f"fit {_secs(r['fit_seconds'])} s{ep} (load {r['load_1m_before']})"))
    d, h = rows['default_tabm'], rows['hist_gradient_boosting']
    table += [dict(metric='default: test accuracy', value=_f4(d['test_accuracy']), goal=f">= {GOALS['default_test_accuracy_min']}",
                   met=d['test_accuracy'] >= GOALS['default_test_accuracy_min']),
              dict(metric='default: test ROC AUC', value=_f4(d['test_roc_auc']), goal=f">= {GOALS['default_test_roc_auc_min']}",
                   met=d['test_roc_auc'] >= GOALS['default_test_roc_auc_min']),
              dict(metric='default: fit time on the whole training file', value=f"{d['fit_seconds']:.1f} s ({d['epochs']} epochs, "
                   f"{d['torch_threads']} torch threads)", goal=f"<= {GOALS['default_fit_seconds_max']:.0f} s",
                   met=d['fit_seconds'] <= GOALS['default_fit_seconds_max'])]
    if h.get('test_accuracy') is not None:
        beats = d['test_accuracy'] > h['test_accuracy'] and d['test_roc_auc'] > h['test_roc_auc']
        res['default_beats_hgb'] = beats
        table.append(dict(metric='default beats HistGradientBoosting (accuracy and AUC)', goal='aim, not a goal',
                          value=f"{'yes' if beats else 'no'}: accuracy {d['test_accuracy'] - h['test_accuracy']:+.4f}, "
                                f"AUC {d['test_roc_auc'] - h['test_roc_auc']:+.4f}"))
    md = ['Adult side by side (train file -> official test file, 16,281 rows; each network fit once by `fit()` on the whole training '
          'file with its own 15% validation split and early stopping):', '',
          '| model | fit s | epochs | test accuracy | test ROC AUC | load (1 min) before |', '|---|---|---|---|---|---|']
    for r in rows.values():
        if r.get('missing'): md.append(f"| {r['model']} | {r['missing']} | | | | |"); continue
        md.append(f"| {r['model']} | {_secs(r['fit_seconds'])} | {r['epochs'] if r.get('epochs') is not None else '-'} | "
                  f"{_f4(r['test_accuracy'])} | {_f4(r['test_roc_auc'])} | {r['load_1m_before']} |")
    notes.append('\n'.join(md))
    if a.fit_limit_rows or a.fit_max_epochs:
        notes.append(f"SMOKE RUN: fits limited to {a.fit_limit_rows or 'all'} rows, {a.fit_max_epochs or 'auto'} epochs: not comparable.")

def _secs(v): return '-' if v is None else f'{v:.1f}' if v >= 10 else f'{v:.2f}'
def _r5(v): return None if v is None else round(float(v), 5)
def _f4(v): return '-' if v is None else f'{v:.4f}'

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--epochs', type=int, default=2, help='fixed epochs per run of the Lightning / plain comparison')
    ap.add_argument('--repeats', type=int, default=6, help='interleaved repeats of the comparison (a multiple of 3 rotates evenly)')
    ap.add_argument('--threads', type=int, default=1, help='torch intra-op threads of the comparison (0: torch default, one per core)')
    ap.add_argument('--fit-threads', type=int, default=0, help='torch threads of the side-by-side fits (0: torch default)')
    ap.add_argument('--skip-compare', action='store_true', help='skip the Lightning / plain comparison')
    ap.add_argument('--skip-profile', action='store_true', help="skip the cProfile of Lightning's overhead")
    ap.add_argument('--skip-fit', action='store_true', help='skip the Adult side-by-side table')
    ap.add_argument('--sweep-best', default=str(SWEEP_BEST), help='best.json of a sweep on Adult (default bench/results/sweep_adult_best.json)')
    ap.add_argument('--fit-limit-rows', type=int, default=0, help=argparse.SUPPRESS)     # smoke runs of the side-by-side code only
    ap.add_argument('--fit-max-epochs', type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    t_start = time.perf_counter()
    default_threads = torch.get_num_threads()
    if a.threads: torch.set_num_threads(a.threads)
    _quiet_lightning()
    p = TrainParams()
    train, test, schema, cfg, dtr, dva = prepare(p)
    print(f"training rows {len(dtr)}, validation rows {len(dva)}, batch {p.batch_size}, {a.epochs} epochs x {a.repeats} repeats, "
          f"torch threads {torch.get_num_threads()}, network {p.network}", flush=True)
    res = dict(params=dict(epochs=a.epochs, repeats=a.repeats, batch_size=p.batch_size, lr=p.lr, weight_decay=p.weight_decay,
                           train_rows=len(dtr), val_rows=len(dva), steps_per_epoch=-(-len(dtr) // p.batch_size),
                           torch_threads=torch.get_num_threads(), torch_default_threads=default_threads, fit_threads=a.fit_threads or default_threads,
                           deterministic=True, net={k: v for k, v in cfg.items() if k in ('network', 'k', 'd_block', 'n_blocks', 'd_num', 'dropout')}
                                                   | dict(n_bins=p.n_bins, n_params=sum(x.numel() for x in build_network(cfg).parameters()))),
               goals=GOALS)
    table, notes = [], []
    if not a.skip_compare: compare(a, p, cfg, dtr, dva, res, table)
    res['compare_seconds'] = round(time.perf_counter() - t_start, 1)
    if not a.skip_fit: side_by_side(a, train, test, schema, res, table, notes)
    res['seconds'] = round(time.perf_counter() - t_start, 1)
    table.append(dict(metric='this script: wall time (comparison incl. data preparation / side by side)',
                      value=f"{res['seconds']:.0f} s ({res['compare_seconds']:.0f} / {res['seconds'] - res['compare_seconds']:.0f})"))
    res['table'] = table
    notes.insert(0, f"Comparison: the default network ({p.network}, {res['params']['net'].get('n_params'):,} parameters), {len(dtr):,} rows, "
                    f"batch {p.batch_size}, {a.epochs} fixed epochs (train + validation pass), {a.repeats} interleaved repeats after one "
                    f"warm-up epoch each; s/epoch = run wall time (incl. Trainer / optimizer set-up) / epochs. torch threads "
                    f"{res['params']['torch_threads']} for the comparison (default here {default_threads}): two OpenMP threads stall 10x "
                    "whenever another process takes a core, which would swamp the framework overhead being measured. The side-by-side "
                    f"fits use {res['params']['fit_threads']} threads (as `mlkit train` does). Wall time also counts the time other jobs "
                    "hold the core; process CPU time counts only each loop's work, so both are reported and judged.")
    res['notes'] = notes
    common.write_result('training', res)

if __name__ == '__main__':
    try: main()
    finally: common.cleanup(TMP)
