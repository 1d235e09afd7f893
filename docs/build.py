#!/usr/bin/env python
"""mlkit's notebook tests and documentation site, built offline (no Quarto).

    python docs/build.py exec [NB ...] [--workers 2]   execute notebooks (the notebook tests: `make nbtest`)
    python docs/build.py site [--workers 2]            the static site in _site/ (`make docs`)

`exec` runs every notebook of nbs/ and nbs/tutorials/ the way `nbdev_test` does (execnb's in-process shell, the
`tst_flags` of settings.ini skipped, `#| eval: false` skipped, each notebook from its own folder, 2 workers), after
nbdev's `add_show_docs` processor has put a `show_doc` cell after every exported definition, as `nbdev_docs` does.
The executed copies (outputs included) go to _build/executed/, never back into nbs/, with a manifest of what they
were executed from. A failing cell fails the run, naming the notebook, the cell and the error.

`site` re-executes only the notebooks whose source (or mlkit/, settings.ini) changed since their executed copy, then
renders: the front page (README.md: the one hand-written source; nbs/index.ipynb only includes it for Quarto), every
notebook in order with its outputs (nbdev's doc processors, then nbconvert HTML), an API reference of every symbol in
mlkit/_modidx.py (nbdev's `show_doc`), a CLI reference (the `--help` of every command and subcommand of
`mlkit.cli.make_parser()`), the operations guide and runbooks (docs/*.md, docs/runbooks/*.md, `mlkit.slo.RUNBOOKS`),
and the model card of the production model of MLKIT_HOME (else of a tiny model trained during the build). Every
local href and src of every page is checked (file and anchor); a broken one fails the build.

Notebooks run with MLKIT_HOME / MLKIT_REPORTS under $MLKIT_TEST_HOME (default .mlkit/test) and WANDB_MODE=disabled.
"""
from __future__ import annotations
import argparse, hashlib, html, json, multiprocessing as mp, os, re, shutil, subprocess, sys, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from urllib.parse import urlsplit, unquote

ROOT = Path(__file__).resolve().parents[1]
NBS, DOCS = ROOT/'nbs', ROOT/'docs'
BUILD = ROOT/'_build'
EXECUTED = BUILD/'executed'
HINTS = DOCS/'notebook_seconds.json'     # seconds each notebook took in a clean CI run: the order of a first execution
SITE = ROOT/'_site'
INCLUDE = re.compile(r'^\s*\{\{<\s*include\s+(\S+)\s*>\}\}\s*$')

def rel(p: Path) -> str: return Path(p).resolve().relative_to(ROOT).as_posix()

def sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for b in parts: h.update(hashlib.sha256(b).digest())
    return h.hexdigest()

def notebooks() -> list[Path]:
    "The notebooks that are pages and tests, in reading order: nbs/*.ipynb (index first), then nbs/tutorials/*.ipynb."
    top = sorted(NBS.glob('*.ipynb'), key=lambda p: (p.name != 'index.ipynb', p.name))
    return top + sorted((NBS/'tutorials').glob('*.ipynb'))

def lib_key() -> str:
    "What every executed notebook depends on besides itself: the library, its settings and the workflow notebooks."
    files = sorted([*(ROOT/'mlkit').rglob('*.py'), ROOT/'settings.ini', *(NBS/'workflows').glob('*.ipynb'),
                    *(ROOT/'bentos').glob('*.py')])
    return sha(*(rel(f).encode() + f.read_bytes() for f in files if '__pycache__' not in f.parts))

def nb_key(src: Path, lib: str) -> str: return sha(src.read_bytes(), lib.encode())

def is_include_only(src: Path) -> str|None:
    "The file a notebook only includes (`{{< include ../README.md >}}`, Quarto's include), else None."
    nb = json.loads(src.read_text())
    srcs = [''.join(c['source']).strip() for c in nb['cells'] if ''.join(c['source']).strip()]
    if len(srcs) == 1 and nb['cells'][0]['cell_type'] == 'markdown' and (m := INCLUDE.match(srcs[0])): return m.group(1)
    return None

# ---------------------------------------------------------------------------------------------------- execution
def _init_worker(env: dict):
    os.environ.update(env)
    os.environ['IN_TEST'] = '1'
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))

def execute(src: str, dst: str, skip_flags: list) -> dict:
    "Execute one notebook as nbdev_test does, show_doc cells added; write the executed copy to `dst`."
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.processors import add_show_docs
    from execnb.shell import CaptureShell
    from execnb.nbio import write_nb
    from fastcore.basics import str2bool
    from fastcore.xtras import working_directory
    import resource
    def cpu(): ru = resource.getrusage(resource.RUSAGE_CHILDREN); return time.process_time() + ru.ru_utime + ru.ru_stime
    src, dst, t0, c0 = Path(src), Path(dst), time.time(), cpu()
    if base := os.environ.get('MLKIT_TEST_BASE'):   # each notebook its own MLKIT_HOME and reports: no notebook sees another's models
        own = Path(base)/rel(src).removeprefix('nbs/').removesuffix('.ipynb').replace('/', '__')
        os.environ.update(MLKIT_HOME=str(own/'home'), MLKIT_REPORTS=str(own/'reports'))
        os.environ.pop('BENTOML_HOME', None)
    fm = getattr(NBProcessor(src, procs=FrontmatterProc, process=True).nb, 'frontmatter_', {}) or {}
    nb = NBProcessor(src, procs=add_show_docs, rm_directives=False, process=True).nb
    numbers, n = [], 0
    for c in nb.cells:
        if c.pop('has_sd', False): c.metadata['mlkit_docs'] = 'show_doc'; numbers.append(None)
        else: n += 1; numbers.append(n)
    state = {}
    def _no_eval(cell):
        if cell.cell_type != 'code' or cell.metadata.get('mlkit_docs'): return True
        if 'nbdev_export' + '(' in cell.source: return True
        direc = getattr(cell, 'directives_', {}) or {}
        if direc.get('eval:', [''])[0].lower() == 'false': return True
        if set(skip_flags) & direc.keys(): return True
        state['cell'] = cell
        return False
    error, doc_errors = None, []
    if not str2bool(fm.get('skip_exec', False)) and any(c.cell_type == 'code' for c in nb.cells):
        k = CaptureShell(src)
        k.run_cell('from nbdev.showdoc import show_doc')
        try:
            with working_directory(src.parent): k.run_all(nb, exc_stop=True, preproc=_no_eval)
        except BaseException as e:
            c = state.get('cell')
            i = next((j for j, x in enumerate(nb.cells) if x is c), -1)
            where = (f"cell {numbers[i]} of {n} (id {c.get('id', '?')})" if i >= 0 and numbers[i] else
                     f"the show_doc cell after cell {max(x or 0 for x in numbers[:i+1])}" if i >= 0 else 'start-up')
            first = '\n'.join('    ' + l for l in (c.source.splitlines()[:4] if c is not None else []))
            error = f"{rel(src)}: {where} failed: {type(e).__name__}: {str(e).strip()[:500]}\n{first}\n{k.prettytb(fname=src)}"
        if error is None:   # the docs of every exported definition, with the notebook's final names
            with working_directory(src.parent):
                for c in nb.cells:
                    if not c.metadata.get('mlkit_docs'): continue
                    k.exc = None
                    k.cell(c)
                    if k.exc is not None:
                        name = re.match(r'show_doc\((.*)\)', c.source).group(1)
                        doc_errors.append(f"{rel(src)}: show_doc({name}) failed: {type(k.exc).__name__}: {k.exc}")
                        try: md = fallback_doc(_lookup(k.user_ns, name), name)
                        except Exception: md = f'### {name}'
                        c.outputs = [dict(output_type='execute_result', execution_count=None, metadata={},
                                          data={'text/markdown': md})]
                        k.exc = None
    for c in nb.cells: c.pop('directives_', None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, dst)
    return dict(nb=rel(src), ok=error is None, secs=round(time.time() - t0, 1), cpu=round(cpu() - c0, 1), error=error,
                doc_errors=doc_errors)

def fallback_doc(obj, name: str) -> str:
    "Signature and docstring without evaluating annotations: for a symbol nbdev's show_doc cannot document."
    import inspect
    try: sig = str(inspect.signature(obj))
    except (TypeError, ValueError): sig = ''
    kind = 'class ' if inspect.isclass(obj) else 'def '
    return f"---\n\n### {name}\n\n```python\n{kind}{name.split('.')[-1]}{sig}\n```\n\n{inspect.getdoc(obj) or ''}\n"

def _lookup(ns: dict, name: str):
    obj = ns[name.split('.')[0]]
    for a in name.split('.')[1:]: obj = getattr(obj, a)
    return obj

def test_env() -> dict:
    "The notebooks' environment: everything under $MLKIT_TEST_HOME (default .mlkit/test), each notebook in its own folder."
    home = Path(os.environ.get('MLKIT_TEST_HOME') or ROOT/'.mlkit'/'test')
    return dict(MLKIT_HOME=str(home/'home'), MLKIT_REPORTS=str(home/'reports'), MLKIT_TEST_BASE=str(home), WANDB_MODE='disabled')

def run_notebooks(srcs: list[Path], workers: int = 2) -> bool:
    "Execute `srcs` on `workers` processes, slowest first (by the last recorded times); record what passed."
    from nbdev.config import get_config
    skip = get_config().get('tst_flags', '').split()
    EXECUTED.mkdir(parents=True, exist_ok=True)
    mpath = EXECUTED/'manifest.json'
    manifest = json.loads(mpath.read_text()) if mpath.exists() else {}
    # slowest first: the last recorded times, else docs/notebook_seconds.json (times of a clean CI run: a fresh clone has no manifest)
    times = {**(json.loads(HINTS.read_text()) if HINTS.exists() else {}), **{k: v.get('secs', 0) for k, v in manifest.items()}}
    srcs = sorted(srcs, key=lambda p: -times.get(rel(p), p.stat().st_size / 1e4))
    lib, env, t0, failed = lib_key(), test_env(), time.time(), []
    if workers > 1:    # one math thread per notebook (and the processes it starts), as pytest's workers: no oversubscribed, spinning OpenMP threads
        env.update({k: os.environ.get(k, '1') for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')})
    for v in env.values():
        if '/' in v: Path(v).mkdir(parents=True, exist_ok=True)
    print(f"executing {len(srcs)} notebooks on {workers} workers (MLKIT_HOME, MLKIT_REPORTS: {env['MLKIT_TEST_BASE']}/<notebook>/)", flush=True)
    ctx = mp.get_context('fork')
    with ProcessPoolExecutor(max(1, workers), mp_context=ctx, initializer=_init_worker, initargs=(env,)) as ex:
        futs = {ex.submit(execute, str(p), str(EXECUTED/rel(p)), skip): p for p in srcs}
        for f in as_completed(futs):
            p = futs[f]
            try: r = f.result()
            except BaseException as e: r = dict(nb=rel(p), ok=False, secs=0, cpu=0, error=f"{rel(p)}: worker died: {e!r}")
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['secs']:6.1f}s (cpu {r.get('cpu', 0):5.1f}s)  {r['nb']}", flush=True)
            for w in r.get('doc_errors', []): print(f"     warning: {w}", flush=True)
            if r['ok']: manifest[r['nb']] = dict(key=nb_key(p, lib), secs=r['secs'], cpu=r.get('cpu'), doc_errors=r.get('doc_errors', []))
            else: manifest.pop(r['nb'], None); failed.append(r)
    mpath.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    load = os.getloadavg()[0]
    print(f"{len(srcs) - len(failed)} notebooks passed, {len(failed)} failed in {time.time() - t0:.0f}s "
          f"(1-minute load average at the end: {load:.1f})", flush=True)
    for r in failed: print('\n' + r['error'], file=sys.stderr)
    return not failed

def nbdev_process(src: str) -> dict:
    "nbdev's own processing for `nbdev_docs` (FilterDefaults: exec_show_docs...), the step before Quarto renders."
    import warnings
    from nbdev.processors import FilterDefaults
    from execnb.nbio import read_nb
    t0 = time.time()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        try: FilterDefaults()(read_nb(src)); error = None
        except Exception as e: error = f"{rel(src)}: {str(e).strip()[:600]}" + (f" ({type(e.__cause__).__name__}: {e.__cause__})" if e.__cause__ else '')
    mixed = [str(x.message).split('---')[1].strip().splitlines()[0] for x in w if 'imports and other code' in str(x.message)]
    return dict(nb=rel(src), ok=error is None, error=error, mixed=mixed, secs=round(time.time() - t0, 1))

def nbdev_check(srcs: list[Path], workers: int = 2) -> bool:
    "Run nbdev_docs' notebook processing on every notebook (no Quarto needed): what would stop `nbdev_docs`."
    env, failed = test_env(), 0
    with ProcessPoolExecutor(max(1, workers), mp_context=mp.get_context('fork'), initializer=_init_worker, initargs=(env,)) as ex:
        for f in as_completed([ex.submit(nbdev_process, str(p)) for p in srcs]):
            r = f.result()
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['secs']:6.1f}s  {r['nb']}" +
                  (f"  ({len(r['mixed'])} cells mix imports with other code)" if r['mixed'] else ''), flush=True)
            for m in r['mixed']: print(f"       mixed cell: {m[:100]}")
            if not r['ok']: failed += 1; print('       ' + r['error'].replace('\n', '\n       '), flush=True)
    print(f"nbdev_docs processing: {len(srcs) - failed} notebooks ok, {failed} failed")
    return not failed

def stale(srcs: list[Path]) -> list[Path]:
    mpath = EXECUTED/'manifest.json'
    manifest = json.loads(mpath.read_text()) if mpath.exists() else {}
    lib = lib_key()
    return [p for p in srcs if manifest.get(rel(p), {}).get('key') != nb_key(p, lib) or not (EXECUTED/rel(p)).exists()]

# ---------------------------------------------------------------------------------------------------- pages
class Page:
    "One page of the site: its output path (relative to _site), title, nav section, body HTML, and source file."
    def __init__(self, out, title, section, body, source=None):
        self.out, self.title, self.section, self.body, self.source = out, title, section, body, source

def nb_page_name(src: Path) -> str:
    "nbdev's page name: nbs/00_config.ipynb -> config.html, nbs/tutorials/x.ipynb -> tutorials/x.html."
    r = src.relative_to(NBS)
    return r.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', r.name.lower())).with_suffix('.html').as_posix()

def md_page_name(src: Path) -> str:
    r = src.resolve().relative_to(ROOT)
    if r.as_posix() == 'README.md': return 'index.html'
    if r.parts[0] == 'docs': r = r.relative_to('docs')
    return r.with_suffix('.html').as_posix()

def _highlight(code, lang, attrs):
    from pygments import highlight
    from pygments.lexers import get_lexer_by_name
    from pygments.formatters import HtmlFormatter
    from pygments.util import ClassNotFound
    try: lexer = get_lexer_by_name(lang or 'text')
    except ClassNotFound: lexer = get_lexer_by_name('text')
    return highlight(code, lexer, HtmlFormatter(nowrap=False))

def markdown(text: str) -> str:
    from markdown_it import MarkdownIt
    md = MarkdownIt('commonmark', {'html': True, 'highlight': _highlight}).enable(['table', 'strikethrough'])
    return f'<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown md-page">{md.render(text)}</div>'

def md_title(text: str, default: str) -> str:
    m = re.search(r'^#\s+(.+)$', text, re.M)
    return m.group(1).strip().strip('`') if m else default

_ATTR = re.compile(r'\{target="_blank"[^}]*\}')

def render_notebook(src: Path) -> Page:
    "An executed notebook through nbdev's doc processors, then nbconvert's HTML exporter (outputs kept)."
    import nbformat
    from execnb.nbio import read_nb, nb2dict
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from nbdev.process import NBProcessor
    from nbdev.processors import (populate_language, strip_ansi, hide_line, filter_stream_, rm_header_dash, rm_export,
                                  hide_, add_links, strip_hidden_metadata)
    nb = read_nb(EXECUTED/rel(src))
    NBProcessor(nb=nb, procs=[populate_language, strip_ansi, hide_line, filter_stream_, rm_header_dash, rm_export, hide_,
                              add_links, strip_hidden_metadata], process=True)
    d = nb2dict(nb)
    title = src.stem
    for c in d['cells']:
        c.get('metadata', {}).pop('language', None)
        s = ''.join(c.get('source', []))
        if c['cell_type'] == 'markdown' and title == src.stem and (m := re.match(r'\s*#\s+(.+)', s)): title = m.group(1).strip()
        if c.get('metadata', {}).get('mlkit_docs') == 'show_doc' or re.match(r'\s*show_doc\(', s):
            c['metadata'].setdefault('tags', []).append('remove_input')
        for o in c.get('outputs', []):
            md = o.get('data', {}).get('text/markdown')
            if md is not None: o['data']['text/markdown'] = _ATTR.sub('', ''.join(md) if isinstance(md, list) else md)
    d['nbformat'], d['nbformat_minor'] = 4, max(d.get('nbformat_minor', 5), 5)
    node = nbformat.reads(json.dumps(d), as_version=4)
    ex = HTMLExporter(template_name='basic', exclude_anchor_links=True, exclude_input_prompt=True, exclude_output_prompt=True)
    ex.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}, enabled=True), enabled=True)
    body, _ = ex.from_notebook_node(node)
    section = 'Tutorials' if src.parent.name == 'tutorials' else 'Notebooks'
    return Page(nb_page_name(src), title, section, body, src)

def render_markdown(src: Path, section: str, out: str|None = None, title: str|None = None) -> Page:
    text = src.read_text()
    return Page(out or md_page_name(src), title or md_title(text, src.stem), section, markdown(text), src)

def _resolvable(obj):
    "`obj`, or for a function of a module that imports pandas/numpy lazily a copy whose globals also hold `pd`/`np`, so show_doc can evaluate its annotations."
    import types, functools, importlib
    f = getattr(obj, '__func__', obj)
    if not isinstance(f, types.FunctionType) or all(k in f.__globals__ for k in ('pd', 'np')): return obj
    g = {**f.__globals__, **{k: importlib.import_module(m) for k, m in (('pd', 'pandas'), ('np', 'numpy')) if k not in f.__globals__}}
    c = types.FunctionType(f.__code__, g, f.__name__, f.__defaults__, f.__closure__)
    functools.update_wrapper(c, f); del c.__wrapped__; c.__kwdefaults__ = f.__kwdefaults__
    return c

def api_page(errors: list, warnings: list) -> Page:
    "Every symbol of mlkit/_modidx.py through nbdev's show_doc, grouped by module."
    import importlib
    from nbdev.showdoc import show_doc
    modidx = importlib.import_module('mlkit._modidx').d['syms']
    parts, n = ['# API reference\n\nEvery symbol `nbdev_export` wrote to `mlkit/` (from `mlkit/_modidx.py`), with its '
                'signature and docstring (nbdev\'s `show_doc`). Each module is generated from the notebook named beside it.\n'], 0
    html_parts = []
    toc = []
    for mod, syms in modidx.items():
        m = importlib.import_module(mod)
        page = next(iter(syms.values()))[0].split('#')[0] if syms else ''
        toc.append(f'<li><a href="#{mod}"><code>{mod}</code></a></li>')
        html_parts.append(f'<h2 id="{mod}"><code>{mod}</code></h2><p>Notebook page: <a href="{page}">{page}</a></p>')
        private = lambda f: any(part.startswith('_') and not part.startswith('__') for part in f[len(mod) + 1:].split('.'))
        ordered = sorted(syms, key=private)
        for full in ordered:
            if private(full) and not any(private(f) for f in ordered[:ordered.index(full)]):
                html_parts.append(f'<h3 class="api-internal" id="{mod}-internal">{mod}: internal helpers</h3>'
                                  '<p>Names starting with <code>_</code>: exported for the modules that use them, not a public API.</p>')
            obj = m
            try:
                for a in full[len(mod) + 1:].split('.'): obj = getattr(obj, a)
                doc = show_doc(_resolvable(obj), name=full[len(mod) + 1:], title_level=3)
                md = _ATTR.sub('', doc._repr_markdown_() if doc is not None else f'### {full}')
            except AttributeError as e:
                errors.append(f"api: {full} is in mlkit/_modidx.py but not in {mod}: {e}"); continue
            except Exception as e:
                warnings.append(f"api: show_doc({full}) failed ({type(e).__name__}: {e}); shown with inspect's signature")
                md = fallback_doc(obj, full[len(mod) + 1:])
            html_parts.append(f'<section class="api-symbol" id="{full}">{markdown(md)}</section>'); n += 1
    body = markdown(parts[0]) + '<ul class="api-toc">' + ''.join(toc) + '</ul>' + ''.join(html_parts)
    missing = [f for syms in modidx.values() for f in syms if f'id="{f}"' not in body]
    errors.extend(f"api: {f} is in mlkit/_modidx.py but not in the API reference" for f in missing)
    print(f"api reference: {n} symbols from {len(modidx)} modules", flush=True)
    return Page('api.html', 'API reference', 'Reference', body)

def cli_page() -> Page:
    "`--help` of every command and subcommand, from the parser the `mlkit` command uses."
    import argparse
    os.environ['COLUMNS'] = '100'
    from mlkit.cli import make_parser
    from mlkit.ops import EXIT_CODES
    out = ['# CLI reference\n\nGenerated from `mlkit.cli.make_parser()`: the `--help` of every command and subcommand.\n\n'
           'Exit codes (`mlkit.ops.EXIT_CODES`): ' + ', '.join(f'{k} {v}' for k, v in EXIT_CODES.items()) + '.\n']
    def walk(p, path):
        yield path, p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                seen = set()
                for name, sub in a.choices.items():
                    if id(sub) in seen: continue
                    seen.add(id(sub)); yield from walk(sub, path + [name])
    cmds = list(walk(make_parser(), ['mlkit']))
    out.append('\n'.join(f'- [`{" ".join(path)}`](#{"-".join(path)})' for path, _ in cmds[1:]) + '\n')
    for path, p in cmds:
        out.append(f'<h2 id="{"-".join(path)}"><code>{" ".join(path)}</code></h2>\n\n```text\n{p.format_help().rstrip()}\n```\n')
    print(f"cli reference: {len(cmds)} commands", flush=True)
    return Page('cli-reference.html', 'CLI reference', 'Reference', markdown('\n'.join(out)))

def runbooks_page(errors: list) -> Page:
    from mlkit.slo import RUNBOOKS
    rows = []
    for kind, name in RUNBOOKS.items():
        f = DOCS/'runbooks'/f'{name}.md'
        if not f.exists(): errors.append(f"mlkit.slo.RUNBOOKS[{kind!r}] names docs/runbooks/{name}.md, which does not exist")
        rows.append(f'| `{kind}` | [{name}](runbooks/{name}.md) |')
    others = [p for p in sorted((DOCS/'runbooks').glob('*.md')) if p.stem not in RUNBOOKS.values()]
    text = ('# Runbooks\n\nEvery alert `mlkit ops export` writes links to its runbook (`mlkit.slo.RUNBOOKS`: alert kind -> '
            'runbook):\n\n| alert | runbook |\n|---|---|\n' + '\n'.join(rows) + '\n\n' +
            ('Other runbooks: ' + ', '.join(f'[{p.stem}](runbooks/{p.name})' for p in others) + '\n\n' if others else '') +
            'Operations guide (multi-node training, schedulers, Kubernetes): [operations](operations.md).\n')
    return Page('runbooks.html', 'Runbooks', 'Operations', markdown(text), DOCS/'runbooks.md')

CARD_SNIPPET = r'''
import json, sys
from mlkit import registry
tag = registry.alias_target('production') if sys.argv[1] == 'production' else registry.resolve(sys.argv[1])
if tag is None: print(json.dumps(None)); sys.exit(0)
print(json.dumps(dict(tag=tag, card=registry.card(tag), aliases=registry.all_aliases(), history=registry.history('production')), default=str))
'''

def _card_of(ref: str, env: dict) -> dict|None:
    r = subprocess.run([sys.executable, '-c', CARD_SNIPPET, ref], env=env, capture_output=True, text=True, cwd=ROOT)
    if r.returncode: raise RuntimeError(f"reading the model card of {ref} failed: {r.stderr.strip()[-800:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])

def tiny_card() -> dict:
    "Train, evaluate and register a tiny model (breast cancer, 1 epoch) with `mlkit train`, in its own MLKIT_HOME; cached by library."
    cache, key = BUILD/'card'/'card.json', lib_key()
    if cache.exists() and (c := json.loads(cache.read_text())).get('key') == key: return c['card']
    home = BUILD/'card'
    shutil.rmtree(home, ignore_errors=True); home.mkdir(parents=True)
    env = {**os.environ, 'MLKIT_HOME': str(home/'home'), 'MLKIT_REPORTS': str(home/'reports'), 'WANDB_MODE': 'disabled'}
    env.pop('BENTOML_HOME', None)
    from sklearn.datasets import load_breast_cancer
    df = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(' ', '_'))
    df['diagnosis'] = df.pop('target').map({0: 'malignant', 1: 'benign'})
    df.to_csv(home/'breast_cancer.csv', index=False)
    t0 = time.time()
    r = subprocess.run([str(Path(sys.executable).parent/'mlkit'), 'train', '--data', str(home/'breast_cancer.csv'), '--target',
                        'diagnosis', '-p', 'max_epochs', '1'], env=env, capture_output=True, text=True, cwd=home)
    if r.returncode: raise RuntimeError(f"training the tiny model for the model card failed:\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
    tags = re.findall(r'^registered (\S+)', r.stdout, re.M)
    if not tags: raise RuntimeError(f"training the tiny model for the model card registered nothing:\n{r.stdout[-1500:]}")
    card = _card_of(tags[-1], env)
    print(f"model card: trained a tiny model in {time.time() - t0:.0f}s", flush=True)
    cache.write_text(json.dumps(dict(key=key, card=card), default=str))
    return card

def _cell(v) -> str:
    if isinstance(v, float): return f'{v:.4g}'
    if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v) and len(v) <= 4: return '[' + ', '.join(_cell(x) for x in v) + ']'
    s = json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v)
    return html.escape(s if len(s) < 160 else s[:157] + '...').replace('|', '\\|').replace('\n', ' ')

def _dict_md(d: dict, level: int) -> list:
    "A card's dict as markdown: its plain values in one table, each nested dict a subsection (tables of records as one table)."
    out = []
    plain = {k: v for k, v in d.items() if not isinstance(v, dict) or not v}
    if plain: out.append('| field | value |\n|---|---|\n' + '\n'.join(f'| {k} | {_cell(v)} |' for k, v in plain.items()) + '\n')
    for k, v in d.items():
        if k in plain: continue
        out.append(f"{'#' * min(level, 5)} {k}\n")
        if all(isinstance(x, dict) for x in v.values()) and all(not isinstance(y, dict) for x in v.values() for y in x.values()):
            cols = list(dict.fromkeys(kk for x in v.values() for kk in x))[:14]
            out.append(f'| | {" | ".join(cols)} |\n|---|{"---|" * len(cols)}\n' +
                       '\n'.join(f'| {a} | {" | ".join(_cell(b.get(cc, "")) for cc in cols)} |' for a, b in v.items()) + '\n')
        else: out += _dict_md(v, level + 1)
    return out

def card_markdown(c: dict, production: bool) -> str:
    card, tag = c['card'], c['tag']
    head = (f'# Model card: `{tag}`\n\nThe model the alias `production` points to in this MLKIT_HOME, from its registered card '
            '(`mlkit models show`).\n' if production else
            f'# Model card: `{tag}`\n\n**No production model**: the registry of this build\'s MLKIT_HOME has no `production` alias, so '
            'this is the card of a tiny model trained during the build (`mlkit train` on scikit-learn\'s breast cancer table, 1 epoch) '
            'to show what a card holds. Build the docs where your registry lives (`MLKIT_HOME=... make docs`) for the real one.\n')
    out = [head] + _dict_md(card, 2)
    if production and c.get('history'):
        out.append('## production history\n\n```json\n' + json.dumps(c['history'][-10:], indent=1, default=str) + '\n```\n')
    return '\n'.join(out)

def card_page() -> Page:
    c = _card_of('production', {**os.environ})
    production = c is not None
    if not production: c = tiny_card()
    return Page('model-card.html', 'Model card', 'Reference', markdown(card_markdown(c, production)))

# ---------------------------------------------------------------------------------------------------- links
def pandoc_id(text: str) -> str:
    t = re.sub(r'[^\w\s.\-]', '', text.strip().lower())
    return re.sub(r'\s+', '-', t) or 'section'

def gfm_id(text: str) -> str: return re.sub(r'\s', '-', re.sub(r'[^\w\s\-]', '', text.strip().lower()))

def page_map(pages: list[Page]) -> dict:
    "Source file (repository-relative) -> site page."
    m = {rel(p.source): p.out for p in pages if p.source is not None and p.source.exists()}
    m['README.md'] = 'index.html'
    m['docs/runbooks'] = 'runbooks.html'
    if (NBS/'index.ipynb').exists(): m['nbs/index.ipynb'] = 'index.html'
    return m

def _relpath(target: str, frm: str) -> str: return os.path.relpath(target, os.path.dirname(frm) or '.')

def finish(pages: list[Page], errors: list):
    "Heading ids, link rewriting (source files -> pages, doc links -> pages), nav, then write and check every link."
    from bs4 import BeautifulSoup
    from nbdev.config import get_config
    cfg = get_config()
    doc_host = cfg.doc_host.rstrip('/') + cfg.doc_baseurl
    git = f"{cfg.git_url.rstrip('/')}/blob/{cfg.branch}/"
    pmap, soups, ids = page_map(pages), {}, {}
    for p in pages:
        s = BeautifulSoup(p.body, 'html.parser')
        have = {t['id'] for t in s.find_all(id=True)}
        for h in s.find_all(re.compile(r'^h[1-6]$')):
            text = h.get_text(' ', strip=True).rstrip('¶').strip()
            if h.find_parent(class_='api-symbol') and h.name == 'h3': continue
            base = pandoc_id(text); hid, i = base, 1
            if h.get('id') and h['id'] != base: h.insert(0, s.new_tag('a', id=h['id'])); have.add(h['id'])
            while hid in have and h.get('id') != hid: hid = f'{base}-{i}'; i += 1
            h['id'] = hid; have.add(hid)
            g = gfm_id(text)
            if g not in have: h.insert(0, s.new_tag('a', id=g)); have.add(g)
            a = s.new_tag('a', href=f'#{hid}', **{'class': 'anchor-link'}); a.string = '¶'; h.append(a)
        soups[p.out], ids[p.out] = s, have
    # doc links (nbdev's add_links: doc_host/page.html#anchor) whose anchor a notebook page lacks go to the API page
    from mlkit._modidx import d as modidx
    doclink = {v[0]: k for syms in modidx['syms'].values() for k, v in syms.items()}
    for p in pages:
        s, src_dir = soups[p.out], (rel(p.source.parent) if p.source is not None else '')
        for t in s.find_all(['a', 'img']):
            attr = 'href' if t.name == 'a' else 'src'
            url = t.get(attr)
            if not url: continue
            if url.startswith(doc_host):
                path = url[len(doc_host):]
                page, _, anchor = path.partition('#')
                if page not in ids or (anchor and anchor not in ids[page]):
                    if path in doclink: page, anchor = 'api.html', doclink[path]
                t[attr] = _relpath(page, p.out) + (f'#{anchor}' if anchor else '')
                continue
            u = urlsplit(url)
            if u.scheme or u.netloc or url.startswith('#'): continue
            target = os.path.normpath(os.path.join(src_dir, unquote(u.path))) if p.source is not None else None
            if target is not None and target in pmap:
                t[attr] = _relpath(pmap[target], p.out) + (f'#{u.fragment}' if u.fragment else '')
            elif target is not None and (ROOT/target).exists() and not target.startswith('..'):
                t[attr] = git + target + (f'#{u.fragment}' if u.fragment else '')
            elif p.source is None:
                pass   # generated pages link relative to the site already: checked below
            else:
                errors.append(f"{p.out} (from {rel(p.source)}): link {url!r}: no such file {target}")
                t['data-broken'] = 'no such file'
    nav = nav_html(pages)
    SITE.mkdir(parents=True, exist_ok=True)
    for p in pages:
        out = SITE/p.out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(layout(p, str(soups[p.out]), nav))
    # the check: every local href/src of every page names an existing file, and its anchor exists there
    n_links = 0
    for p in pages:
        for t in soups[p.out].find_all(['a', 'img']):
            url = t.get('href' if t.name == 'a' else 'src')
            if not url or t.get('data-broken'): continue
            u = urlsplit(url)
            if u.scheme or u.netloc: continue
            n_links += 1
            target = os.path.normpath(os.path.join(os.path.dirname(p.out), unquote(u.path))) if u.path else p.out
            if not (SITE/target).exists(): errors.append(f"{p.out}: broken link {url!r}: no page {target}"); continue
            if u.fragment and target in ids and u.fragment not in ids[target]:
                errors.append(f"{p.out}: broken link {url!r}: {target} has no anchor #{u.fragment}")
    print(f"links: {n_links} local links checked", flush=True)

def nav_html(pages: list[Page]) -> dict:
    sections = {}
    for p in pages: sections.setdefault(p.section, []).append(p)
    return sections

def layout(p: Page, body: str, sections: dict) -> str:
    up = _relpath('.', p.out) + '/' if '/' in p.out else ''
    items = []
    for sec, ps in sections.items():
        lis = ''.join(f'<li{" class=current" if q is p else ""}><a href="{_relpath(q.out, p.out)}">{html.escape(q.title)}</a></li>'
                      for q in ps)
        items.append(f'<h4>{html.escape(sec)}</h4><ul>{lis}</ul>')
    return f'''<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(p.title)} - mlkit</title>
<link rel="stylesheet" href="{up}_static/index.css"><link rel="stylesheet" href="{up}_static/theme-light.css">
<link rel="stylesheet" href="{up}_static/pygments.css"><link rel="stylesheet" href="{up}_static/site.css">
</head><body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
<nav class="site-nav"><a class="site-title" href="{up}index.html">mlkit</a>{''.join(items)}</nav>
<main class="site-main">{body}</main></body></html>
'''

SITE_CSS = '''
body.jp-Notebook { display: flex; margin: 0; padding: 0; overflow: visible; }
.site-nav { position: sticky; top: 0; height: 100vh; overflow-y: auto; width: 250px; flex: none; padding: 16px;
  box-sizing: border-box; border-right: 1px solid #ddd; background: #fafafa; font: 14px/1.4 system-ui, sans-serif; }
.site-nav h4 { margin: 14px 0 4px; font-size: 12px; text-transform: uppercase; color: #666; }
.site-nav ul { list-style: none; margin: 0; padding: 0; } .site-nav li { margin: 2px 0; }
.site-nav li.current > a { font-weight: bold; } .site-nav a { text-decoration: none; color: #1a5fb4; }
.site-title { font-size: 20px; font-weight: bold; }
.site-main { flex: 1; min-width: 0; max-width: 1100px; padding: 16px 32px; font-family: system-ui, sans-serif; }
.site-main .jp-RenderedHTMLCommon { font-family: system-ui, sans-serif; }
.md-page { font-size: 15px; } .md-page pre { overflow-x: auto; white-space: pre; padding: 8px; background: #f6f8fa; }
.site-main a { color: #1a5fb4; }
.md-page table { border-collapse: collapse; } .md-page td, .md-page th { border: 1px solid #ddd; padding: 3px 8px; }
a.anchor-link { display: inline; visibility: hidden; margin-left: 6px; text-decoration: none; }
h1:hover a.anchor-link, h2:hover a.anchor-link, h3:hover a.anchor-link, h4:hover a.anchor-link { visibility: visible; }
.api-symbol { border-top: 1px solid #eee; }
.jp-OutputArea-output pre, .jp-InputArea pre, .highlight pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.jp-OutputArea-output { overflow-x: auto; }
'''

def static_files():
    from pygments.formatters import HtmlFormatter
    import nbconvert
    st = SITE/'_static'; st.mkdir(parents=True, exist_ok=True)
    lab = Path(sys.prefix)/'share'/'jupyter'/'nbconvert'/'templates'/'lab'/'static'
    if not lab.exists(): lab = Path(nbconvert.__file__).parent/'templates'/'lab'/'static'
    for f in ('index.css', 'theme-light.css'):
        if (lab/f).exists(): shutil.copy2(lab/f, st/f)
        else: (st/f).write_text('')
    (st/'pygments.css').write_text(HtmlFormatter(style='default').get_style_defs('.highlight'))
    (st/'site.css').write_text(SITE_CSS)

def build_site(workers: int, stale_ok: bool = False) -> int:
    t0 = time.time()
    srcs = [p for p in notebooks() if not is_include_only(p)]
    todo = stale(srcs)
    if stale_ok:
        srcs = [p for p in srcs if (EXECUTED/rel(p)).exists()]
        print(f"--stale-ok: rendering the {len(srcs)} executed copies there are, {len(todo)} of them out of date", flush=True)
    elif todo:
        print(f"{len(todo)} of {len(srcs)} notebooks changed since they were executed: executing them", flush=True)
        if not run_notebooks(todo, workers): print("docs: not built: a notebook failed (above)", file=sys.stderr); return 1
    else: print(f"all {len(srcs)} executed notebooks are up to date (_build/executed)", flush=True)
    t1 = time.time()
    sys.path.insert(0, str(ROOT))
    errors, warnings = [], []
    mpath = EXECUTED/'manifest.json'
    manifest = json.loads(mpath.read_text()) if mpath.exists() else {}
    for src in srcs: warnings += manifest.get(rel(src), {}).get('doc_errors', [])
    front = NBS/'index.ipynb'
    inc = is_include_only(front) if front.exists() else None
    if front.exists() and inc and (NBS/inc).resolve() != (ROOT/'README.md').resolve():
        errors.append(f"nbs/index.ipynb includes {inc}; the front page is README.md")
    pages = [render_markdown(ROOT/'README.md', 'Start', 'index.html', 'Home')]
    for src in srcs:
        try: pages.append(render_notebook(src))
        except Exception as e: errors.append(f"{rel(src)}: cannot be rendered: {type(e).__name__}: {e}")
    pages += [api_page(errors, warnings), cli_page(), card_page()]
    pages.append(render_markdown(DOCS/'operations.md', 'Operations'))
    pages.append(runbooks_page(errors))
    pages += [render_markdown(p, 'Operations') for p in sorted((DOCS/'runbooks').glob('*.md'))]
    shutil.rmtree(SITE, ignore_errors=True)
    static_files()
    finish(pages, errors)
    (SITE/'.nojekyll').write_text('')
    print(f"site: {len(pages)} pages in {SITE.relative_to(ROOT)}/ (rendering {time.time() - t1:.0f}s, total {time.time() - t0:.0f}s)", flush=True)
    if warnings:
        print(f"\ndocs: {len(warnings)} warning(s):", file=sys.stderr)
        for w in warnings: print('  ' + w, file=sys.stderr)
    if errors:
        print(f"\ndocs: {len(errors)} problem(s):", file=sys.stderr)
        for e in errors: print('  ' + e, file=sys.stderr)
        return 1
    return 0

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    e = sub.add_parser('exec', help='execute notebooks (the notebook tests)')
    e.add_argument('notebooks', nargs='*', help='notebooks to run (default: nbs/*.ipynb and nbs/tutorials/*.ipynb)')
    e.add_argument('--workers', type=int, default=2)
    s = sub.add_parser('site', help='build _site/')
    s.add_argument('--workers', type=int, default=2)
    s.add_argument('--stale-ok', action='store_true', help='render the executed copies there are, executing nothing (drafts)')
    n = sub.add_parser('nbdev-check', help="run nbdev_docs' own notebook processing (exec_show_docs), no Quarto needed")
    n.add_argument('--workers', type=int, default=2)
    a = ap.parse_args(argv)
    os.chdir(ROOT)
    if a.cmd == 'exec':
        srcs = [Path(p).resolve() for p in a.notebooks] or [p for p in notebooks() if not is_include_only(p)]
        return 0 if run_notebooks(srcs, a.workers) else 1
    if a.cmd == 'nbdev-check': return 0 if nbdev_check([p for p in notebooks() if not is_include_only(p)], a.workers) else 1
    return build_site(a.workers, a.stale_ok)

if __name__ == '__main__':
    # Run as an importable module: a notebook's shell replaces sys.modules['__main__'] in the worker processes, and
    # the pool pickles its tasks by module name.
    import importlib.util
    spec = importlib.util.spec_from_file_location('mlkit_docs_build', __file__)
    mod = sys.modules['mlkit_docs_build'] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.exit(mod.main())
