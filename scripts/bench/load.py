"""The load test, run by `./dev load` (which ./scripts/bench.sh calls) against the local API it
started: release builds of the functions under cargo lambda watch, several instances each, and a
delaying proxy between them and the DynamoDB emulator.

1. Load: locust (scripts/bench/locustfile.py) with --users clients for --requests requests in
   all (sign-ups, logins, refreshes, protected calls), stopping by itself; then the peak
   resident memory (VmHWM) of every function process cargo lambda watch started.
2. Slow store: a few sessions are opened, the proxy is told to hold every request to the
   emulator for --delay-ms (longer than a DynamoDB attempt may take), and --slow-requests
   requests (protected, refresh, login, sign-up) go out at once, each with a client timeout
   far above the functions' own. Each must be a 503 within the operation timeout plus
   --slack-ms; one that the client gives up on is a hung request. The proxy is set back and
   one more protected call must succeed.

Writes --out (JSON) for scripts/bench/report.py; prints a summary. Every request goes to
127.0.0.1; every loop is bounded.
"""

import argparse
import concurrent.futures
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
FUNCTIONS = ["authorizer", "jwks", "protected", "token", "users"]


def percentile(values, p):
    """The nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def call(api, method, path, body=None, token=None, timeout=30.0):
    """(status, milliseconds, parsed body or None); status 0 when the client gave up."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(api + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (TimeoutError, urllib.error.URLError, ConnectionError):
        return 0, (time.monotonic() - start) * 1000, None
    elapsed = (time.monotonic() - start) * 1000
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, elapsed, parsed


def descendants(root):
    """PIDs of every process below root."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def peak_memory(watch_pid):
    """{function: [VmHWM in KiB of each of its processes]} under cargo lambda watch."""
    peaks = {}
    for pid in descendants(watch_pid):
        try:
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if exe not in FUNCTIONS:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.setdefault(exe, []).append(int(line.split()[1]))
    return peaks


def load_phase(args):
    with tempfile.TemporaryDirectory() as tmp:
        records_file = Path(tmp) / "records.jsonl"
        env = dict(os.environ, LOAD_REQUESTS=str(args.requests), LOAD_RECORDS=str(records_file))
        command = [
            args.locust, "-f", str(HERE / "locustfile.py"), "--headless", "--host", args.api,
            "--users", str(args.users), "--spawn-rate", str(args.users),
            "--run-time", f"{args.max_seconds}s", "--stop-timeout", "30",
            "--only-summary", "--loglevel", "WARNING",
        ]
        process = subprocess.run(command, check=False, env=env, timeout=args.max_seconds + 120,
                                 capture_output=True, text=True)
        if process.returncode not in (0, 1):  # locust exits 1 when any request failed
            sys.stderr.write(process.stdout + process.stderr)
            raise SystemExit(f"locust exited with {process.returncode}")
        records = [json.loads(line) for line in records_file.read_text().splitlines()]
    routes = {}
    for r in records:
        routes.setdefault(r["route"], []).append(r)
    # From the first request's start to the last one's end (locust's own start-up excluded).
    elapsed = max(r["end"] for r in records) - min(r["end"] - r["ms"] / 1000 for r in records)
    summary = {}
    for route, rows in sorted(routes.items()):
        ms = [r["ms"] for r in rows]
        statuses = {}
        for r in rows:
            statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
        summary[route] = {
            "requests": len(rows),
            # This route's requests over the whole run's time, beside the others'.
            "throughput_rps": len(rows) / elapsed,
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
            "max_ms": max(ms),
            "statuses": statuses,
            "errors": sum(1 for r in rows if r["error"] or not 200 <= r["status"] < 300),
            "server_errors": sum(1 for r in rows if r["status"] >= 500 or r["status"] == 0),
        }
    total = len(records)
    return {
        "requests": total,
        "users": args.users,
        "seconds": elapsed,
        "throughput_rps": total / elapsed,
        "errors": sum(s["errors"] for s in summary.values()),
        "server_errors": sum(s["server_errors"] for s in summary.values()),
        "routes": summary,
        "stopped_by_request_limit": total >= args.requests,
    }


def slow_phase(args):
    sessions = []
    for _ in range(3):
        username, password = f"load-slow-{uuid.uuid4().hex[:12]}", f"slow phase {uuid.uuid4().hex}"
        status, _, _ = call(args.api, "POST", "/users", {"username": username, "password": password})
        assert status == 201, f"sign-up before the slow phase: {status}"
        status, _, body = call(args.api, "POST", "/token", {
            "username": username, "password": password, "refresh_token_in_body": True})
        assert status == 200, f"login before the slow phase: {status}"
        sessions.append((username, password, body["token"], body["refresh_token"]))

    requests = []
    for i in range(args.slow_requests):
        username, password, token, refresh = sessions[i % len(sessions)]
        kind = ["protected", "refresh", "login", "signup"][i % 4]
        if kind == "protected":
            requests.append(("GET /protected", "GET", "/protected", None, token))
        elif kind == "refresh":
            requests.append(("POST /token/refresh", "POST", "/token/refresh",
                             {"refresh_token": refresh}, None))
        elif kind == "login":
            requests.append(("POST /token", "POST", "/token",
                             {"username": username, "password": password}, None))
        else:
            requests.append(("POST /users", "POST", "/users", {
                "username": f"load-slow-{uuid.uuid4().hex[:12]}", "password": "slow phase password 1"},
                None))

    os.kill(args.proxy_pid, signal.SIGUSR1)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.slow_concurrency) as pool:
            futures = [pool.submit(call, args.api, method, path, body, token, args.client_timeout)
                       for (_, method, path, body, token) in requests]
            results = [(name, *f.result()[:2]) for (name, *_), f in zip(requests, futures)]
    finally:
        os.kill(args.proxy_pid, signal.SIGUSR2)
    recovered, _, _ = call(args.api, "GET", "/protected", token=sessions[0][2])

    bound = args.operation_timeout_ms + args.slack_ms
    statuses = {}
    for _, status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    ms = [elapsed for _, _, elapsed in results]
    return {
        "requests": len(results),
        "delay_ms": args.delay_ms,
        "operation_timeout_ms": args.operation_timeout_ms,
        "bound_ms": bound,
        "statuses": statuses,
        "all_503": all(status == 503 for _, status, _ in results),
        "hung": sum(1 for _, status, _ in results if status == 0),
        "p50_ms": statistics.median(ms),
        "max_ms": max(ms),
        "within_bound": all(elapsed <= bound for elapsed in ms),
        "recovered_status": recovered,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--locust", required=True)
    parser.add_argument("--watch-pid", type=int, required=True)
    parser.add_argument("--proxy-pid", type=int, required=True)
    parser.add_argument("--instances", type=int, required=True)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--max-seconds", type=int, default=600)
    parser.add_argument("--delay-ms", type=int, default=2500)
    parser.add_argument("--operation-timeout-ms", type=int, default=3000)
    parser.add_argument("--slack-ms", type=int, default=1500)
    parser.add_argument("--slow-requests", type=int, default=40)
    parser.add_argument("--slow-concurrency", type=int, default=8)
    parser.add_argument("--client-timeout", type=float, default=30.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    load = load_phase(args)
    memory = peak_memory(args.watch_pid)
    slow = slow_phase(args)
    result = {
        "instances_per_function": args.instances,
        "load": load,
        "peak_rss_kib": {name: {"max": max(v), "processes": len(v), "each": sorted(v)}
                         for name, v in memory.items()},
        "slow_store": slow,
    }
    Path(args.out).write_text(json.dumps(result, indent=2))

    print(f"\nload: {load['requests']} requests by {load['users']} clients in {load['seconds']:.1f} s "
          f"({load['throughput_rps']:.1f} req/s), {args.instances} instances per function; "
          f"{load['errors']} errors, {load['server_errors']} 5xx")
    width = max(map(len, load["routes"]))
    for route, s in load["routes"].items():
        print(f"  {route:<{width}} {s['requests']:5d}  {s['throughput_rps']:5.1f} req/s  p50 {s['p50_ms']:7.1f} ms"
              f"  p99 {s['p99_ms']:7.1f} ms  max {s['max_ms']:7.1f} ms  {s['statuses']}")
    print("peak RSS: " + ", ".join(f"{n} {v['max'] / 1024:.1f} MB ({v['processes']} processes)"
                                   for n, v in sorted(result["peak_rss_kib"].items())))
    print(f"slow store (+{slow['delay_ms']} ms on every DynamoDB request): {slow['requests']} requests, "
          f"{slow['statuses']}, p50 {slow['p50_ms']:.0f} ms, max {slow['max_ms']:.0f} ms "
          f"(bound {slow['bound_ms']} ms), {slow['hung']} hung; afterwards /protected -> {slow['recovered_status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
