#!/usr/bin/env python3
"""The cost of an online migration, measured with redis-benchmark.

Run it through `scripts/bench-migration [--keys N] [--rates R,R...]` (which builds rampart
first); bench/README.md explains the numbers. Python 3 standard library only.

It starts three redis-servers and a rampart whose pool (`migrate: true`) has the first two,
writes N keys through it, then for each migrate_rate: measures unpipelined GET/SET through
rampart with redis-benchmark (50 clients, the keys of the fill) while nothing moves, adds the
third server with a reload, and measures the same load again while the keys move, until the
migration is done. It reports how fast the keys moved and what the migration cost the
foreground traffic (throughput and latency during / before). Every process it starts is killed
by PID at the end.
"""

import argparse
import csv
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAMPART = os.path.join(ROOT, "target", "release", "rampart")
HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port, limit=10.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"nothing listens on {port} after {limit}s")


def config(listen, redis_ports, rate):
    servers = "".join(f"   - {HOST}:{port}:1 s{i}\n" for i, port in enumerate(redis_ports))
    return (f"alpha:\n  listen: {HOST}:{listen}\n  redis: true\n  migrate: true\n"
            f"  migrate_rate: {rate}\n  timeout: 5000\n  servers:\n{servers}")


def fill(port, keys, size):
    """Writes key:000000000000.. as redis-benchmark's -r names them, through the proxy."""
    value = "x" * size
    lines = "".join(f"SET key:{i:012d} {value}\r\n" for i in range(keys))
    result = subprocess.run(["redis-cli", "-h", HOST, "-p", str(port), "--pipe"],
                            input=lines.encode(), capture_output=True, check=True)
    if b"errors: 0" not in result.stdout:
        sys.exit(f"the fill failed: {result.stdout!r}")


def benchmark(port, keys, seconds, size):
    """Unpipelined GET and SET from 50 clients for about `seconds`; rps, p50, p99 (ms)."""
    argv = ["redis-benchmark", "-h", HOST, "-p", str(port), "-c", "50", "-r", str(keys),
            "-d", str(size), "-t", "get,set", "-n", str(int(20000 * seconds)), "--csv"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    rps = sum(float(row["rps"]) for row in rows) / len(rows)
    p50 = max(float(row["p50_latency_ms"]) for row in rows)
    p99 = max(float(row["p99_latency_ms"]) for row in rows)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def status(admin):
    with urllib.request.urlopen(f"http://{HOST}:{admin}/status", timeout=5) as answer:
        return json.load(answer)["pools"][0]


def reload(admin):
    request = urllib.request.Request(f"http://{HOST}:{admin}/reload", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read().decode()


def measure(rate, keys, size, processes, workdir):
    redis_ports = [free_port() for _ in range(3)]
    for port in redis_ports:
        processes.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", HOST, "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, start_new_session=True))
    for port in redis_ports:
        wait_port(port)
    listen, admin, stats = free_port(), free_port(), free_port()
    path = os.path.join(workdir, f"rate-{rate}.yml")
    with open(path, "w") as f:
        f.write(config(listen, redis_ports[:2], rate))
    log = os.path.join(workdir, f"rate-{rate}.log")
    proxy = subprocess.Popen([RAMPART, "-c", path, "-o", log, "-s", str(stats),
                              "--admin", f"{HOST}:{admin}"], start_new_session=True)
    processes.append(proxy)
    wait_port(listen)
    fill(listen, keys, size)
    before = benchmark(listen, keys, 4, size)
    with open(path, "w") as f:
        f.write(config(listen, redis_ports, rate))
    started = time.time()
    reload(admin)
    during = []
    while status(admin)["migration"] is not None:
        during.append(benchmark(listen, keys, 1, size))
    took = time.time() - started
    moved = 0
    with open(log) as f:
        for line in f:
            if "migration done:" in line:
                moved = int(line.split("migration done: ")[1].split(" ")[0])
    for process in processes:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    processes.clear()
    if not during:
        sys.exit("the migration ended before a measurement")
    mean = {key: sum(d[key] for d in during) / len(during) for key in ("rps", "p50_ms")}
    mean["p99_ms"] = max(d["p99_ms"] for d in during)
    return {"rate": rate, "keys": keys, "moved_by_migrator": moved, "seconds": took,
            "before": before, "during": mean, "samples": len(during)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rates", default="10000,50000")
    args = parser.parse_args()
    processes = []
    results = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for rate in [int(r) for r in args.rates.split(",")]:
                results.append(measure(rate, args.keys, args.size, processes, workdir))
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    print(f"| migrate_rate | keys | migration time | keys moved by the migrator | "
          f"GET/SET rps during / before | p50 during / before | p99 during / before |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        b, d = r["before"], r["during"]
        print(f"| {r['rate']} | {r['keys']} | {r['seconds']:.1f} s | {r['moved_by_migrator']} | "
              f"{d['rps']:.0f} / {b['rps']:.0f} ({d['rps'] / b['rps']:.2f}) | "
              f"{d['p50_ms']:.3f} / {b['p50_ms']:.3f} ms | {d['p99_ms']:.3f} / {b['p99_ms']:.3f} ms |")


if __name__ == "__main__":
    main()
