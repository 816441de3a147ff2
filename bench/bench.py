#!/usr/bin/env python3
"""rampart vs nutcracker vs direct Redis, measured with redis-benchmark.

Run it through `scripts/bench [--quick] [--out DIR]` (which builds rampart first); see
bench/README.md for what every number means. Python 3 standard library only.

One run starts N redis-servers and, for each of its steps, a fresh nutcracker and rampart over
the same pool (fnv1a_64, ketama, redis: true, no hash tag), all on free loopback ports, then for
every row of the matrix runs redis-benchmark against direct Redis (the first redis-server, the
ceiling), nutcracker and rampart in turn. Every process it starts is killed by PID at the end, on
errors and on Ctrl-C.

main() runs the steps in order; they share one Run (the settings, the processes and everything
measured so far) instead of module-level state.
"""

import argparse
import csv
import datetime
import io
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAMPART = os.path.join(ROOT, "target", "release", "rampart")
HOST = "127.0.0.1"  # every process and every byte of traffic stays on loopback
KEYSPACE = 100_000  # -r: redis-benchmark keys are key:000000000000 .. key:000000099999
IDLE_CLIENTS = 10_000
# how long the idle clients stay quiet after their PING before the proxy's RSS is read again
IDLE_SETTLE_SECONDS = 3
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The matrix. Each row is one redis-benchmark invocation per target; `n` is a multiple of the
# mode's base request count (pipelined rows are much faster, 10-key rows much slower).
MGET10 = ["MGET"] + ["key:__rand_int__"] * 10  # each __rand_int__ is drawn independently
CASES = (
    {"id": "c50", "title": "GET/SET, 50 clients, unpipelined", "clients": 50, "pipeline": 1,
     "size": 3, "n": 1, "ops": [("SET", ["-t", "set"]), ("GET", ["-t", "get"])]},
    {"id": "p16", "title": "GET/SET, 50 clients, -P 16", "clients": 50, "pipeline": 16,
     "size": 3, "n": 10, "ops": [("SET", ["-t", "set"]), ("GET", ["-t", "get"])]},
    {"id": "k10", "title": "10-key MGET / MSET, 50 clients", "clients": 50, "pipeline": 1,
     "size": 3, "n": 0.5, "ops": [("MSET", ["-t", "mset"]), ("MGET", MGET10)]},
    {"id": "v1k", "title": "GET/SET, 1 KB values, 50 clients", "clients": 50, "pipeline": 1,
     "size": 1024, "n": 1, "ops": [("SET", ["-t", "set"]), ("GET", ["-t", "get"])]},
    {"id": "c1000", "title": "GET/SET, 1,000 clients", "clients": 1000, "pipeline": 1,
     "size": 3, "n": 1, "ops": [("SET", ["-t", "set"]), ("GET", ["-t", "get"])]},
    {"id": "lat1", "title": "GET latency, 1 client, unpipelined", "clients": 1, "pipeline": 1,
     "size": 3, "n": 0.2, "ops": [("GET", ["-t", "get"])], "latency": True},
    {"id": "lat10", "title": "GET latency, 10 clients, unpipelined", "clients": 10,
     "pipeline": 1, "size": 3, "n": 0.2, "ops": [("GET", ["-t", "get"])], "latency": True},
)
# The cases the tuned set-up repeats: those the targets judge.
TUNED_CASES = ("c50", "p16", "k10")
TARGETS = ("direct", "nutcracker", "rampart")
PROXIES = ("nutcracker", "rampart")


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# processes, ports, /proc


def raise_nofile():
    """Soft RLIMIT_NOFILE up to the hard limit (and the hard limit up to 65536 when allowed);
    every child (proxies, redis-servers, redis-benchmark) inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, 65536) if hard != resource.RLIM_INFINITY else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def free_ports(k):
    ports = set()
    while len(ports) < k:
        ports.add(free_port())
    return sorted(ports)


@dataclass(frozen=True)
class Pinning:
    """CPU pinning: the load generator on one CPU, everything under test (redis-servers,
    proxies) on the others, so redis-benchmark measures the proxy instead of competing with it.
    None: no pinning."""

    generator: frozenset[int] | None = None
    servers: frozenset[int] | None = None

    @classmethod
    def choose(cls, no_pin: bool) -> "Pinning":
        available = sorted(os.sched_getaffinity(0))
        if no_pin or len(available) < 2:
            return cls()
        return cls(frozenset(available[:1]), frozenset(available[1:]))

    def preexec(self, role: str):
        """A preexec_fn that pins the child to the CPUs of `role` ("generator" or "servers"),
        or None."""
        cpus = getattr(self, role)
        return None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))

    def apply(self, role: str, pid: int) -> None:
        """Pins every thread of a running process to the CPUs of `role`, or unpins it."""
        cpus = getattr(self, role)
        if cpus is None:
            cpus = os.sched_getaffinity(0)
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                os.sched_setaffinity(int(tid), cpus)
            except ProcessLookupError:
                pass

    def describe(self) -> dict[str, list[int]] | str:
        """As recorded in the results' machine info."""
        if self.generator is None:
            return "none"
        return {"generator": sorted(self.generator), "servers": sorted(self.servers)}


class Procs:
    """The processes this run started, pinned to the servers' CPUs of the current set-up;
    stop_all() kills each by its PID."""

    def __init__(self, pinning: Pinning = Pinning()):
        self.pinning = pinning
        self.items = []  # (name, Popen, logfile handle)

    def repin(self, pinning: Pinning) -> None:
        """The pinning of a new set-up, applied to every process already running."""
        self.pinning = pinning
        for _, p, _ in self.items:
            if p.poll() is None:
                pinning.apply("servers", p.pid)

    def start(self, name, argv, logpath):
        fh = open(logpath, "wb")
        # own session: a Ctrl-C on the terminal reaches only us; we then kill them in order
        p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, preexec_fn=self.pinning.preexec("servers"))
        self.items.append((name, p, fh))
        return p

    def stop(self, p):
        """Kills one process by its PID and forgets it."""
        for item in list(self.items):
            if item[1] is p:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGTERM)
                    try:
                        p.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        os.kill(p.pid, signal.SIGKILL)
                        p.wait()
                item[2].close()
                self.items.remove(item)

    def stop_all(self):
        for _, p, _ in self.items:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 5
        for _, p, fh in self.items:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
            fh.close()
        self.items = []


def cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0, clear_refs value 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def tail(path, lines=20):
    try:
        with open(path, "rb") as f:
            data = f.read()[-20000:].decode("utf-8", "replace")
        return data.splitlines()[-lines:]
    except OSError:
        return []


def version_of(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------
# a minimal RESP client (raw sockets; only for set-up, checks and the idle-client test)


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise BenchError("connection closed by the server")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest.decode()
        if kind == b"-":
            return BenchError(rest.decode("utf-8", "replace"))
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise BenchError(f"unexpected reply {line[:80]!r}")

    def call(self, *args):
        self.sock.sendall(encode(*args))
        return self.reply()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(encode(*c) for c in commands))
        return [self.reply() for _ in commands]


def wait_ready(port, proc, name, timeout=10.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with status {proc.returncode} during start-up")
        try:
            c = Conn(port, timeout=2)
            try:
                r = c.call("PING")
            finally:
                c.close()
            if r == "PONG":
                return
            last = r
        except (OSError, BenchError) as e:
            last = e
        time.sleep(0.05)
    raise BenchError(f"{name} on port {port} not ready after {timeout}s: {last}")


def stats_json(port):
    """The stats port's JSON (nutcracker and rampart both write one object and close)."""
    try:
        with socket.create_connection((HOST, port), timeout=5) as s:
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data.decode("utf-8", "replace"))
    except (OSError, ValueError) as e:
        return {"error": str(e)}


# ---------------------------------------------------------------------------------------------
# set-up


def write_config(path, listen_port, redis_ports):
    servers = "\n".join(f"   - {HOST}:{p}:1" for p in redis_ports)
    with open(path, "w") as f:
        f.write(
            "# written by bench/bench.py: the same pool for nutcracker and rampart\n"
            "bench:\n"
            f"  listen: {HOST}:{listen_port}\n"
            "  hash: fnv1a_64\n"
            "  distribution: ketama\n"
            "  redis: true\n"
            "  auto_eject_hosts: false\n"
            "  servers:\n"
            f"{servers}\n")


def placement(conf):
    """Shard ("host:port") of every benchmark key, from `rampart route` (the cross-check below
    verifies against nutcracker that it is where nutcracker puts keys)."""
    keys = "".join("key:%012d\n" % i for i in range(KEYSPACE))
    out = subprocess.run([RAMPART, "route", "-c", conf], input=keys, capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0:
        raise BenchError(f"rampart route failed: {out.stderr.strip()}")
    shard = {}
    for line in out.stdout.splitlines():
        key, _, addr = line.split("\t")
        shard.setdefault(int(addr.rsplit(":", 1)[1]), []).append(int(key[4:]))
    return shard


def prefill(port, indexes, size):
    """SET the given keys (key:%012d, what redis-benchmark's -r draws) on one redis-server,
    directly, so that GET and MGET always hit and the proxies' memory is untouched by it."""
    value = b"x" * size
    c = Conn(port, timeout=60)
    try:
        batch = 1000
        for start in range(0, len(indexes), batch):
            replies = c.pipeline([("SET", b"key:%012d" % i, value)
                                  for i in indexes[start:start + batch]])
            bad = [r for r in replies if r != "OK"]
            if bad:
                raise BenchError(f"prefill of port {port}: {bad[0]!r}")
    finally:
        c.close()


def check_commands(port, name):
    """One of each benchmarked command through a target, so that an error reply is reported
    precisely instead of making redis-benchmark --csv spin (it never exits on error replies
    in CSV mode)."""
    problems = []
    c = Conn(port, timeout=10)
    try:
        keys = [b"key:%012d" % i for i in range(0, KEYSPACE, KEYSPACE // 10)]
        checks = [("SET", ("SET", "bench:check", "v")), ("GET", ("GET", "bench:check")),
                  ("MSET", tuple(["MSET"] + [x for k in keys for x in (k, k)])),
                  ("MGET", tuple(["MGET"] + keys))]
        for label, cmd in checks:
            r = c.call(*cmd)
            if isinstance(r, BenchError):
                problems.append(f"{name}: {label} -> error reply: {r}")
            elif label == "MGET" and r != keys:
                problems.append(f"{name}: MGET returned {r!r:.200}, expected the 10 keys' values")
            elif label == "GET" and r != b"v":
                problems.append(f"{name}: GET returned {r!r}")
    finally:
        c.close()
    return problems


def cross_check(nut_port, ram_port):
    """Keys written through nutcracker must sit on the shard `rampart route` names and be read
    back through rampart (same placement)."""
    problems = []
    keys = [b"key:%012d" % i for i in range(0, KEYSPACE, KEYSPACE // 1000)]
    # pipelines of 16 (like -P 16): deeper ones would inflate nutcracker's mbuf pool for good
    c = Conn(nut_port)
    try:
        replies = [r for j in range(0, len(keys), 16)
                   for r in c.pipeline([("SET", k, b"placed:" + k) for k in keys[j:j + 16]])]
        for r in replies:
            if r != "OK":
                problems.append(f"nutcracker SET: {r!r}")
                break
    finally:
        c.close()
    c = Conn(ram_port)
    try:
        got = [r for j in range(0, len(keys), 16)
               for r in c.pipeline([("GET", k) for k in keys[j:j + 16]])]
        wrong = sum(1 for k, v in zip(keys, got) if v != b"placed:" + k)
        if wrong:
            problems.append(f"rampart read {wrong}/{len(keys)} keys written through nutcracker "
                            "wrongly")
    finally:
        c.close()
    return problems, keys


def check_route(route, redis_ports, keys):
    """The keys nutcracker wrote (cross_check) are on the shard `rampart route` says."""
    where = {i: p for p, idx in route.items() for i in idx}
    misplaced = 0
    for p in redis_ports:
        c = Conn(p)
        try:
            mine = [k for k in keys if where[int(k[4:])] == p]
            got = c.pipeline([("GET", k) for k in mine])
            misplaced += sum(1 for k, v in zip(mine, got) if v != b"placed:" + k)
        finally:
            c.close()
    return ([f"{misplaced}/{len(keys)} keys written through nutcracker are not on the shard "
             "`rampart route` names"] if misplaced else [])


# ---------------------------------------------------------------------------------------------
# measurements


def run_benchmark(port, case, op_args, n, timeout, pinning):
    argv = ["redis-benchmark", "-h", HOST, "-p", str(port), "-c", str(case["clients"]),
            "-n", str(n), "-r", str(KEYSPACE), "-d", str(case["size"]), "--csv"]
    if case["pipeline"] > 1:
        argv += ["-P", str(case["pipeline"])]
    argv += op_args
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=pinning.preexec("generator"))
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return {"error": f"redis-benchmark did not finish within {timeout}s (killed)",
                "stderr": err.decode("utf-8", "replace")[-2000:], "argv": argv}
    except BaseException:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        raise
    out = out.decode("utf-8", "replace")
    err = err.decode("utf-8", "replace")
    # redis-benchmark asks CONFIG GET at start; proxies refuse it, which is expected
    notes = [l for l in err.splitlines()
             if l.strip() and "Could not fetch server CONFIG" not in l]
    rows = list(csv.DictReader(io.StringIO(out)))
    if p.returncode != 0 or not rows:
        return {"error": f"redis-benchmark exited {p.returncode} without a result",
                "stderr": "\n".join(notes)[-2000:], "stdout": out[-2000:], "argv": argv}
    row = rows[-1]
    res = {"rps": float(row["rps"])}
    for k in ("avg", "min", "p50", "p95", "p99", "max"):
        res[k + "_ms"] = float(row[k + "_latency_ms"])
    if notes:
        res["stderr"] = "\n".join(notes)[-2000:]
    return res


def aggregate(runs):
    """Median over the rounds of every number (peak RSS: the maximum); runs that failed are
    left out and counted."""
    ok = [r for r in runs if "rps" in r]
    out = {"rounds_ok": len(ok), "rounds_failed": len(runs) - len(ok)}
    if not ok:
        out["error"] = runs[-1].get("error", "no result") if runs else "not run"
        return out
    for k in ("rps", "avg_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms",
              "cpu_s_per_1m"):
        vals = [r[k] for r in ok if k in r]
        if vals:
            out[k] = statistics.median(vals)
    peaks = [r["peak_rss_kb"] for r in ok if r.get("peak_rss_kb")]
    if peaks:
        out["peak_rss_kb"] = max(peaks)
    return out


def idle_clients_rss(pid, port, count):
    """VmRSS of the proxy with `count` idle clients: connected only, then after one PING each
    (at once, and once they have been idle for IDLE_SETTLE_SECONDS)."""
    out = {"clients": count, "rss_before_kb": status_kb(pid, "VmRSS")}
    fds0 = fd_count(pid)
    socks = []
    t0 = time.time()
    try:
        for i in range(count):
            try:
                socks.append(socket.create_connection((HOST, port), timeout=10))
            except OSError as e:
                out["error"] = f"connect #{i + 1} failed: {e}"
                break
        # wait until the proxy has accepted them all (fds show up in /proc/PID/fd)
        deadline = time.time() + 15
        while time.time() < deadline:
            before = fd_count(pid)
            time.sleep(0.3)
            if fd_count(pid) == before and before >= fds0 + len(socks):
                break
        out["connected"] = len(socks)
        out["proxy_fds"] = fd_count(pid)
        out["connect_seconds"] = round(time.time() - t0, 2)
        out["rss_connected_kb"] = status_kb(pid, "VmRSS")
        # one PING per client, then idle again
        ping = encode("PING")
        for s in socks:
            s.sendall(ping)
        ok = 0
        for s in socks:
            try:
                data = b""
                while not data.endswith(b"\r\n"):
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    data += chunk
                ok += data == b"+PONG\r\n"
            except OSError:
                pass
        out["pong"] = ok
        time.sleep(0.3)
        out["rss_after_ping_kb"] = status_kb(pid, "VmRSS")
        out["peak_kb"] = status_kb(pid, "VmHWM")
        time.sleep(IDLE_SETTLE_SECONDS)
        out["rss_idle_after_ping_kb"] = status_kb(pid, "VmRSS")
    finally:
        for s in socks:
            s.close()
    deadline = time.time() + 15
    while time.time() < deadline and fd_count(pid) > fds0 + 50:
        time.sleep(0.2)
    time.sleep(0.3)
    out["rss_after_close_kb"] = status_kb(pid, "VmRSS")
    return out


# ---------------------------------------------------------------------------------------------
# report


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def row_label(case, op):
    return {"c50": f"{op} c50", "p16": f"{op} -P16", "k10": f"{op} 10 keys",
            "v1k": f"{op} 1KB", "c1000": f"{op} c1000", "lat1": f"{op} c1",
            "lat10": f"{op} c10"}[case["id"]]


def paired_ratio(nut, ram, key):
    """rampart's / nutcracker's `key`, as the median over the rounds of the ratio within each
    round: the two runs of a round are seconds apart, so the machine's drift from one round
    to the next (other tenants, frequency) cancels out instead of landing on one side."""
    nut_by_round = {r["round"]: r[key] for r in nut.get("runs", []) if key in r}
    ratios = [ratio(r[key], nut_by_round[r["round"]]) for r in ram.get("runs", [])
              if key in r and r["round"] in nut_by_round]
    ratios = [x for x in ratios if x is not None]
    return statistics.median(ratios) if ratios else ratio(ram.get(key), nut.get(key))


def build_rows(results):
    rows = []
    for r in results:
        d, n, m = (r["targets"].get(t, {}) for t in TARGETS)
        rows.append({
            "label": r["label"], "case": r["case"], "op": r["op"], "setup": r["setup"],
            "latency": r["latency"],
            "direct_rps": d.get("rps"), "nut_rps": n.get("rps"), "ram_rps": m.get("rps"),
            "rps_ratio": paired_ratio(n, m, "rps"),
            "direct_cpu": d.get("cpu_s_per_1m"),
            "nut_cpu": n.get("cpu_s_per_1m"), "ram_cpu": m.get("cpu_s_per_1m"),
            "cpu_ratio": paired_ratio(n, m, "cpu_s_per_1m"),
            "p50": [x.get("p50_ms") for x in (d, n, m)],
            "p99": [x.get("p99_ms") for x in (d, n, m)],
            "p99_ratio": paired_ratio(n, m, "p99_ms"),
            "nut_rss": n.get("peak_rss_kb"), "ram_rss": m.get("peak_rss_kb"),
        })
    return rows


def default_rows(rows):
    """The throughput rows of the defaults: what the targets judge."""
    return [r for r in rows if r["setup"] == DEFAULTS and not r["latency"]]


def evaluate_targets(rows, idle):
    """Issue 15's targets, on the rows measured with every process's default flags."""
    rows = default_rows(rows)

    def worst(selected, key, want_low):
        vals = [r[key] for r in selected]
        if not selected or any(v is None for v in vals):
            return None
        return max(vals) if want_low else min(vals)

    def check(name, selected, key, limit, want_low, rule):
        w = worst(selected, key, want_low)
        ok = w is not None and (w <= limit if want_low else w >= limit)
        which = ", ".join(r["label"] for r in selected)
        return {"target": name, "rule": rule, "rows": which,
                "worst": w, "limit": limit, "pass": ok}

    pick = lambda pred: [r for r in rows if pred(r)]
    out = [
        check("throughput, unpipelined", pick(lambda r: r["case"] == "c50"), "rps_ratio",
              1.1, False, "rampart rps >= 1.1 x nutcracker (GET and SET, 50 clients)"),
        check("throughput, -P 16", pick(lambda r: r["case"] == "p16"), "rps_ratio",
              2.0, False, "rampart rps >= 2.0 x nutcracker (GET and SET, -P 16)"),
        check("throughput, 10-key MGET", pick(lambda r: r["op"] == "MGET"), "rps_ratio",
              1.3, False, "rampart rps >= 1.3 x nutcracker (MGET of 10 keys)"),
        check("proxy CPU per request", rows, "cpu_ratio", 0.6, True,
              "rampart CPU s per 1M requests <= 0.6 x nutcracker's (every row)"),
        check("p99 latency", rows, "p99_ratio", 1.0, True,
              "rampart p99 <= nutcracker's (every row)"),
    ]
    # both idle states: never used, and used once then quiet
    ratios = [ratio(idle.get("rampart", {}).get(key), idle.get("nutcracker", {}).get(key))
              for key in ("rss_connected_kb", "rss_idle_after_ping_kb")]
    rr = None if None in ratios else max(ratios)
    out.append({"target": "RSS, 10,000 idle clients",
                "rule": f"rampart VmRSS <= nutcracker's with {IDLE_CLIENTS:,} idle clients "
                        f"(connected; and after 1 PING each + {IDLE_SETTLE_SECONDS} s)",
                "rows": "idle clients", "worst": rr, "limit": 1.0,
                "pass": rr is not None and rr <= 1.0})
    return out


def render_tables(rows, idle, targets, markdown):
    """The defaults' throughput table, their latency table, one table per tuned set-up, the
    idle clients and the targets."""
    parts = [throughput_table(default_rows(rows), markdown), "",
             "Latency below saturation (rampart and nutcracker with their defaults, unpipelined "
             "GETs of 3-byte values):", "",
             latency_table([r for r in rows if r["setup"] == DEFAULTS and r["latency"]],
                           markdown), ""]
    for setup in dict.fromkeys(r["setup"] for r in rows if r["setup"] != DEFAULTS):
        parts += [f"{setup[0].upper()}{setup[1:]} (not what users get by default; for "
                  "comparison):", "",
                  throughput_table([r for r in rows if r["setup"] == setup], markdown), ""]
    idle_head = ["10,000 idle clients", "RSS before MB", "connected MB", "after 1 PING each MB",
                 f"then {IDLE_SETTLE_SECONDS} s idle MB", "after close MB"]
    idle_body = []
    for name in PROXIES:
        i = idle.get(name, {})
        mb = lambda k: fmt(i.get(k) and i.get(k) / 1024, ".1f")
        idle_body.append([name, mb("rss_before_kb"), mb("rss_connected_kb"),
                          mb("rss_after_ping_kb"), mb("rss_idle_after_ping_kb"),
                          mb("rss_after_close_kb")])
    t_head = ["target", "rule", "measured (worst row)", "result"]
    t_body = [[t["target"], t["rule"], fmt(t["worst"], ".2f") + "x" if t["worst"] is not None
               else "n/a", "PASS" if t["pass"] else "FAIL"] for t in targets]
    return "\n".join(parts + [table(idle_head, idle_body, markdown), "",
                               table(t_head, t_body, markdown, left_cols=2)])


def latency_table(rows, markdown):
    """p50 and p99 in microseconds through each target, and what each proxy adds to direct
    Redis's p50."""
    head = ["case", "p50 us d/n/r", "p99 us d/n/r", "p50 added us n/r", "p99 r/n",
            "rps d/n/r"]
    us = lambda v: fmt(v and v * 1000, ".0f")
    body = []
    for r in rows:
        direct = r["p50"][0]
        added = [None if direct is None or x is None else x - direct for x in r["p50"][1:]]
        body.append([r["label"], "/".join(us(x) for x in r["p50"]),
                     "/".join(us(x) for x in r["p99"]), "/".join(us(x) for x in added),
                     fmt(r["p99_ratio"], ".2f"),
                     "/".join(fmt(x, ",.0f") for x in (r["direct_rps"], r["nut_rps"],
                                                      r["ram_rps"]))])
    return table(head, body, markdown)


def throughput_table(rows, markdown):
    head = ["case", "direct rps", "nutcracker rps", "rampart rps", "rps r/n",
            "CPU s/1M d", "CPU s/1M n", "CPU s/1M r", "CPU r/n", "p50 ms d/n/r", "p99 ms d/n/r", "p99 r/n",
            "peak RSS MB n", "peak RSS MB r"]
    body = []
    for r in rows:
        body.append([
            r["label"], fmt(r["direct_rps"], ",.0f"), fmt(r["nut_rps"], ",.0f"),
            fmt(r["ram_rps"], ",.0f"), fmt(r["rps_ratio"], ".2f"),
            fmt(r["direct_cpu"], ".2f"), fmt(r["nut_cpu"], ".2f"), fmt(r["ram_cpu"], ".2f"),
            fmt(r["cpu_ratio"], ".2f"),
            "/".join(fmt(x, ".2f") for x in r["p50"]),
            "/".join(fmt(x, ".2f") for x in r["p99"]), fmt(r["p99_ratio"], ".2f"),
            fmt(r["nut_rss"] and r["nut_rss"] / 1024, ".1f"),
            fmt(r["ram_rss"] and r["ram_rss"] / 1024, ".1f"),
        ])
    return table(head, body, markdown)


def table(head, body, markdown, left_cols=1):
    if markdown:
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join("---" if i < left_cols else "---:" for i in range(len(head)))
                 + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) if i < left_cols else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(head), "  ".join("-" * w for w in widths)] + [line(r) for r in body])


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def setup_text(setup: dict) -> str:
    """One set-up as latest.md describes it."""
    pins = setup["cpu_pinning"]
    pinning = "nothing pinned" if not isinstance(pins, dict) else (
        f"redis-benchmark pinned to CPU {','.join(map(str, pins['generator']))}, the "
        f"redis-servers and proxies to CPU {','.join(map(str, pins['servers']))}")
    return f"{setup['name']}: rampart --workers {setup['rampart_workers']}, {pinning}"


def render_svg(rows, subtitle):
    """Grouped horizontal bars, one group per row of the matrix and one bar per target, in two
    panels with their own scales (pipelined rows are ~10x the others)."""
    colors = {"direct": "#8c8c8c", "nutcracker": "#e07b39", "rampart": "#2f6fb5"}
    keys = {"direct": "direct_rps", "nutcracker": "nut_rps", "rampart": "ram_rps"}
    left, right, bar, gap = 150, 130, 16, 18
    plot_w = 620
    width = left + plot_w + right
    group_h = bar * len(TARGETS) + gap
    panels = [("unpipelined", [r for r in rows if r["case"] != "p16"]),
              ("pipelined, -P 16", [r for r in rows if r["case"] == "p16"])]
    panels = [(t, rs) for t, rs in panels if rs]
    extra = 16 * (len(subtitle.split("\n")) - 1)
    ly = 72 + extra  # legend baseline
    o = []
    y = 86 + extra
    for title, prow in panels:
        top = y + 40
        vmax = max([r[keys[t]] or 0 for r in prow for t in TARGETS] + [1])
        step = nice_step(vmax / 5)
        vmax = step * (int(vmax / step) + 1)
        x = lambda v: left + plot_w * v / vmax
        bottom = top + group_h * len(prow) - gap / 2
        o.append(f'<text x="{left}" y="{y + 20}" font-size="15" font-weight="bold">'
                 f'{esc(title)}</text>')
        o.append(f'<text x="{width - 10}" y="{y + 20}" font-size="12" fill="#444" '
                 'text-anchor="end">rampart / nutcracker</text>')
        v = 0
        while v <= vmax + 1e-9:
            gx = x(v)
            o.append(f'<line x1="{gx:.1f}" y1="{top - 6}" x2="{gx:.1f}" y2="{bottom:.1f}" '
                     'stroke="#dddddd" stroke-width="1"/>')
            o.append(f'<text x="{gx:.1f}" y="{bottom + 16:.1f}" font-size="11" fill="#444" '
                     f'text-anchor="middle">{esc(short_num(v))}</text>')
            v += step
        for gi, r in enumerate(prow):
            gy = top + gi * group_h
            o.append(f'<text x="{left - 10}" y="{gy + 1.5 * bar + 4:.1f}" font-size="13" '
                     f'text-anchor="end">{esc(r["label"])}</text>')
            for ti, t in enumerate(TARGETS):
                val = r[keys[t]]
                by = gy + ti * bar
                if val is None:
                    o.append(f'<text x="{left + 4}" y="{by + bar - 4}" font-size="11" '
                             f'fill="#b00">{esc(t)}: no result</text>')
                    continue
                o.append(f'<rect x="{left}" y="{by}" width="{max(1.0, x(val) - left):.1f}" '
                         f'height="{bar - 2}" fill="{colors[t]}"/>')
                o.append(f'<text x="{x(val) + 4:.1f}" y="{by + bar - 4}" font-size="11" '
                         f'fill="#222">{val:,.0f}</text>')
            if r["rps_ratio"] is not None:
                o.append(f'<text x="{width - 10}" y="{gy + 1.5 * bar + 4:.1f}" font-size="13" '
                         f'font-weight="bold" fill="{colors["rampart"]}" text-anchor="end">'
                         f'{r["rps_ratio"]:.2f}x</text>')
        o.append(f'<line x1="{left}" y1="{top - 6}" x2="{left}" y2="{bottom:.1f}" '
                 'stroke="#444"/>')
        y = bottom + 36
    height = y + 18
    o.append(f'<text x="{left + plot_w / 2}" y="{y:.1f}" font-size="12" fill="#444" '
             'text-anchor="middle">requests per second</text>')
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
            f'viewBox="0 0 {width} {height:.0f}" font-family="DejaVu Sans, Arial, sans-serif">',
            f'<rect width="{width}" height="{height:.0f}" fill="#ffffff"/>',
            f'<text x="{width / 2}" y="26" font-size="18" font-weight="bold" '
            'text-anchor="middle">redis-benchmark throughput (requests/s, higher is better)</text>',
            ]
    for i, line in enumerate(subtitle.split("\n")):
        head.append(f'<text x="{width / 2}" y="{46 + 16 * i}" font-size="12" fill="#444" '
                    f'text-anchor="middle">{esc(line)}</text>')
    lx = left
    for t in TARGETS:
        label = "direct Redis (ceiling)" if t == "direct" else t
        head.append(f'<rect x="{lx}" y="{ly - 12}" width="14" height="14" fill="{colors[t]}"/>')
        head.append(f'<text x="{lx + 20}" y="{ly}" font-size="13">{esc(label)}</text>')
        lx += 40 + 8 * len(label)
    return "\n".join(head + o + ["</svg>"]) + "\n"


def nice_step(raw):
    mag = 10 ** (len(str(int(max(raw, 1)))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def short_num(v):
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


# ---------------------------------------------------------------------------------------------
# machine info


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def machine_info(nofile):
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = None

    def git(*args):
        try:
            out = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True,
                                 text=True, timeout=10)
            return out.stdout.strip() if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "mem_total_kb": mem_kb,
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis_server": version_of(["redis-server", "--version"]),
        "redis_benchmark": version_of(["redis-benchmark", "--version"]),
        "nutcracker": version_of(["nutcracker", "--version"]),
        "rampart": version_of([RAMPART, "--version"]),
        "rampart_commit": commit or "none (repository has no commits yet)",
        "rampart_worktree_dirty": bool(dirty) if commit else None,
        "rlimit_nofile": list(nofile),
        "loadavg_start": loadavg(),
    }


# ---------------------------------------------------------------------------------------------
# the run: its settings and the state its steps share


@dataclass(frozen=True)
class Setup:
    """How the processes run for some of the rows: rampart's flags and the CPU pinning."""

    name: str  # "defaults", or what the tuned set-up changes
    pinning: Pinning
    workers: int  # rampart --workers; 0: none given, rampart's own default
    cases: tuple[str, ...]  # the ids of the cases it runs

    def describe(self) -> dict:
        """As recorded in the results' machine info."""
        return {"name": self.name, "rampart_workers": self.workers or "rampart's default",
                "cpu_pinning": self.pinning.describe(), "cases": list(self.cases)}


DEFAULTS = "defaults"


@dataclass(frozen=True)
class Settings:
    """What the command line asks for, with the mode's defaults filled in."""

    mode: str  # "quick" or "full"
    base_requests: int
    rounds: int
    timeout: int  # seconds one redis-benchmark run may take
    servers: int
    out: str
    setups: tuple[Setup, ...]  # the defaults first, then the tuned one unless --no-tuned


@dataclass(frozen=True)
class ProxyPair:
    """One nutcracker and one rampart over the same pool, each by proxy name."""

    procs: dict[str, subprocess.Popen]
    ports: dict[str, int]
    stats_ports: dict[str, int]


@dataclass
class Run:
    """Everything the steps of one run share: created by new_run, filled in by the steps."""

    settings: Settings
    started: datetime.datetime
    t_start: float
    info: dict  # the machine, the versions and the set-up, for the results
    workdir: str  # configurations and logs
    procs: Procs
    redis_ports: list[int] = field(default_factory=list)
    direct: subprocess.Popen | None = None  # the first redis-server, the direct target
    route: dict[int, list[int]] = field(default_factory=dict)  # redis port -> its key indexes
    broken: dict[str, list[str]] = field(default_factory=dict)  # target -> its failed checks
    idle: dict[str, dict] = field(default_factory=dict)  # proxy -> idle-client numbers
    results: list[dict] = field(default_factory=list)  # one entry per row, with every run
    stats: dict[str, dict] = field(default_factory=dict)  # proxy -> "round R, case" -> stats
    logs: dict[str, str] = field(default_factory=dict)  # "tag-proxy" -> its log file
    log_tails: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# steps


def parse_args() -> Settings:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer requests per case (whole run under a minute)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"),
                    help="directory for latest.json, latest.svg, latest.md (default bench/results)")
    ap.add_argument("--requests", type=int, default=None,
                    help="base requests per row (default 50000 quick, 200000 full)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="passes over the matrix; each cell reports the median (default 1 "
                    "quick, 3 full)")
    ap.add_argument("--servers", type=int, default=3, help="redis-servers in the pool (3)")
    ap.add_argument("--tuned-workers", type=int, default=1,
                    help="rampart --workers in the tuned rows (1)")
    ap.add_argument("--no-tuned", action="store_true",
                    help="leave out the tuned rows (redis-benchmark pinned to the first CPU, the "
                    "redis-servers and proxies to the others, rampart --workers as "
                    "--tuned-workers); the first table always runs every process with its "
                    "default flags, unpinned")
    args = ap.parse_args()
    if args.servers < 1:
        ap.error("--servers must be at least 1")
    if args.tuned_workers < 1:
        ap.error("--tuned-workers must be at least 1")
    setups = [Setup(DEFAULTS, Pinning(), 0, tuple(case["id"] for case in CASES))]
    if not args.no_tuned:
        pinning = Pinning.choose(False)
        pinned = "pinned, " if pinning.generator is not None else ""
        setups.append(Setup(f"tuned: {pinned}rampart --workers {args.tuned_workers}", pinning,
                            args.tuned_workers, TUNED_CASES))
    return Settings(
        mode="quick" if args.quick else "full",
        base_requests=args.requests or (50_000 if args.quick else 200_000),
        rounds=args.rounds or (1 if args.quick else 3),
        timeout=60 if args.quick else 240,
        servers=args.servers,
        out=args.out,
        setups=tuple(setups),
    )


def check_prerequisites() -> tuple[int, int]:
    """The tools and the rampart build are there, and RLIMIT_NOFILE (raised) allows the idle
    clients; returns that limit."""
    for tool in ("redis-server", "redis-benchmark", "nutcracker"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} not found (scripts/install-deps installs it)")
    if not os.access(RAMPART, os.X_OK):
        raise SystemExit(f"bench: {RAMPART} missing; run `cargo build --release`")
    nofile = raise_nofile()
    if nofile[0] < IDLE_CLIENTS + 1000:
        raise SystemExit(f"bench: RLIMIT_NOFILE is {nofile}; need more than {IDLE_CLIENTS + 1000}")
    return nofile


def unwind_on_signals() -> None:
    """SIGTERM and SIGHUP unwind through run_all's finally like Ctrl-C does; SIGINT too, since a
    shell starting us in the background leaves SIGINT ignored."""

    def interrupted(signum, frame):
        raise KeyboardInterrupt()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)


def new_run(settings: Settings, nofile: tuple[int, int]) -> Run:
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.time()
    info = machine_info(nofile)
    info["setups"] = [setup.describe() for setup in settings.setups]
    info["redis_servers"] = settings.servers
    return Run(settings=settings, started=started, t_start=t_start, info=info,
               workdir=tempfile.mkdtemp(prefix="rampart-bench-"), procs=Procs())


def run_all(run: Run) -> None:
    """Every measuring step. Stops every process it started whatever happens, then removes the
    working directory, or keeps it (and prints its path) after an error."""
    keep_workdir = False
    try:
        start_redis_servers(run)
        idle_client_test(run)
        correctness_checks(run)
        run_matrix(run)
    except KeyboardInterrupt:
        log("bench: interrupted; stopping every process it started")
        raise
    except BaseException:
        keep_workdir = True
        raise
    finally:
        run.procs.stop_all()
        run.log_tails = log_tails(run.logs)
        if keep_workdir:
            log(f"bench: logs kept in {run.workdir}")
        else:
            shutil.rmtree(run.workdir, ignore_errors=True)


def start_redis_servers(run: Run) -> None:
    run.redis_ports = free_ports(run.settings.servers)
    log(f"bench: {run.settings.mode} mode, {run.settings.base_requests} requests per row; "
        f"redis-servers on {run.redis_ports}")
    servers = [
        run.procs.start(f"redis-{p}", [
            "redis-server", "--port", str(p), "--bind", HOST, "--save", "",
            "--appendonly", "no", "--dir", run.workdir, "--daemonize", "no",
            "--maxclients", "12000"], os.path.join(run.workdir, f"redis-{p}.log"))
        for p in run.redis_ports]
    for p, proc in zip(run.redis_ports, servers):
        wait_ready(p, proc, f"redis-server :{p}")
    run.direct = servers[0]


def start_proxies(run: Run, tag: str, workers: int = 0) -> ProxyPair:
    """One nutcracker and one rampart (`--workers` when not 0) over the same pool, on fresh
    free ports."""
    nut_port, nut_stats, ram_port, ram_stats = free_ports(4)
    confs = {}
    for name, port in (("nutcracker", nut_port), ("rampart", ram_port)):
        confs[name] = os.path.join(run.workdir, f"{tag}-{name}.yml")
        write_config(confs[name], port, run.redis_ports)
        run.logs[f"{tag}-{name}"] = os.path.join(run.workdir, f"{tag}-{name}.log")
    # -i 1000: stats aggregated every second, so the end-of-run stats are current
    nut = run.procs.start("nutcracker", ["nutcracker", "-c", confs["nutcracker"],
                                         "-s", str(nut_stats), "-a", HOST, "-i", "1000"],
                          run.logs[f"{tag}-nutcracker"])
    ram_argv = [RAMPART, "-c", confs["rampart"], "-s", str(ram_stats), "-a", HOST, "-i", "1000", "--admin", "off"]
    if workers:
        ram_argv += ["--workers", str(workers)]
    ram = run.procs.start("rampart", ram_argv, run.logs[f"{tag}-rampart"])
    wait_ready(nut_port, nut, "nutcracker")
    wait_ready(ram_port, ram, "rampart")
    return ProxyPair(procs={"nutcracker": nut, "rampart": ram},
                     ports={"nutcracker": nut_port, "rampart": ram_port},
                     stats_ports={"nutcracker": nut_stats, "rampart": ram_stats})


def stop_proxies(run: Run, pair: ProxyPair) -> None:
    for name in PROXIES:
        run.procs.stop(pair.procs[name])


def idle_client_test(run: Run) -> None:
    """Idle clients on a pair of fresh proxies that serve nothing else (so that neither this
    test nor the load rows inflate the other's memory numbers); stopped afterwards."""
    pair = start_proxies(run, "idle")
    for name in PROXIES:
        proc = pair.procs[name]
        log(f"bench: {IDLE_CLIENTS:,} idle clients -> {name}")
        idle = run.idle[name] = idle_clients_rss(proc.pid, pair.ports[name], IDLE_CLIENTS)
        if idle.get("error") or idle.get("pong") != IDLE_CLIENTS:
            run.problems.append(f"{name}: idle-client test: {idle.get('error', '')} "
                                f"connected {idle.get('connected')}, "
                                f"PONG from {idle.get('pong')}")
        if proc.poll() is not None:
            raise BenchError(f"{name} exited ({proc.returncode}) during the idle-client test")
    stop_proxies(run, pair)


def correctness_checks(run: Run) -> None:
    """Placement and the benchmarked commands, on a pair of their own (error replies would make
    redis-benchmark --csv spin instead of failing); a target's failed commands go to
    run.broken, and their rows are skipped."""
    pair = start_proxies(run, "check")
    run.route = placement(os.path.join(run.workdir, "check-nutcracker.yml"))
    run.info["keys_per_shard"] = [len(run.route.get(p, [])) for p in run.redis_ports]
    found, sample = cross_check(pair.ports["nutcracker"], pair.ports["rampart"])
    run.problems += found + check_route(run.route, run.redis_ports, sample)
    for t in TARGETS:
        for p in check_commands(run.redis_ports[0] if t == "direct" else pair.ports[t], t):
            run.problems.append(p)
            run.broken.setdefault(t, []).append(p)
    stop_proxies(run, pair)


def run_matrix(run: Run) -> None:
    """Every case of every set-up, round after round, then the median of every cell into
    run.results."""
    entries = {}
    filled = None
    for rnd in range(1, run.settings.rounds + 1):
        for setup in run.settings.setups:
            run.procs.repin(setup.pinning)
            for case in (case for case in CASES if case["id"] in setup.cases):
                if filled != case["size"]:
                    prefill_all(run, case["size"])
                    filled = case["size"]
                run_case(run, rnd, setup, case, entries)
    run.procs.repin(Pinning())
    for entry in entries.values():
        for t in TARGETS:
            entry["targets"][t].update(aggregate(entry["targets"][t]["runs"]))
        run.results.append(entry)


def prefill_all(run: Run, size: int) -> None:
    """Each shard its keys, and the direct target every key, with `size`-byte values."""
    log(f"bench: prefill {KEYSPACE:,} keys with {size}-byte values")
    for p in run.redis_ports[1:]:
        prefill(p, run.route.get(p, []), size)
    prefill(run.redis_ports[0], list(range(KEYSPACE)), size)


def run_case(run: Run, rnd: int, setup: Setup, case: dict, entries: dict[str, dict]) -> None:
    """Every row of one case in one set-up, each against every target, on a fresh pair of
    proxies: memory that one case made them keep (both hold on to buffers they once needed)
    does not count against the next one. The runs go to the rows' entries."""
    tuned = setup.name != DEFAULTS
    pair = start_proxies(run, f"r{rnd}-{case['id']}{'-tuned' if tuned else ''}", setup.workers)
    targets = {"direct": (run.direct, run.redis_ports[0])}
    targets |= {name: (pair.procs[name], pair.ports[name]) for name in PROXIES}
    n = int(run.settings.base_requests * case["n"])
    for op, op_args in case["ops"]:
        label = row_label(case, op)
        entry = entries.setdefault((setup.name, label), {
            "setup": setup.name, "latency": case.get("latency", False),
            "case": case["id"], "title": case["title"], "op": op, "label": label,
            "clients": case["clients"], "pipeline": case["pipeline"],
            "value_bytes": case["size"], "requests": n,
            "targets": {t: {"runs": []} for t in TARGETS}})
        # the proxies take turns going first, round by round
        order = TARGETS if rnd % 2 else ("direct",) + PROXIES[::-1]
        for t in order:
            proc, port = targets[t]
            res = measure(run, t, proc, port, case, op, op_args, n, setup.pinning)
            res["round"] = rnd
            entry["targets"][t]["runs"].append(res)
            record_run(run, rnd, f"{label}{' tuned' if tuned else ''}", t, res)
    finish_case(run, rnd, case, pair)


def measure(run: Run, t: str, proc: subprocess.Popen, port: int, case: dict, op: str,
            op_args: list[str], n: int, pinning: Pinning) -> dict:
    """One redis-benchmark run against target t, with its process's CPU time and peak RSS over
    exactly that run."""
    if proc.poll() is not None:
        return {"error": f"{t} is not running (exit status {proc.returncode})"}
    if any(f": {op} ->" in b or f": {op} returned" in b for b in run.broken.get(t, [])):
        return {"error": f"skipped: {op} fails on {t}"}
    hwm_reset = reset_peak_rss(proc.pid)
    ticks_before = cpu_ticks(proc.pid)
    w0 = time.time()
    res = run_benchmark(port, case, op_args, n, run.settings.timeout, pinning)
    res["wall_s"] = round(time.time() - w0, 2)
    if proc.poll() is None:
        res.update(process_usage(proc.pid, ticks_before, hwm_reset, n))
    else:
        res["error"] = (res.get("error", "") + f"; {t} exited with status "
                        f"{proc.returncode} during this run").lstrip("; ")
    return res


def process_usage(pid: int, ticks_before: int, hwm_reset: bool, n: int) -> dict:
    """CPU time per million requests and memory of a target's process, at the end of a run of
    n requests that started at ticks_before."""
    ticks = cpu_ticks(pid) - ticks_before
    return {
        "cpu_ticks": ticks,
        "cpu_s_per_1m": ticks / CLK_TCK / n * 1e6,
        "peak_rss_kb": status_kb(pid, "VmHWM"),
        "peak_rss_scope": "this run" if hwm_reset else "since start of the case",
        "rss_after_kb": status_kb(pid, "VmRSS"),
    }


def record_run(run: Run, rnd: int, label: str, t: str, res: dict) -> None:
    """Notes a failed run, or redis-benchmark's complaints, as a problem, and logs the run."""
    if "error" in res:
        run.problems.append(f"{label} on {t} (round {rnd}): {res['error']}: "
                            f"{res.get('stderr', '').strip()[:500]}")
    elif res.get("stderr"):
        run.problems.append(f"{label} on {t} (round {rnd}): redis-benchmark "
                            f"stderr: {res['stderr'].strip()[:500]}")
    log(f"bench: [{rnd}/{run.settings.rounds}] {label:<14} {t:<10} "
        + (f"{res['rps']:>12,.0f} rps  p99 {res['p99_ms']:.2f} ms"
           + (f"  cpu {res['cpu_s_per_1m']:.2f} s/1M" if "cpu_s_per_1m" in res else "")
           if "rps" in res else "ERROR " + res["error"]))


def finish_case(run: Run, rnd: int, case: dict, pair: ProxyPair) -> None:
    """Reads each proxy's stats after a case, notes their errors and an exit, and stops it."""
    time.sleep(1.1)  # one stats interval (-i 1000), so the counters are current
    for name in PROXIES:
        st = stats_json(pair.stats_ports[name])
        run.stats.setdefault(name, {})[f"round {rnd}, {case['id']}"] = st
        # each redis-benchmark run starts with CONFIG GET, which nutcracker answers by closing
        # the connection: one client_err per run is expected
        pool = st.get("bench", {})
        errs = {k: pool.get(k) for k in ("server_ejects", "forward_error") if pool.get(k)}
        if (pool.get("client_err") or 0) > len(case["ops"]):
            errs["client_err"] = pool["client_err"]
        if errs:
            run.problems.append(f"{name} stats after {case['id']} (round {rnd}): {errs}")
        proc = pair.procs[name]
        if proc.poll() is not None:
            run.problems.append(f"{name} exited with status {proc.returncode} "
                                f"during {case['id']} (round {rnd})")
        run.procs.stop(proc)


def log_tails(logs: dict[str, str]) -> dict[str, list[str]]:
    """The last log lines worth a look of each proxy (rampart's INFO lines are start/stop
    notices); proxies with none are left out."""
    tails = {name: [line for line in tail(path, 200) if " INFO " not in line][-10:]
             for name, path in logs.items()}
    return {name: lines for name, lines in tails.items() if lines}


def report(run: Run) -> None:
    """The tables on stdout, and latest.json, latest.svg and latest.md in the output
    directory."""
    run.info["loadavg_end"] = loadavg()
    rows = build_rows(run.results)
    targets = evaluate_targets(rows, run.idle)
    text = render_tables(rows, run.idle, targets, markdown=False)
    md = render_tables(rows, run.idle, targets, markdown=True)
    doc = results_document(run, rows, targets)
    write_results(run, doc, rows, md)
    print_report(run, doc, text)


def rounds_text(rounds: int) -> str:
    return f"{rounds} round{'s' if rounds > 1 else ''}"


def results_document(run: Run, rows: list[dict], targets: list[dict]) -> dict:
    """latest.json: every number of every run, and what they were measured on."""
    return {
        "started_utc": run.started.isoformat(timespec="seconds"),
        "duration_s": round(time.time() - run.t_start, 1),
        "mode": run.settings.mode,
        "command": " ".join(["scripts/bench"] + sys.argv[1:]),
        "base_requests": run.settings.base_requests,
        "rounds": run.settings.rounds,
        "keyspace": KEYSPACE,
        "machine": run.info,
        "pool": {"hash": "fnv1a_64", "distribution": "ketama", "redis": True,
                 "hash_tag": None, "servers": run.settings.servers},
        "rows": run.results,
        "summary": rows,
        "idle_clients": run.idle,
        "targets": targets,
        "proxy_stats_per_case": run.stats,
        "proxy_log_tails": run.log_tails,
        "problems": run.problems,
    }


def svg_subtitle(run: Run) -> str:
    info = run.info
    commit = info["rampart_commit"][:10] if info.get("rampart_worktree_dirty") is not None \
        else "uncommitted"
    return (f"{run.started:%Y-%m-%d} · {run.settings.mode} mode, median of "
            f"{rounds_text(run.settings.rounds)} · rampart {commit}"
            f"{'+dirty' if info.get('rampart_worktree_dirty') else ''} vs nutcracker 0.5.0 "
            f"· {run.settings.servers} redis-servers · every process with its default flags, "
            f"unpinned\n{info['nproc']} CPUs ({info['cpu_model']}) shared by redis-benchmark, "
            "the redis-servers and both proxies")


def markdown_report(run: Run, doc: dict, md: str) -> str:
    """latest.md: the run, the machine, the tables and the problems seen."""
    info = run.info
    text = (f"Run {run.started:%Y-%m-%d %H:%M} UTC, `{doc['command']}`, {run.settings.mode} mode "
            f"({run.settings.base_requests:,} requests per run; x10 for -P 16, x0.5 for 10-key "
            f"rows; {rounds_text(run.settings.rounds)}, median shown), {doc['duration_s']} s.\n"
            f"Machine: {info['nproc']} CPUs, {info['cpu_model']}, kernel {info['kernel']}; "
            f"{info['redis_server']}; {info['nutcracker']}; {info['rampart']} "
            f"(commit {info['rampart_commit']}). Set-ups: "
            f"{'; '.join(setup_text(setup) for setup in info['setups'])}. Load average at "
            f"start {' '.join(info['loadavg_start'])}, at end {' '.join(info['loadavg_end'])}."
            f"\n\n{md}\n")
    if run.problems:
        text += "\nProblems seen:\n\n" + "".join(f"- {p}\n" for p in run.problems)
    return text


def write_results(run: Run, doc: dict, rows: list[dict], md: str) -> None:
    out = run.settings.out
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "latest.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "latest.svg"), "w") as f:
        f.write(render_svg(default_rows(rows), svg_subtitle(run)))
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write(markdown_report(run, doc, md))


def print_report(run: Run, doc: dict, text: str) -> None:
    info = run.info
    print(f"\nrampart benchmark, {run.settings.mode} mode ({rounds_text(run.settings.rounds)}, "
          f"median), {run.started:%Y-%m-%d %H:%M} UTC, {doc['duration_s']} s; {info['nproc']} "
          f"CPUs ({info['cpu_model']}), load average {' '.join(info['loadavg_start'])} at "
          "start\n")
    print(text)
    if run.problems:
        print("\nproblems seen:")
        for p in run.problems:
            print("  - " + p)
    print(f"\nwrote {os.path.join(run.settings.out, 'latest.json')}, latest.svg, latest.md")


def main() -> int:
    settings = parse_args()
    nofile = check_prerequisites()
    unwind_on_signals()
    run = new_run(settings, nofile)
    run_all(run)
    report(run)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
