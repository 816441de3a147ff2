#!/usr/bin/env python3
"""redis-py: a PubSub subscriber through rampart that lives through a Sentinel failover.

Usage:
    redis_py_failover_subscriber.py PORT CHANNEL

Subscribes to CHANNEL with a handler, waits for the confirmation and prints `ready`, then runs
redis-py's own worker thread (`run_in_thread`) with an exception handler that only reports:
when rampart closes the connection (the shard's master moved), redis-py reconnects and
subscribes again by itself. Prints one line per event, flushed at once:
`message DATA` for each message, `error TYPE: TEXT` for each exception the thread met. Stops
at end of stdin and prints `done`.
"""

import sys
import threading
import time

import redis


def main():
    port, channel = int(sys.argv[1]), sys.argv[2]
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=2
    )
    pubsub = client.pubsub()
    lock = threading.Lock()

    def out(line):
        with lock:
            print(line, flush=True)

    def on_message(message):
        out(f"message {message['data'].decode()}")

    def on_error(error, _pubsub, _thread):
        out(f"error {type(error).__name__}: {error}")
        # As an application's handler would: do not spin while the proxy refuses.
        time.sleep(0.05)

    pubsub.subscribe(**{channel: on_message})
    deadline = time.monotonic() + 10
    while True:
        message = pubsub.get_message(timeout=0.5)
        if message is not None and message["type"] == "subscribe":
            break
        if time.monotonic() > deadline:
            out("error no subscribe confirmation within 10 s")
            return 1
    out("ready")
    thread = pubsub.run_in_thread(sleep_time=0.05, exception_handler=on_error)
    sys.stdin.read()
    thread.stop()
    thread.join(timeout=5)
    pubsub.close()
    out("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
