#!/usr/bin/env python3
"""redis-py: a pub/sub fan-out through rampart loses and duplicates nothing.

Usage:
    redis_py_pubsub.py PORT [--protocol 2|3] [--messages N] [--subscribers N]

Each of the subscribers (one redis-py client each, `pubsub()`) subscribes to the channels
`news:0` ... `news:9` (which rampart spreads over its shards) and to the pattern `alerts:*`.
Once every subscription is confirmed, one publisher sends N messages, spread round-robin
over the ten channels and `alerts:<i>`, each PUBLISH reporting how many clients received it.
Every subscriber must then receive every message exactly once, in publishing order per
channel, and every PUBLISH must count every subscriber. Prints the throughput; exits 1 with
the problems on stderr otherwise.
"""

import argparse
import sys
import threading
import time

import redis

CHANNELS = [f"news:{index}" for index in range(10)]


def channel_of(index):
    """Every eleventh message goes to a channel only the pattern matches."""
    if index % 11 == 10:
        return f"alerts:{index % 3}"
    return CHANNELS[index % 10]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--protocol", choices=["2", "3"], default="2")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=20)
    args = parser.parse_args()

    def client():
        return redis.Redis(port=args.port, protocol=int(args.protocol))

    problems = []
    received = [[] for _ in range(args.subscribers)]
    ready = threading.Barrier(args.subscribers + 1)
    done = threading.Event()

    def subscriber(number):
        try:
            pubsub = client().pubsub()
            pubsub.subscribe(*CHANNELS)
            pubsub.psubscribe("alerts:*")
            confirmed = 0
            deadline = time.monotonic() + 20
            while confirmed < len(CHANNELS) + 1:
                message = pubsub.get_message(timeout=1.0)
                if message and message["type"] in ("subscribe", "psubscribe"):
                    confirmed += 1
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {confirmed} subscriptions confirmed")
            ready.wait(timeout=30)
            while len(received[number]) < args.messages:
                message = pubsub.get_message(timeout=5.0)
                if message is None:
                    if done.is_set():
                        break
                    continue
                if message["type"] in ("message", "pmessage"):
                    received[number].append((message["channel"], message["data"]))
            pubsub.close()
        except Exception as error:  # noqa: BLE001 - reported as a test failure
            problems.append(f"subscriber {number}: {error!r}")
            try:
                ready.abort()
            except threading.BrokenBarrierError:
                pass

    threads = [threading.Thread(target=subscriber, args=(n,)) for n in range(args.subscribers)]
    for thread in threads:
        thread.start()
    try:
        ready.wait(timeout=60)
    except threading.BrokenBarrierError:
        problems.append("the subscribers did not all get their confirmations")
    publisher = client()
    started = time.monotonic()
    undercounted = 0
    if not problems:
        pipe = publisher.pipeline(transaction=False)
        for index in range(args.messages):
            pipe.publish(channel_of(index), f"m{index}")
            if index % 500 == 499 or index == args.messages - 1:
                for count in pipe.execute():
                    if count != args.subscribers:
                        undercounted += 1
    elapsed = time.monotonic() - started
    done.set()
    for thread in threads:
        thread.join(timeout=120)
    if undercounted:
        problems.append(f"{undercounted} PUBLISH replies counted fewer than {args.subscribers}")

    expected = [(channel_of(index).encode(), f"m{index}".encode()) for index in range(args.messages)]
    for number, got in enumerate(received):
        if problems:
            break
        if len(got) != len(expected):
            problems.append(f"subscriber {number}: {len(got)} messages, expected {len(expected)}")
            continue
        if len(set(got)) != len(got):
            problems.append(f"subscriber {number}: duplicates")
        if sorted(got) != sorted(expected):
            problems.append(f"subscriber {number}: messages differ from those published")
        for channel in set(channel for channel, _ in expected):
            mine = [data for name, data in got if name == channel]
            sent = [data for name, data in expected if name == channel]
            if mine != sent:
                problems.append(f"subscriber {number}: {channel!r} out of order")
                break
    if problems:
        print("\n".join(problems[:20]), file=sys.stderr)
        sys.exit(1)
    total = args.messages * args.subscribers
    print(
        f"{args.messages} messages to {args.subscribers} subscribers ({total} deliveries) "
        f"in {elapsed:.2f} s, none lost or duplicated"
    )


if __name__ == "__main__":
    main()
