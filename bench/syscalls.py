#!/usr/bin/env python3
"""System calls and wake-ups per request, rampart beside nutcracker: run it through
`scripts/bench-syscalls [--requests N] [--clients C] [--pipeline P] [--workers W]`.

It starts three redis-servers, one nutcracker and one rampart (the benchmark's pool, every
process with its default flags unless --workers is given, nothing pinned), all on free loopback
ports, and for each proxy runs redis-benchmark GET with C clients while `strace -c -f` is
attached to the proxy; then once more without strace, reading the context switches of every
thread of the proxy from /proc. It prints, per request: the system calls by name, their sum,
and the voluntary context switches (a thread going to sleep in epoll_wait or on a futex: each
is a later wake-up). strace slows the proxy down, so its throughput is not reported; the counts
per request are what it is for. Every process it starts is killed by its PID at the end.
"""

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from bench import HOST, RAMPART, BenchError, Procs, free_ports, log, wait_ready, write_config

# one line of `strace -c`: % time, seconds, usecs/call, calls, [errors], syscall
SUMMARY_LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9]+)\s*$")


def benchmark(port, args, n):
    argv = ["redis-benchmark", "-h", HOST, "-p", str(port), "-c", str(args.clients), "-n",
            str(n), "-r", "100000", "-P", str(args.pipeline), "-t", "get", "-q"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise BenchError(f"redis-benchmark exited {out.returncode}: {out.stderr[-500:]}")
    return out.stdout


def context_switches(pid):
    """Voluntary and involuntary context switches over every thread of a process."""
    totals = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                        totals[key] += int(value)
        except FileNotFoundError:
            pass
    return totals


def traced(pid, port, args, workdir, name):
    """System calls by name over one redis-benchmark run, from strace -c attached to pid."""
    out = os.path.join(workdir, f"{name}.strace")
    strace = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(pid)],
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(1)  # strace attaches to every thread before the load starts
        benchmark(port, args, args.requests)
    finally:
        os.kill(strace.pid, signal.SIGINT)
        strace.wait(timeout=30)
    calls = collections.Counter()
    with open(out) as f:
        for line in f:
            match = SUMMARY_LINE.match(line)
            if match and match.group(3) != "total":
                calls[match.group(3)] += int(match.group(1))
    return calls


def switches(pid, port, args):
    """Context switches of the proxy over one untraced redis-benchmark run."""
    before = context_switches(pid)
    benchmark(port, args, args.requests)
    after = context_switches(pid)
    return {key: after[key] - before[key] for key in after}


def report(results, args):
    names = sorted({name for r in results.values() for name in r["calls"]},
                   key=lambda name: -max(r["calls"][name] for r in results.values()))
    per = lambda count: f"{count / args.requests:.2f}"
    print(f"\nper GET request, {args.clients} clients, -P {args.pipeline}, "
          f"{args.requests:,} requests"
          + (f", rampart --workers {args.workers}" if args.workers else ", default flags"))
    print(f"{'':<28}" + "".join(f"{proxy:>12}" for proxy in results))
    for name in names:
        print(f"{name:<28}" + "".join(f"{per(r['calls'][name]):>12}"
                                      for r in results.values()))
    print(f"{'all system calls':<28}" + "".join(f"{per(sum(r['calls'].values())):>12}"
                                                for r in results.values()))
    for key, label in (("voluntary_ctxt_switches", "voluntary switches (sleeps)"),
                       ("nonvoluntary_ctxt_switches", "involuntary switches")):
        print(f"{label:<28}" + "".join(f"{per(r['switches'][key]):>12}"
                                       for r in results.values()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--pipeline", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0,
                        help="rampart --workers (0: rampart's default)")
    args = parser.parse_args()
    procs = Procs()
    workdir = tempfile.mkdtemp(prefix="rampart-syscalls-")
    try:
        redis_ports = free_ports(3)
        for port in redis_ports:
            proc = procs.start(f"redis-{port}", [
                "redis-server", "--port", str(port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--dir", workdir], os.path.join(workdir, f"{port}.log"))
            wait_ready(port, proc, f"redis-server :{port}")
        results = {}
        for name in ("nutcracker", "rampart"):
            port, stats = free_ports(2)
            conf = os.path.join(workdir, f"{name}.yml")
            write_config(conf, port, redis_ports)
            argv = (["nutcracker", "-c", conf, "-s", str(stats)] if name == "nutcracker" else
                    [RAMPART, "-c", conf, "-s", str(stats), "--admin", "off"]
                    + (["--workers", str(args.workers)] if args.workers else []))
            proc = procs.start(name, argv, os.path.join(workdir, f"{name}.log"))
            wait_ready(port, proc, name)
            benchmark(port, args, 10_000)  # connections and buffers warmed up
            log(f"syscalls: {name}: strace -c over {args.requests:,} GETs")
            calls = traced(proc.pid, port, args, workdir, name)
            log(f"syscalls: {name}: context switches over {args.requests:,} GETs")
            results[name] = {"calls": calls, "switches": switches(proc.pid, port, args)}
            procs.stop(proc)
        report(results, args)
        return 0
    except BenchError as error:
        log(f"syscalls: {error}")
        return 1
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
