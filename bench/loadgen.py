"""Fallback load generator (used only when `wrk` is unavailable): a bounded asyncio + httpx client.

Keeps `--concurrency` requests in flight against one 127.0.0.1 URL for `--duration` seconds or `--max-requests`
requests, whichever comes first, cycling through the request bodies (one JSON document per line), and prints one
line `LOADGEN_JSON {...}` in the same shape as bench/predict.lua's output. Python is much slower than wrk: on a small
machine the client competes with the server for CPU, so its numbers understate the server.

    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:3000/predict --bodies bodies.jsonl -c 8 -d 10
"""
import argparse, asyncio, json, sys, time
from urllib.parse import urlparse

def pct(xs, p):
    if not xs: return 0
    k = min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]

async def run(url, bodies, concurrency, duration, max_requests, timeout):
    import httpx
    lat, statuses, errors = [], {}, dict(connect=0, read=0, write=0, status=0, timeout=0)
    sent = 0; nbytes = 0
    t_end = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        async def worker(i):
            nonlocal sent, nbytes
            j = i * 7919
            while time.perf_counter() < t_end and sent < max_requests:
                sent += 1; j += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=bodies[j % len(bodies)], headers={'content-type': 'application/json'})
                except httpx.TimeoutException: errors['timeout'] += 1; continue
                except httpx.ConnectError: errors['connect'] += 1; continue
                except httpx.HTTPError: errors['read'] += 1; continue
                lat.append(int((time.perf_counter() - t0) * 1e6))
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                nbytes += len(r.content)
                if r.status_code >= 400: errors['status'] += 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        dur = time.perf_counter() - t0
    lat.sort()
    mean = sum(lat) / len(lat) if lat else 0.0
    return dict(requests=sum(statuses.values()), duration_us=int(dur * 1e6), bytes=nbytes, errors=errors,
                latency_us=dict(mean=mean, min=lat[0] if lat else 0, max=lat[-1] if lat else 0,
                                **{f'p{k}': pct(lat, v) for k, v in (('50', 50), ('75', 75), ('90', 90), ('95', 95), ('99', 99), ('999', 99.9))}),
                statuses={str(k): v for k, v in statuses.items()}, client='python-httpx')

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--url', required=True); ap.add_argument('--bodies', required=True)
    ap.add_argument('-c', '--concurrency', type=int, default=1); ap.add_argument('-d', '--duration', type=float, default=10)
    ap.add_argument('--max-requests', type=int, default=200_000); ap.add_argument('--timeout', type=float, default=5)
    a = ap.parse_args()
    host = urlparse(a.url).hostname
    if host not in ('127.0.0.1', 'localhost', '::1'): sys.exit(f"refusing to load {host}: loopback only")
    bodies = [l.encode() for l in open(a.bodies, encoding='utf-8') if l.strip()]
    res = asyncio.run(run(a.url, bodies, a.concurrency, a.duration, a.max_requests, a.timeout))
    print('LOADGEN_JSON ' + json.dumps(res), flush=True)

if __name__ == '__main__':
    main()
