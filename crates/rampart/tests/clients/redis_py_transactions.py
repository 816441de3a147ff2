#!/usr/bin/env python3
"""redis-py: transactions through rampart keep a counter exact under contention.

Usage:
    redis_py_transactions.py PORT [--protocol 2|3]

20 threads, each with its own client, increment one counter 50 times with redis-py's
`transaction()` helper (WATCH, GET, then MULTI/SET/EXEC in a `pipeline(transaction=True)`,
retried on WatchError), and 20 more add to a second counter with plain
`pipeline(transaction=True)` INCRBY batches. Both counters must be exact. Prints the number of
retries; exits 1 with the problem on stderr otherwise.
"""

import argparse
import sys
import threading

import redis

THREADS = 20
ROUNDS = 50


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--protocol", choices=["2", "3"], default="2")
    args = parser.parse_args()

    def client():
        return redis.Redis(port=args.port, protocol=int(args.protocol), decode_responses=True)

    setup = client()
    tag = f"py{args.protocol}"
    watched, batched = f"{{{tag}}}watched", f"{{{tag}}}batched"
    setup.delete(watched, batched)
    retries = []
    failures = []

    def increment(pipe):
        value = int(pipe.get(watched) or 0)
        pipe.multi()
        pipe.set(watched, value + 1)

    def watch_loop():
        try:
            r = client()
            counted = 0

            def counting(pipe):
                nonlocal counted
                counted += 1
                increment(pipe)

            for _ in range(ROUNDS):
                r.transaction(counting, watched)
            retries.append(counted - ROUNDS)
        except Exception as error:  # noqa: BLE001 - reported as a test failure
            failures.append(f"watch loop: {error!r}")

    def batch_loop():
        try:
            r = client()
            for _ in range(ROUNDS):
                pipe = r.pipeline(transaction=True)
                pipe.incrby(batched, 1)
                pipe.incrby(batched, 2)
                results = pipe.execute()
                if len(results) != 2:
                    failures.append(f"EXEC gave {results!r}")
        except Exception as error:  # noqa: BLE001 - reported as a test failure
            failures.append(f"batch loop: {error!r}")

    threads = [threading.Thread(target=watch_loop) for _ in range(THREADS)]
    threads += [threading.Thread(target=batch_loop) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    final_watched = int(setup.get(watched) or 0)
    final_batched = int(setup.get(batched) or 0)
    if final_watched != THREADS * ROUNDS:
        failures.append(f"WATCH counter {final_watched}, expected {THREADS * ROUNDS}")
    if final_batched != THREADS * ROUNDS * 3:
        failures.append(f"MULTI counter {final_batched}, expected {THREADS * ROUNDS * 3}")
    if failures:
        print("\n".join(failures[:20]), file=sys.stderr)
        sys.exit(1)
    print(f"counters exact; {sum(retries)} WATCH retries")


if __name__ == "__main__":
    main()
