"The docs builder (docs/build.py): page names, the front page, link rewriting and the broken-link check. No notebook runs."
import importlib.util, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('mlkit_docs_build', ROOT/'docs'/'build.py')
B = sys.modules.setdefault('mlkit_docs_build', importlib.util.module_from_spec(_spec))
if not hasattr(B, 'main'): _spec.loader.exec_module(B)

def test_page_names():
    assert B.nb_page_name(ROOT/'nbs'/'00_config.ipynb') == 'config.html'          # nbdev's doc links use these names
    assert B.nb_page_name(ROOT/'nbs'/'04b_stats.ipynb') == 'stats.html'
    assert B.nb_page_name(ROOT/'nbs'/'tutorials'/'byo_table.ipynb') == 'tutorials/byo_table.html'
    assert B.md_page_name(ROOT/'README.md') == 'index.html'
    assert B.md_page_name(ROOT/'docs'/'runbooks'/'drift.md') == 'runbooks/drift.html'

def test_front_page_is_the_readme():
    "README.md is the one source: nbs/index.ipynb only includes it, and nbdev_readme never rewrites it."
    assert B.is_include_only(ROOT/'nbs'/'index.ipynb') == '../README.md'
    from nbdev.config import get_config
    assert (get_config().nbs_path/get_config().readme_nb).resolve() == (ROOT/'README.md').resolve()

def test_links_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(B, 'SITE', tmp_path)
    a = B.Page('a.html', 'A', 'S', '<h2>Good section</h2><a href="sub/b.html#good-section">ok</a><a href="#nowhere">bad</a>'
                                    '<a href="c.html">missing</a><a href="https://example.org/x">external</a>')
    b = B.Page('sub/b.html', 'B', 'S', '<h2>Good Section</h2><a href="../a.html#good-section">ok</a>')
    errors = []
    B.finish([a, b], errors)
    assert sorted(errors) == ["a.html: broken link '#nowhere': a.html has no anchor #nowhere",
                              "a.html: broken link 'c.html': no page c.html"], errors
    assert 'class="site-nav"' in (tmp_path/'a.html').read_text() and 'href="../_static/site.css"' in (tmp_path/'sub'/'b.html').read_text()

def test_source_links_rewritten(tmp_path, monkeypatch):
    "A link to a source file becomes its page; to another repository file, the repository; to nothing, an error."
    monkeypatch.setattr(B, 'SITE', tmp_path)
    src = ROOT/'docs'/'operations.md'
    body = B.markdown('# Ops\n\n[home](../README.md#documentation-and-tutorials) [drift](runbooks/drift.md) '
                      '[make](../Makefile) [gone](runbooks/no-such-runbook.md)\n')
    ops = B.Page('operations.html', 'Ops', 'S', body, src)
    home = B.Page('index.html', 'Home', 'S', '<h2>Documentation and tutorials</h2>', ROOT/'README.md')
    drift = B.Page('runbooks/drift.html', 'Drift', 'S', '<h1>Drift</h1>', ROOT/'docs'/'runbooks'/'drift.md')
    errors = []
    B.finish([ops, home, drift], errors)
    html = (tmp_path/'operations.html').read_text()
    assert 'href="index.html#documentation-and-tutorials"' in html and 'href="runbooks/drift.html"' in html
    assert '/blob/main/Makefile"' in html
    assert errors == ["operations.html (from docs/operations.md): link 'runbooks/no-such-runbook.md': no such file "
                      "docs/runbooks/no-such-runbook.md"], errors
