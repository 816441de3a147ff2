"""redis-py's scan_iter, dbsize, keys and randomkey through rampart, in RESP2 or RESP3: the
scan must give every key of the pool exactly once. Usage: redis_py_keyspace.py PORT PROTOCOL
KEYS (the pool's key count) HASHES (how many of them are hashes, named h:*)."""

import sys

import redis


def main() -> None:
    port, protocol, total, hashes = (int(arg) for arg in sys.argv[1:5])
    client = redis.Redis(port=port, protocol=protocol)
    seen = list(client.scan_iter(count=1000))
    if len(seen) != total or len(set(seen)) != total:
        sys.exit(f"scan_iter gave {len(seen)} keys, {len(set(seen))} distinct, of {total}")
    typed = list(client.scan_iter(match="h:*", count=500, _type="hash"))
    if len(typed) != hashes or not all(key.startswith(b"h:") for key in typed):
        sys.exit(f"scan_iter(match, _type) gave {len(typed)} keys, not the {hashes} hashes")
    if client.dbsize() != total:
        sys.exit(f"DBSIZE gave {client.dbsize()}, not {total}")
    if sorted(client.keys("h:*")) != sorted(typed):
        sys.exit("KEYS h:* is not the hashes the scan found")
    key = client.randomkey()
    if key is None or not client.exists(key):
        sys.exit(f"RANDOMKEY gave {key!r}, not an existing key")
    try:
        client.execute_command("SCAN", "not-a-cursor")
        sys.exit("SCAN with a bad cursor was not refused")
    except redis.ResponseError as error:
        if str(error) != "invalid cursor":
            sys.exit(f"SCAN with a bad cursor: {error}")
    print(f"redis-py keyspace (RESP{protocol}): ok")


if __name__ == "__main__":
    main()
