"""Clean process lifecycle of `mlkit serve`, with real processes on loopback.

`mlkit serve` becomes the server (exec), so a signal to the PID you started reaches BentoML's supervisor. After SIGTERM
or SIGINT to that PID: a request in flight gets its answer, every process of the tree is gone within the grace period
(`shutdown_grace_s`, passed to BentoML as `--timeout-graceful-shutdown`), and the port can be bound again.
"""
import http.client, json, os, signal, socket, time
import psutil, pytest
from test_serving import home, rows, records, start_server, stop   # noqa: F401 (fixtures)

GRACE = 8   # MLKIT_SHUTDOWN_GRACE_S of these servers (seconds): every test stays well under 60 s

def port_free(port) -> bool:
    "Can a new server listen on `port`? SO_REUSEADDR as every server sets it: TIME_WAIT does not count, a listener does."
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try: s.bind(('127.0.0.1', port)); s.listen(); return True
        except OSError: return False

def half_sent(port, body: bytes):
    "POST /predict with its headers and half its body sent: a request the server is in the middle of. Returns (conn, rest)."
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=GRACE + 20)
    c.putrequest('POST', '/predict')
    c.putheader('content-type', 'application/json'); c.putheader('content-length', str(len(body)))
    cut = len(body) // 2
    c.endheaders(body[:cut])
    return c, body[cut:]

def process_tree(pid):
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]

def wait_gone(p, tree, t0, limit):
    "Seconds from `t0` until the started process and every process of its tree are gone (reaping `p`); None past `limit`."
    try: p.wait(max(0.1, t0 + limit - time.monotonic()))
    except Exception: return None
    _, alive = psutil.wait_procs(tree[1:], timeout=max(0.1, t0 + limit - time.monotonic()))
    return None if alive else time.monotonic() - t0

def kill_tree(p, tree):
    for proc in tree:
        try: proc.kill()                      # by PID; psutil checks the create time, so a reused PID is never hit
        except psutil.Error: pass
    stop(p)

@pytest.mark.parametrize('sig,workers', [(signal.SIGTERM, 1), (signal.SIGINT, 2)], ids=['SIGTERM', 'SIGINT-2-workers'])
def test_signal_drains_in_flight_request_frees_port_and_leaves_no_process(home, rows, sig, workers):
    p, url = start_server(home[0], MLKIT_SHUTDOWN_GRACE_S=str(GRACE), MLKIT_WORKERS=str(workers))
    port = int(url.rsplit(':', 1)[1])
    tree = process_tree(p.pid)
    try:
        assert 'serve' in tree[0].cmdline() and 'service:MlkitService' in tree[0].cmdline(), tree[0].cmdline()  # exec: one process
        assert '--timeout-graceful-shutdown' in tree[0].cmdline() and len(tree) >= 1 + workers, [t.cmdline() for t in tree]
        body = json.dumps({'rows': records(rows.head(200))}).encode()
        c, rest = half_sent(port, body)
        time.sleep(0.5)                                   # the worker has read the headers: the request is in flight
        t0 = time.monotonic()
        os.kill(p.pid, sig)                               # the PID the user started, not its process group
        time.sleep(1.0)                                   # the workers are draining now
        c.send(rest)
        r = c.getresponse()
        status, answer, t_answer = r.status, r.read(), time.monotonic() - t0
        gone = wait_gone(p, tree, t0, GRACE + 5)
        print(f"\n{sig.name}: in-flight request {status} after {t_answer:.2f} s; {len(tree)} processes gone after "
              f"{gone if gone is None else round(gone, 2)} s (grace {GRACE} s); exit code {p.returncode}")
        assert status == 200 and len(json.loads(answer)['predictions']) == 200, (status, answer[:300])
        assert gone is not None and gone < GRACE, [(x.pid, x.is_running()) for x in tree]
        assert port_free(port)
    finally:
        kill_tree(p, tree)

def test_grace_period_bounds_shutdown_of_a_request_that_never_ends(home, rows):
    "A client that never sends the rest of its body holds the drain only for the grace period: then everything stops."
    grace = 3
    p, url = start_server(home[0], MLKIT_SHUTDOWN_GRACE_S=str(grace))
    port = int(url.rsplit(':', 1)[1])
    tree = process_tree(p.pid)
    try:
        c, _ = half_sent(port, json.dumps({'rows': records(rows.head(50))}).encode())
        time.sleep(0.5)
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGTERM)
        gone = wait_gone(p, tree, t0, grace + 10)
        print(f"\nstalled request: {len(tree)} processes gone after {gone if gone is None else round(gone, 2)} s (grace {grace} s)")
        assert gone is not None and grace - 0.5 < gone < grace + 5, gone   # it waited for the request, then no longer
        assert port_free(port)
        c.close()
    finally:
        kill_tree(p, tree)
