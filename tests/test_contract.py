"The API contract: schemathesis (`--checks all`, a bounded number of examples) against the live service, on both paths."
import json, re, subprocess, sys
from pathlib import Path
import pytest
from test_serving import home, start_server, stop    # noqa: F401 (the module fixture: a registered production model)

MAX_EXAMPLES = 60     # per operation and phase; a run takes a few seconds

@pytest.mark.parametrize('fast', ['1', '0'])
def test_schemathesis_finds_no_contract_violation(home, tmp_path, fast):
    "Every operation of /docs.json (5: /predict, /livez, /readyz, /healthz, /metrics), every check, positive and negative data: 0 failures."
    p, url = start_server(home[0], MLKIT_FAST_PATH=fast)
    try:
        cmd = [str(Path(sys.executable).parent/'schemathesis'), 'run', f'{url}/docs.json', '--checks', 'all',
               '--max-examples', str(MAX_EXAMPLES), '--seed', '15', '--no-color', '--generation-database', 'none',
               '--request-timeout', '30', '--report', 'junit', '--report-junit-path', str(tmp_path/'junit.xml')]
        r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=150)
    finally: stop(p)
    out = r.stdout + r.stderr
    m = re.search(r'(\d+) generated', out)
    assert m and int(m[1]) >= 100, out[-3000:]                       # it really generated requests
    print(f'schemathesis fast={fast}: {m[0]},', out.strip().splitlines()[-1])
    assert r.returncode == 0 and 'No issues found' in out, out[-6000:]
    assert (tmp_path/'junit.xml').exists() and 'failures="0"' in (tmp_path/'junit.xml').read_text()
