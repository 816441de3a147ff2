#!/usr/bin/env python3
"""Soak test of rampart under failover: run it through `scripts/soak [--minutes N]`, which builds
rampart first; bench/README.md says what the report means.

It owns one run: two shards (a master and a replica each) watched by three redis-sentinels,
rampart in front with `sentinels:` in its pool, several redis-py clients doing SET / GET / MGET /
INCR through rampart and recording every acknowledged write, a kill -9 of one shard's current
master every minute (alternating shards) followed by its restart as a replica of the promoted
one, rampart's RSS and open fds sampled every few seconds, and at the end every acknowledged
write read back through rampart. The report (report.txt, samples.json, chart.svg) and every
process's log go to target/soak/<UTC time>/. Every process it starts is killed by its PID at the
end, on errors and on Ctrl-C (the first Ctrl-C ends the load early and still writes the report).

Redis replicates asynchronously and these clients do not use WAIT, so a write a master
acknowledged just before its kill -9 can be lost by Redis itself. A verifier therefore looks for every
acknowledged write on the shards' connected replicas: a write seen there must survive any
failover, and a lost write never seen there is counted apart, as lost with its master.
"""

import argparse
import array
import collections
import datetime
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bench import HOST, RAMPART, ROOT, Pinning, Procs, esc, fd_count, free_ports, log, \
    nice_step, raise_nofile, short_num, status_kb, tail

SHARDS = ("shardA", "shardB")
SENTINELS = 3
DOWN_AFTER_MS = 1000
FIRST_KILL_S = 30  # then one every KILL_EVERY_S, alternating shards
KILL_EVERY_S = 60
LAST_KILL_BEFORE_END_S = 20  # no kill this close to the end: the failover must finish in the run
SAMPLE_EVERY_S = 2
VERIFY_EVERY_S = 0.25
FAILOVER_LIMIT_S = 30
OPS = (("set", 40), ("get", 25), ("mget", 20), ("incr", 15))


class SoakError(Exception):
    pass


def client(port, protocol=2, timeout=5.0):
    """A redis-py client that never retries by itself, so every error is seen and counted."""
    return redis.Redis(host=HOST, port=port, protocol=protocol, decode_responses=True,
                       socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


def wait_for(what, check, limit):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise SoakError(f"timed out after {limit:g} s waiting for {what}")


def write_key(client_index, serial):
    return f"soak:{client_index}:{serial}"


def write_value(client_index, serial):
    return f"v{client_index}.{serial}"


def error_kind(error):
    """An error's class and message with numbers folded, so that kinds group."""
    text = re.sub(r"\d+", "N", str(error))[:90]
    return f"{type(error).__name__}: {text}"


# ---------------------------------------------------------------------------------------------
# the cluster


class Cluster:
    """The redis-servers, sentinels and rampart of one run, and where each shard's master is."""

    def __init__(self, procs, out, ports):
        self.procs, self.out = procs, out
        self.redis_ports = {shard: [ports.pop(), ports.pop()] for shard in SHARDS}
        self.sentinel_ports = [ports.pop() for _ in range(SENTINELS)]
        self.proxy_port, self.stats_port = ports.pop(), ports.pop()
        self.nodes = {}  # port -> Popen
        self.clients = {}  # port -> redis.Redis, for set-up and checks
        self.starts = collections.Counter()
        self.rampart = None

    def start_node(self, port, master_port=None):
        self.starts[port] += 1
        argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--protected-mode", "no", "--dir", self.out,
                "--dbfilename", f"dump-{port}.rdb", "--repl-diskless-sync", "yes",
                "--repl-diskless-sync-delay", "0"]
        if master_port:
            argv += ["--replicaof", HOST, str(master_port)]
        log_path = os.path.join(self.out, f"redis-{port}.{self.starts[port]}.log")
        self.nodes[port] = self.procs.start(f"redis {port}", argv, log_path)
        wait_for(f"redis-server on {port}", lambda: client(port, timeout=1).ping(), 10)

    def start(self):
        for master, replica in self.redis_ports.values():
            self.start_node(master)
            self.start_node(replica, master)
        ids = [f"{index + 1:040x}" for index in range(SENTINELS)]
        for index, port in enumerate(self.sentinel_ports):
            conf = [f"port {port}", f"bind {HOST}", "daemonize no", "protected-mode no",
                    f"dir {self.out}", f"sentinel myid {ids[index]}"]
            for shard, (master, replica) in self.redis_ports.items():
                conf += [f"sentinel monitor {shard} {HOST} {master} 2",
                         f"sentinel down-after-milliseconds {shard} {DOWN_AFTER_MS}",
                         f"sentinel failover-timeout {shard} 3000",
                         f"sentinel parallel-syncs {shard} 1",
                         f"sentinel known-replica {shard} {HOST} {replica}"]
                conf += [f"sentinel known-sentinel {shard} {HOST} {other} {ids[at]}"
                         for at, other in enumerate(self.sentinel_ports) if other != port]
            path = os.path.join(self.out, f"sentinel-{port}.conf")
            with open(path, "w") as f:
                f.write("\n".join(conf) + "\n")
            self.procs.start(f"sentinel {port}", ["redis-sentinel", path],
                             os.path.join(self.out, f"sentinel-{port}.log"))
        for shard, (master, _) in self.redis_ports.items():
            wait_for(f"the sentinels to agree on {shard}",
                     lambda: self.master_of(shard) == master, 20)
        conf = os.path.join(self.out, "rampart.yml")
        with open(conf, "w") as f:
            f.write(self.rampart_yaml())
        self.rampart = self.procs.start(
            "rampart", [RAMPART, "-c", conf, "-s", str(self.stats_port), "-a", HOST, "--admin", "off",
                        "-o", os.path.join(self.out, "rampart.log")],
            os.path.join(self.out, "rampart.out"))
        wait_for("rampart", lambda: client(self.proxy_port, timeout=1).ping(), 10)

    def rampart_yaml(self):
        lines = ["soak:", f"  listen: {HOST}:{self.proxy_port}", "  redis: true",
                 "  hash: fnv1a_64", "  distribution: ketama", "  timeout: 2000",
                 "  failover_wait_ms: 5000", "  sentinels:"]
        lines += [f"   - {HOST}:{port}" for port in self.sentinel_ports]
        lines += ["  servers:"]
        lines += [f"   - {HOST}:{ports[0]}:1 {shard}" for shard, ports in self.redis_ports.items()]
        return "\n".join(lines) + "\n"

    def admin(self, port):
        """The cached client of one redis-server or sentinel (it reconnects by itself)."""
        if port not in self.clients:
            self.clients[port] = client(port, timeout=1)
        return self.clients[port]

    def master_of(self, shard):
        """The master port a majority of the sentinels name for `shard`, or None."""
        votes = collections.Counter()
        for port in self.sentinel_ports:
            try:
                answer = self.admin(port).execute_command(
                    "SENTINEL", "get-master-addr-by-name", shard)
                if answer:
                    votes[int(answer[1])] += 1
            except (redis.RedisError, OSError):
                pass
        found = votes.most_common(1)
        return found[0][0] if found and found[0][1] * 2 > SENTINELS else None

    def in_sync(self, shard, master):
        """Whether the shard's other node replicates `master` and has caught up with it."""
        replica = next(port for port in self.redis_ports[shard] if port != master)
        offset = self.admin(master).info("replication")["master_repl_offset"]
        info = self.admin(replica).info("replication")
        return (info.get("master_port") == master and info.get("master_link_status") == "up"
                and info.get("slave_repl_offset", -1) >= offset)

    def kill_master(self, shard, events, start):
        """kill -9 of the shard's master once its replica has caught up; then waits for the
        promotion and restarts the killed node as a replica of the new master."""
        master = self.master_of(shard)
        if master is None:
            raise SoakError(f"no master agreed on for {shard}")
        wait_for(f"{shard}'s replica to catch up", lambda: self.in_sync(shard, master), 60)
        killed = time.monotonic()
        os.kill(self.nodes[master].pid, signal.SIGKILL)
        self.procs.stop(self.nodes[master])

        def new_master():
            port = self.master_of(shard)
            return port if port != master else None

        promoted = wait_for(f"a new master of {shard}", new_master, FAILOVER_LIMIT_S)
        promoted_at = time.monotonic()
        self.start_node(master, promoted)
        event = {"t": killed - start, "shard": shard, "killed": master, "promoted": promoted,
                 "promotion_s": round(promoted_at - killed, 2)}
        events.append(event)
        log(f"  t={event['t']:.0f}s kill -9 {shard} master :{master}; sentinels promoted "
            f":{promoted} in {event['promotion_s']} s; :{master} restarted as its replica")

    def replicas(self):
        """Clients of the nodes that are replicas with a live link now."""
        found = []
        for port, proc in list(self.nodes.items()):
            if proc.poll() is not None:
                continue
            try:
                conn = self.admin(port)
                role = conn.execute_command("ROLE")
                if role[0] == "slave" and role[3] == "connected":
                    found.append(conn)
            except (redis.RedisError, OSError):
                pass
        return found


# ---------------------------------------------------------------------------------------------
# the load


class Worker(threading.Thread):
    """One client: a weighted mix of SET (a unique key and value each), GET and MGET of its own
    acknowledged keys (checking the values), and INCR of its own counter, at `rate` ops/s at
    most (0: as fast as it can). An acknowledged SET is kept as its serial number (the key and
    value follow from it) and the time of its acknowledgement, 12 bytes each."""

    def __init__(self, index, port, rate, stop, verifier):
        super().__init__(name=f"client-{index}", daemon=True)
        self.index, self.port, self.stop, self.verifier = index, port, stop, verifier
        self.interval = 1 / rate if rate else 0
        self.rng = random.Random(index)
        self.acked = array.array("L")  # serials of acknowledged SETs
        self.acked_at = array.array("d")  # when each was acknowledged (time.monotonic())
        self.counter = f"soak:{index}:counter"
        self.counter_acked = 0
        self.ops = collections.Counter()
        self.errors = collections.Counter()  # kind -> count
        self.stale_reads = []  # per stale read, the keys that came back wrong
        self.error_total = 0
        self.done = 0

    def run(self):
        conn = client(self.port, protocol=2 + self.index % 2)
        ops, weights = zip(*OPS)
        serial = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            if self.interval:
                next_at = max(next_at + self.interval, time.monotonic() - 1)
                self.stop.wait(max(0.0, next_at - time.monotonic()))
            op = self.rng.choices(ops, weights)[0] if self.acked else "set"
            try:
                if op == "set":
                    serial += 1
                    ok = conn.set(write_key(self.index, serial), write_value(self.index, serial))
                    if ok is not True:
                        raise SoakError("SET not acknowledged with OK")
                    self.acked.append(serial)
                    self.acked_at.append(time.monotonic())
                    self.verifier.pending.append((self.index, serial))
                elif op == "get":
                    picked = self.rng.choice(self.acked)
                    if conn.get(write_key(self.index, picked)) != write_value(self.index, picked):
                        self.stale_reads.append([write_key(self.index, picked)])
                        self.count_error("stale read: GET returned nil or another value")
                elif op == "mget":
                    picked = [self.rng.choice(self.acked) for _ in range(5)]
                    got = conn.mget([write_key(self.index, serial) for serial in picked])
                    wrong = [write_key(self.index, serial) for serial, value in zip(picked, got)
                             if value != write_value(self.index, serial)]
                    if wrong:
                        self.stale_reads.append(wrong)
                        self.count_error("stale read: MGET returned nil or another value")
                else:
                    self.counter_acked = max(self.counter_acked, conn.incr(self.counter))
                self.ops[op] += 1
                self.done += 1
            except (redis.RedisError, OSError, SoakError) as error:
                self.count_error(error_kind(error))
        conn.close()

    def count_error(self, kind):
        self.errors[kind] += 1
        self.error_total += 1


class Verifier(threading.Thread):
    """Looks for every acknowledged SET on the connected replicas; what is still pending when
    the run ends was never seen on a replica."""

    def __init__(self, cluster, stop):
        super().__init__(name="verifier", daemon=True)
        self.cluster, self.stop = cluster, stop
        self.pending = collections.deque()  # filled by the workers
        self.unseen = {}  # key -> value, taken from pending, not yet seen on a replica
        self.seen = 0
        self.counters = {}  # INCR counter -> the highest value a replica had

    def run(self):
        while not self.stop.wait(VERIFY_EVERY_S):
            self.check()

    def check(self):
        while self.pending:
            index, serial = self.pending.popleft()
            self.unseen[write_key(index, serial)] = write_value(index, serial)
        keys = list(self.unseen)
        for replica in self.cluster.replicas():
            try:
                names = list(self.counters)
                for name, value in zip(names, replica.mget(names) if names else []):
                    self.counters[name] = max(self.counters[name], int(value or 0))
            except (redis.RedisError, OSError):
                continue
            for at in range(0, len(keys), 500):
                chunk = keys[at:at + 500]
                try:
                    values = replica.mget(chunk)
                except (redis.RedisError, OSError):
                    break
                for key, value in zip(chunk, values):
                    if value is not None and self.unseen.get(key) == value:
                        del self.unseen[key]
                        self.seen += 1


class Killer(threading.Thread):
    """kill -9 of one shard's master every KILL_EVERY_S, alternating shards, until the end is
    near; a failure stops the run."""

    def __init__(self, cluster, start, end, ending):
        super().__init__(name="killer", daemon=True)
        self.cluster, self.start_at, self.end, self.ending = cluster, start, end, ending
        self.events, self.error = [], None

    def run(self):
        at = self.start_at + FIRST_KILL_S
        shard = 0
        while self.end - at > LAST_KILL_BEFORE_END_S:
            if self.ending.wait(max(0, at - time.monotonic())):
                return
            try:
                self.cluster.kill_master(SHARDS[shard % len(SHARDS)], self.events, self.start_at)
            except SoakError as error:
                self.error = error
                self.ending.set()
                return
            shard += 1
            at += KILL_EVERY_S


# ---------------------------------------------------------------------------------------------
# the run


def sample(cluster, workers, start, previous):
    pid = cluster.rampart.pid
    try:
        rss_kb = status_kb(pid, "VmRSS")
    except OSError:
        rss_kb = None
    ops = sum(worker.done for worker in workers)
    errors = sum(worker.error_total for worker in workers)
    now = time.monotonic()
    elapsed = max(now - previous["at"], 1e-6)
    point = {"t": round(now - start, 1), "rss_kb": rss_kb, "fds": fd_count(pid),
             "ops_per_s": round((ops - previous["ops"]) / elapsed),
             "errors_per_s": round((errors - previous["errors"]) / elapsed, 1)}
    previous.update(at=now, ops=ops, errors=errors)
    return point


def read_back(cluster, workers):
    """Every acknowledged write, read through rampart: the keys missing or changed, and the
    counters below their last acknowledged value."""
    conn = client(cluster.proxy_port, timeout=10)
    lost = []  # (key, when it was acknowledged)
    for worker in workers:
        for at in range(0, len(worker.acked), 200):
            chunk = range(at, min(at + 200, len(worker.acked)))
            keys = [write_key(worker.index, worker.acked[i]) for i in chunk]
            values = wait_for("an MGET through rampart for the read-back",
                              lambda: conn.mget(keys) or None, 30)
            lost += [(key, worker.acked_at[i]) for key, i, got in zip(keys, chunk, values)
                     if got != write_value(worker.index, worker.acked[i])]
    counters = []
    for worker in workers:
        final = int(conn.get(worker.counter) or 0)
        if final < worker.counter_acked:
            counters.append((worker.counter, worker.counter_acked, final))
    return lost, counters


def counter_failures(counters_behind, seen):
    """Counters read back below a value a replica once had: a failure, unlike one below its
    last acknowledged value only (an increment lost with its master)."""
    return [name for name, _, final in counters_behind if final < seen.get(name, 0)]


def shards_of(cluster, keys):
    """Each key's shard, from `rampart route`."""
    if not keys:
        return {}
    out = subprocess.run([RAMPART, "route", "-c", os.path.join(cluster.out, "rampart.yml")],
                         input="\n".join(keys) + "\n", capture_output=True, text=True, check=True)
    return {line.split("\t")[0]: line.split("\t")[1] for line in out.stdout.splitlines()}


def classify(lost, unseen, shard_of, events, start):
    """Lost writes by cause: seen on a replica (rampart or Redis lost a replicated write: a
    failure), never seen on a replica and acknowledged before a kill of their shard's master
    (Redis's asynchronous replication), or neither (a failure)."""
    causes = collections.Counter()
    for key, acked_at in lost:
        if key not in unseen:
            causes["lost after a replica had it"] += 1
        elif any(e["shard"] == shard_of.get(key) and e["t"] >= acked_at - start for e in events):
            causes["lost with its killed master before reaching a replica (async replication)"] += 1
        else:
            causes["lost, never on a replica, no kill of its shard after it"] += 1
    return causes


def render_chart(samples, events, minutes):
    """Four stacked panels over time (RSS, fds, ops/s, errors/s), kills as red lines."""
    panels = (("rampart RSS (MiB)", lambda s: (s["rss_kb"] or 0) / 1024),
              ("rampart open fds", lambda s: s["fds"]),
              ("ops/s (all clients)", lambda s: s["ops_per_s"]),
              ("client errors/s", lambda s: s["errors_per_s"]))
    width, height, left, top, gap = 900, 150, 70, 40, 50
    span = max([s["t"] for s in samples] + [minutes * 60, 1])
    total = top + len(panels) * (height + gap)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 30}" height="{total}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15">rampart soak: {minutes:.1f} min, '
           f'{len(events)} master kills (red lines)</text>']
    for index, (title, value) in enumerate(panels):
        y0 = top + index * (height + gap) + 20
        values = [value(s) for s in samples]
        step = nice_step(max(values + [1]) / 4)
        ceiling = step * 4
        out.append(f'<text x="{left}" y="{y0 - 6}" font-size="13">{esc(title)}</text>')
        for tick in range(5):
            y = y0 + height - tick * height / 4
            out.append(f'<line x1="{left}" x2="{left + width}" y1="{y:.1f}" y2="{y:.1f}" '
                       f'stroke="#ddd"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                       f'{short_num(step * tick)}</text>')
        for event in events:
            x = left + event["t"] / span * width
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + height}" '
                       f'stroke="#d33" stroke-dasharray="4 3"/>')
        points = " ".join(f"{left + s['t'] / span * width:.1f},"
                          f"{y0 + height - min(v, ceiling) / ceiling * height:.1f}"
                          for s, v in zip(samples, values))
        out.append(f'<polyline fill="none" stroke="#2a6fdb" stroke-width="1.5" points="{points}"/>')
        for second in range(0, int(span) + 1, max(30, int(nice_step(span / 10)))):
            x = left + second / span * width
            out.append(f'<text x="{x:.1f}" y="{y0 + height + 14}" text-anchor="middle">'
                       f'{second}s</text>')
    return "\n".join(out + ["</svg>"]) + "\n"


def stale_reads_of_kept_writes(workers, lost):
    """Stale reads with a key whose write was not lost in the end: a wrong answer. A stale read
    of writes that were all lost (with their master, see classify) is that loss seen early."""
    lost_keys = {key for key, _ in lost}
    return sum(1 for worker in workers for keys in worker.stale_reads
               if not lost_keys.issuperset(keys))


def report_text(args, summary):
    s = summary
    rate = f"at most {args.rate:g} ops/s" if args.rate else "unthrottled"
    lines = [f"rampart soak, {s['started']} UTC, {args.minutes:g} min, {args.clients} clients "
             f"({rate})",
             f"verdict: {'PASS' if s['pass'] else 'FAIL'}", "",
             f"operations: {s['ops_total']} ({s['ops_per_s']:.0f}/s) "
             + ", ".join(f"{op} {count}" for op, count in s["ops"].items()),
             f"acknowledged writes: {s['acked_sets']} SETs ({s['seen']} seen on a replica), "
             f"{args.clients} INCR counters",
             f"lost acknowledged writes: {s['lost_total']}"]
    lines += [f"  {count}  {cause}" for cause, count in s["lost_causes"].items()]
    lines += [f"  counter {name}: last acknowledged {acked}, a replica had "
              f"{s['counters_seen'][name]}, read back {final}"
              for name, acked, final in s["counters_behind"]]
    lines += ["", f"master kills: {len(s['events'])}"]
    lines += [f"  t={e['t']:.0f}s {e['shard']}: killed :{e['killed']}, sentinels promoted "
              f":{e['promoted']} after {e['promotion_s']} s" for e in s["events"]]
    lines += ["", f"client errors: {s['errors_total']}"]
    lines += [f"  {count}  {kind}" for kind, count in s["errors"].most_common()]
    lines += [f"stale reads: {s['stale_reads']}, of writes that were lost (above): "
              f"{s['stale_reads'] - s['stale_of_kept']}, of writes that were kept: "
              f"{s['stale_of_kept']}"]
    lines += ["", "rampart process (start / max / end):",
              "  RSS MiB: " + " / ".join(f"{v / 1024:.1f}" for v in s["rss_kb"]),
              "  open fds: " + " / ".join(str(v) for v in s["fds"])
              + " (start: before any client or server connection; end: after the clients closed,"
              " server connections kept)",
              f"  alive at the end: {s['alive']}", "",
              "A write Redis acknowledged and lost with its master before any replica had it is "
              "Redis's asynchronous replication (the clients do not use WAIT), and does not fail the "
              "run; every other lost write does, and so does a stale read of a write that was "
              "kept."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="how long the load runs (30)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (4)")
    parser.add_argument("--rate", type=float, default=2000,
                        help="ops/s over all clients at most; 0: as fast as they can (2000)")
    args = parser.parse_args()
    if args.minutes <= 0 or args.clients <= 0 or args.rate < 0:
        parser.error("--minutes and --clients must be positive, --rate not negative")
    if not os.path.exists(RAMPART):
        raise SoakError(f"{RAMPART} is missing: build it with cargo build --release")
    raise_nofile()
    started = datetime.datetime.now(datetime.timezone.utc)
    out = os.path.join(ROOT, "target", "soak", started.strftime("%Y%m%dT%H%M%SZ"))
    os.makedirs(out)
    stop, ending = threading.Event(), threading.Event()

    def interrupt(*_):
        if ending.is_set():
            raise KeyboardInterrupt
        log("Ctrl-C: ending the load now and writing the report (Ctrl-C again to abort)")
        ending.set()

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    procs = Procs(Pinning())
    try:
        cluster = Cluster(procs, out, free_ports(4 + SENTINELS + 2))
        log(f"soak: {args.minutes:g} min, {args.clients} clients; writing to {out}")
        cluster.start()
        verifier = Verifier(cluster, stop)
        workers = [Worker(index, cluster.proxy_port, args.rate / args.clients, stop, verifier)
                   for index in range(args.clients)]
        verifier.counters = {worker.counter: 0 for worker in workers}
        start = time.monotonic()
        end = start + args.minutes * 60
        killer = Killer(cluster, start, end, ending)
        events = killer.events
        previous = {"at": start, "ops": 0, "errors": 0}
        samples = [sample(cluster, workers, start, previous)]
        for thread in [verifier, killer, *workers]:
            thread.start()
        while not ending.wait(max(0.0, min(end, start + len(samples) * SAMPLE_EVERY_S)
                                  - time.monotonic())) and time.monotonic() < end:
            samples.append(sample(cluster, workers, start, previous))
        ending.set()
        stop.set()
        for thread in [*workers, verifier, killer]:
            thread.join()
        if killer.error:
            raise killer.error
        time.sleep(1)  # rampart closes the clients' sockets: the last sample shows what is left
        samples.append(sample(cluster, workers, start, previous))
        elapsed = time.monotonic() - start
        verifier.check()
        log("reading back every acknowledged write through rampart")
        lost, counters_behind = read_back(cluster, workers)
        shard_of = shards_of(cluster, [key for key, _ in lost])
        causes = classify(lost, verifier.unseen, shard_of, events, start)
        errors = sum((worker.errors for worker in workers), collections.Counter())
        ops = sum((worker.ops for worker in workers), collections.Counter())
        alive = cluster.rampart.poll() is None
        stale_of_kept = stale_reads_of_kept_writes(workers, lost)
        failures = sum(count for cause, count in causes.items() if "async" not in cause) \
            + len(counter_failures(counters_behind, verifier.counters)) + stale_of_kept
        summary = {
            "started": started.strftime("%Y-%m-%d %H:%M:%S"), "ops": dict(ops),
            "ops_total": sum(ops.values()), "ops_per_s": sum(ops.values()) / elapsed,
            "acked_sets": sum(len(worker.acked) for worker in workers), "seen": verifier.seen,
            "lost_total": len(lost), "lost_causes": dict(causes),
            "counters_behind": counters_behind, "counters_seen": verifier.counters,
            "events": events, "errors": errors,
            "errors_total": sum(errors.values()),
            "stale_reads": sum(len(worker.stale_reads) for worker in workers),
            "stale_of_kept": stale_of_kept,
            "rss_kb": [samples[0]["rss_kb"], max(s["rss_kb"] or 0 for s in samples),
                       samples[-1]["rss_kb"]],
            "fds": [samples[0]["fds"], max(s["fds"] for s in samples), samples[-1]["fds"]],
            "alive": alive, "pass": alive and failures == 0,
        }
        text = report_text(args, summary)
        with open(os.path.join(out, "report.txt"), "w") as f:
            f.write(text)
        with open(os.path.join(out, "samples.json"), "w") as f:
            json.dump({"samples": samples, "events": events,
                       "summary": {k: v for k, v in summary.items() if k != "errors"},
                       "errors": dict(errors)}, f, indent=1)
        with open(os.path.join(out, "chart.svg"), "w") as f:
            f.write(render_chart(samples, events, elapsed / 60))
        print(text, end="")
        log(f"report, chart and logs: {out}")
        return 0 if summary["pass"] else 1
    except SoakError as error:
        log(f"soak: {error}")
        for line in tail(os.path.join(out, "rampart.log")):
            log(f"  rampart.log: {line}")
        return 1
    finally:
        stop.set()
        procs.stop_all()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
