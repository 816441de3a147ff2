#!/usr/bin/env python3
"""redis-py: the errors an application sees through rampart are the ones Redis gives.

Usage:
    redis_py_errors.py PORT --direct REDIS_PORT [--protocol default|2|3]

Sends the same invalid commands through rampart (PORT) and straight to a redis-server
(REDIS_PORT), and requires the same outcome from both: the same ResponseError text, or the
same reply. After every error the proxy connection must still answer (same CLIENT ID).
Exits 1 listing every difference on stderr; 2 for a usage error.
"""

import argparse
import sys

import redis

# (description, command): each must fail, or succeed, the same way as on redis-server.
CASES = [
    ("unknown command with arguments", ("NOSUCHCMD", "a", "b")),
    ("unknown command without arguments", ("NOSUCHCMD",)),
    ("GET without a key", ("GET",)),
    ("GET with two keys", ("GET", "a", "b")),
    ("SET without a value", ("SET", "k")),
    ("MSET with an odd argument count", ("MSET", "a", "1", "b")),
    ("MSET without arguments", ("MSET",)),
    ("MGET without keys", ("MGET",)),
    ("DEL without keys", ("DEL",)),
    ("EXISTS without keys", ("EXISTS",)),
    ("HSET without a value", ("HSET", "h", "f")),
    ("SUNION without keys", ("SUNION",)),
    ("ECHO without a message", ("ECHO",)),
    ("ECHO with two messages", ("ECHO", "a", "b")),
    ("PING with two arguments", ("PING", "a", "b")),
    ("EVAL with a non-integer numkeys", ("EVAL", "return 1", "x")),
    ("EVAL with a negative numkeys", ("EVAL", "return 1", "-1")),
    ("EVAL with more keys than arguments", ("EVAL", "return 1", "3", "k")),
    ("ZUNION with zero keys", ("ZUNION", "0", "k")),
    ("OBJECT with an unknown subcommand", ("OBJECT", "nosuch", "k")),
    ("HELLO with an unsupported protocol", ("HELLO", "4")),
    ("HELLO with a non-integer protocol", ("HELLO", "x")),
    ("CLIENT SETNAME with a space", ("CLIENT", "SETNAME", "a b")),
    ("CLIENT without a subcommand", ("CLIENT",)),
    ("SET with an invalid expire time", ("SET", "err:str", "v", "EX", "0")),
    ("SET with a syntax error", ("SET", "err:str", "v", "NX", "XX")),
    ("GET of a hash (WRONGTYPE)", ("GET", "err:hash")),
    ("INCR of a non-integer", ("INCR", "err:str")),
    ("LPUSH onto a hash (WRONGTYPE)", ("LPUSH", "err:hash", "x")),
    ("HINCRBY with a non-integer increment", ("HINCRBY", "err:hash", "f", "x")),
    ("EXPIRE with a non-integer", ("EXPIRE", "err:str", "soon")),
    ("ZADD with a non-float score", ("ZADD", "err:zset", "high", "m")),
]


def outcome(client, command):
    try:
        return ("reply", client.execute_command(*command))
    except redis.ResponseError as error:
        return ("error", str(error))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("--direct", type=int, required=True, metavar="REDIS_PORT")
    parser.add_argument("--protocol", choices=["default", "2", "3"], default="default")
    args = parser.parse_args()
    kwargs = {} if args.protocol == "default" else {"protocol": int(args.protocol)}
    proxy = redis.Redis(port=args.port, **kwargs)
    direct = redis.Redis(port=args.direct, **kwargs)
    for client in (proxy, direct):
        client.delete("err:hash", "err:str", "err:zset")
        client.hset("err:hash", "f", "1")
        client.set("err:str", "abc")
    connection_id = proxy.client_id()
    differences = []
    for description, command in CASES:
        through_proxy = outcome(proxy, command)
        from_redis = outcome(direct, command)
        if through_proxy != from_redis:
            differences.append(
                f"{description}: {' '.join(command)!r}\n"
                f"    redis-server: {from_redis[0]} {from_redis[1]!r}\n"
                f"    rampart:      {through_proxy[0]} {through_proxy[1]!r}"
            )
        try:
            still = proxy.client_id()
        except redis.RedisError as error:
            still = f"{type(error).__name__}: {error}"
        if still != connection_id:
            differences.append(
                f"{description}: the proxy connection did not survive ({still!r}; was id {connection_id})"
            )
            proxy = redis.Redis(port=args.port, **kwargs)
            connection_id = proxy.client_id()
    for difference in differences:
        print(f"DIFF {difference}", file=sys.stderr)
    print(f"{len(CASES) - len(differences)}/{len(CASES)} error cases as redis-server (protocol {args.protocol})")
    if differences:
        sys.exit(1)


if __name__ == "__main__":
    main()
