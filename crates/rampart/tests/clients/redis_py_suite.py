#!/usr/bin/env python3
"""redis-py through rampart: what applications rely on, checked reply by reply.

Usage:
    redis_py_suite.py PORT [--protocol default|2|3] [--cross KEY_A KEY_B] [--backends P1,P2,...]

PORT        the rampart pool's listen port on 127.0.0.1.
--protocol  `default` builds redis.Redis(port=PORT) with redis-py's own defaults (HELLO 3,
            CLIENT SETINFO on connect); `2` or `3` pass protocol=2 or protocol=3.
--cross     two keys the pool places on different shards (for the cross-shard errors).
--backends  the pool's redis-server ports, to check that INFO's keyspace is their sum.

Every check runs, even after a failure; each failure is printed on stderr with its reason,
and the exit status is 1 if any failed (2 for a usage error).
"""

import argparse
import os
import sys
import traceback

import redis

# Keys for the multi-key checks; with the test's 3-shard pool they span every shard.
MULTI = [f"multi:{i}" for i in range(12)]
BIG = 20 * 1024 * 1024


class CheckFailed(Exception):
    pass


def expect(what, got, want):
    if got != want:
        raise CheckFailed(f"{what}: expected {want!r}, got {got!r}")


def expect_true(what, condition, detail=""):
    if not condition:
        raise CheckFailed(f"{what}{': ' + detail if detail else ''}")


def expect_response_error(what, call, *needles):
    """`call()` must raise redis.ResponseError whose text contains every needle."""
    try:
        got = call()
    except redis.ResponseError as error:
        text = str(error)
        for needle in needles:
            if needle.lower() not in text.lower():
                raise CheckFailed(f"{what}: error text {text!r} does not contain {needle!r}")
        return text
    raise CheckFailed(f"{what}: expected a ResponseError, got reply {got!r}")


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def pairs(value):
    """ZRANGE WITHSCORES is a list of tuples in RESP2 and of lists in RESP3."""
    return [tuple(item) for item in value]


class Suite:
    def __init__(self, port, protocol, cross, backends):
        self.port = port
        self.protocol = protocol
        self.cross = cross
        self.backends = backends

    def connect(self):
        if self.protocol == "default":
            return redis.Redis(port=self.port)
        return redis.Redis(port=self.port, protocol=int(self.protocol))

    # ---- checks -------------------------------------------------------------------------

    def check_handshake(self, r):
        expect("PING", r.ping(), True)
        wanted = "2" if self.protocol == "2" else "3"
        expect("CLIENT INFO resp= (the negotiated protocol)", r.client_info().get("resp"), wanted)
        # redis-py sends these on connect (and ignores the outcome); Redis 7.2+ answers OK.
        expect("CLIENT SETINFO LIB-NAME", r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "redis-py"), b"OK")
        expect("CLIENT SETINFO LIB-VER", r.execute_command("CLIENT", "SETINFO", "LIB-VER", redis.__version__), b"OK")

    def check_set_get(self, r):
        r.delete("py:str", "py:bin\x00\xff")
        expect("SET py:str", r.set("py:str", "value"), True)
        expect("GET py:str", r.get("py:str"), b"value")
        expect("GET of a missing key", r.get("py:missing"), None)
        expect("SET NX on an existing key", r.set("py:str", "other", nx=True), None)
        expect("SET XX", r.set("py:str", "other", xx=True), True)
        expect("GET after SET XX", r.get("py:str"), b"other")
        expect("GETSET", r.getset("py:str", "third"), b"other")
        expect("APPEND", r.append("py:str", "!"), 6)
        expect("STRLEN", r.strlen("py:str"), 6)
        binary = bytes(range(256)) + b"\r\n$-1\r\n"
        expect("SET of binary bytes", r.set("py:bin\x00\xff", binary), True)
        expect("GET of binary bytes", r.get("py:bin\x00\xff"), binary)

    def check_mset_mget(self, r):
        values = {key: f"value-{key}" for key in MULTI}
        expect("MSET across shards", r.mset(values), True)
        keys = []
        want = []
        for index, key in enumerate(MULTI):
            keys.append(key)
            want.append(values[key].encode())
            if index % 3 == 0:
                keys.append(f"absent:{index}")
                want.append(None)
        keys.append(MULTI[0])  # a repeated key gets its value again
        want.append(values[MULTI[0]].encode())
        expect("MGET across shards with missing keys", r.mget(keys), want)
        expect("MGET of one missing key", r.mget(["absent:only"]), [None])

    def check_delete_across_shards(self, r):
        r.mset({key: "x" for key in MULTI})
        expect(
            "DEL of 12 keys on every shard plus 3 missing ones (sum of the shards' counts)",
            r.delete(*MULTI, "absent:a", "absent:b", "absent:c"),
            len(MULTI),
        )
        expect("MGET after DEL", r.mget(MULTI), [None] * len(MULTI))
        expect("DEL of missing keys", r.delete("absent:a", "absent:b"), 0)
        r.mset({key: "x" for key in MULTI})
        expect("UNLINK across shards", r.unlink(*MULTI), len(MULTI))

    def check_exists_across_shards(self, r):
        r.mset({key: "x" for key in MULTI})
        expect(
            "EXISTS over 12 present keys on every shard, 2 missing, one present key repeated",
            r.exists(*MULTI, "absent:1", "absent:2", MULTI[5]),
            len(MULTI) + 1,
        )
        expect("EXISTS of one key", r.exists(MULTI[3]), 1)
        expect("EXISTS of missing keys", r.exists("absent:1", "absent:2"), 0)
        expect("TOUCH across shards", r.touch(*MULTI, "absent:1"), len(MULTI))
        r.delete(*MULTI)

    def check_pipeline(self, r):
        r.delete("pipe:a", "pipe:h", "pipe:l", "pipe:s", "pipe:z")
        pipe = r.pipeline(transaction=False)
        pipe.set("pipe:a", "1")
        pipe.incr("pipe:a")
        pipe.get("pipe:a")
        pipe.mset({key: key for key in MULTI})
        pipe.mget(MULTI[:4] + ["absent:p"])
        pipe.hset("pipe:h", mapping={"f1": "v1", "f2": "v2"})
        pipe.hgetall("pipe:h")
        pipe.rpush("pipe:l", "a", "b", "c")
        pipe.lrange("pipe:l", 0, -1)
        pipe.sadd("pipe:s", "x", "y")
        pipe.smembers("pipe:s")
        pipe.zadd("pipe:z", {"m1": 1, "m2": 2.5})
        pipe.zrange("pipe:z", 0, -1, withscores=True)
        pipe.execute_command("NOSUCHCMD", "x")
        pipe.exists(*MULTI)
        pipe.delete(*MULTI)
        pipe.get("absent:p")
        pipe.ping()
        pipe.echo("after")
        replies = pipe.execute(raise_on_error=False)
        expect("pipeline reply count", len(replies), 19)
        checks = [
            ("SET", replies[0], True),
            ("INCR", replies[1], 2),
            ("GET", replies[2], b"2"),
            ("MSET", replies[3], True),
            ("MGET", replies[4], [key.encode() for key in MULTI[:4]] + [None]),
            ("HSET", replies[5], 2),
            ("HGETALL", replies[6], {b"f1": b"v1", b"f2": b"v2"}),
            ("RPUSH", replies[7], 3),
            ("LRANGE", replies[8], [b"a", b"b", b"c"]),
            ("SADD", replies[9], 2),
            ("SMEMBERS", replies[10], {b"x", b"y"}),
            ("ZADD", replies[11], 2),
            ("ZRANGE WITHSCORES", pairs(replies[12]), [(b"m1", 1.0), (b"m2", 2.5)]),
            ("EXISTS", replies[14], len(MULTI)),
            ("DEL", replies[15], len(MULTI)),
            ("GET missing", replies[16], None),
            ("PING", replies[17], True),
            ("ECHO", replies[18], b"after"),
        ]
        for name, got, want in checks:
            expect(f"pipeline reply to {name}", got, want)
        unknown = replies[13]
        expect_true(
            "pipeline reply to an unknown command is a ResponseError naming it",
            isinstance(unknown, redis.ResponseError) and "NOSUCHCMD" in str(unknown),
            repr(unknown),
        )

    def check_large_pipeline_and_mget(self, r):
        count = 5000
        pipe = r.pipeline(transaction=False)
        for index in range(count):
            pipe.set(f"bulk:{index}", f"v{index}")
        for index in range(count):
            pipe.get(f"bulk:{index}")
        replies = pipe.execute()
        expect("5,000 SET replies in a pipeline", replies[:count], [True] * count)
        wrong = [
            (index, got)
            for index, got in enumerate(replies[count:])
            if got != f"v{index}".encode()
        ]
        expect("5,000 GET replies in a pipeline, in order (first wrong ones)", wrong[:3], [])
        keys = [f"bulk:{index}" for index in range(count)] + ["absent:bulk"]
        values = r.mget(keys)
        expect("MGET of 5,001 keys: length", len(values), count + 1)
        expect("MGET of 5,001 keys: last is missing", values[-1], None)
        expect(
            "MGET of 5,001 keys: values in key order",
            values[:count] == [f"v{index}".encode() for index in range(count)],
            True,
        )
        expect("DEL of 5,000 keys across shards", r.delete(*keys), count)

    def check_decode_responses_and_odd_values(self, r):
        kwargs = {} if self.protocol == "default" else {"protocol": int(self.protocol)}
        named = redis.Redis(port=self.port, decode_responses=True, client_name="py-named", **kwargs)
        try:
            expect("client_name= given to the constructor", named.client_getname(), "py-named")
            expect("SET of an empty value", named.set("py:empty", ""), True)
            expect("GET of an empty value", named.get("py:empty"), "")
            expect("SET of a value with CRLF", named.set("py:crlf", "a\r\nb\r\n"), True)
            expect("GET of a value with CRLF", named.get("py:crlf"), "a\r\nb\r\n")
            expect("SET of a non-ASCII key and value", named.set("ключ:é", "значение ✓"), True)
            expect("GET of a non-ASCII key", named.get("ключ:é"), "значение ✓")
            expect(
                "MGET decoded",
                named.mget(["py:empty", "ключ:é", "absent:d"]),
                ["", "значение ✓", None],
            )
            named.delete("py:hd")
            named.hset("py:hd", mapping={"field": "value"})
            expect("HGETALL decoded", named.hgetall("py:hd"), {"field": "value"})
            expect(
                "EVAL with one key",
                named.eval("return redis.call('GET', KEYS[1])", 1, "ключ:é"),
                "значение ✓",
            )
            expect("TYPE", named.type("py:hd"), "hash")
            named.delete("py:empty", "py:crlf", "ключ:é", "py:hd")
        finally:
            named.close()

    def check_hash(self, r):
        r.delete("py:h")
        expect("HSET mapping", r.hset("py:h", mapping={"a": "1", "b": "2", "c": "3"}), 3)
        expect("HGET", r.hget("py:h", "a"), b"1")
        expect("HGET missing field", r.hget("py:h", "zz"), None)
        expect("HMGET", r.hmget("py:h", ["a", "zz", "c"]), [b"1", None, b"3"])
        expect("HINCRBY", r.hincrby("py:h", "b", 5), 7)
        expect("HINCRBYFLOAT", r.hincrbyfloat("py:h", "c", 0.5), 3.5)
        expect("HLEN", r.hlen("py:h"), 3)
        expect("HEXISTS", r.hexists("py:h", "a"), True)
        expect("HDEL", r.hdel("py:h", "a", "zz"), 1)
        expect("HKEYS", sorted(r.hkeys("py:h")), [b"b", b"c"])
        expect("HGETALL", r.hgetall("py:h"), {b"b": b"7", b"c": b"3.5"})
        expect("HGETALL of a missing key", r.hgetall("py:nohash"), {})

    def check_list(self, r):
        r.delete("py:l")
        expect("RPUSH", r.rpush("py:l", "b", "c"), 2)
        expect("LPUSH", r.lpush("py:l", "a"), 3)
        expect("LRANGE", r.lrange("py:l", 0, -1), [b"a", b"b", b"c"])
        expect("LLEN", r.llen("py:l"), 3)
        expect("LINDEX", r.lindex("py:l", 1), b"b")
        expect("LSET", r.lset("py:l", 1, "B"), True)
        expect("LPOP", r.lpop("py:l"), b"a")
        expect("RPOP", r.rpop("py:l"), b"c")
        expect("LRANGE after pops", r.lrange("py:l", 0, -1), [b"B"])
        expect("LPOP with count", r.lpop("py:l", 5), [b"B"])
        expect("LPOP of an empty list", r.lpop("py:l"), None)

    def check_set(self, r):
        r.delete("py:s")
        expect("SADD", r.sadd("py:s", "a", "b", "c", "a"), 3)
        expect("SMEMBERS", r.smembers("py:s"), {b"a", b"b", b"c"})
        expect("SISMEMBER", r.sismember("py:s", "a"), True)
        expect("SISMEMBER missing", r.sismember("py:s", "z"), False)
        expect("SMISMEMBER", r.smismember("py:s", ["a", "z"]), [True, False])
        expect("SCARD", r.scard("py:s"), 3)
        expect("SREM", r.srem("py:s", "a", "z"), 1)
        expect("SMEMBERS after SREM", r.smembers("py:s"), {b"b", b"c"})
        expect("SMEMBERS of a missing key", r.smembers("py:noset"), set())

    def check_zset(self, r):
        r.delete("py:z")
        expect("ZADD", r.zadd("py:z", {"a": 1, "b": 2, "c": 3}), 3)
        expect("ZSCORE", r.zscore("py:z", "b"), 2.0)
        expect("ZINCRBY", r.zincrby("py:z", 10, "a"), 11.0)
        expect("ZRANGE", r.zrange("py:z", 0, -1), [b"b", b"c", b"a"])
        expect(
            "ZRANGE WITHSCORES",
            pairs(r.zrange("py:z", 0, -1, withscores=True)),
            [(b"b", 2.0), (b"c", 3.0), (b"a", 11.0)],
        )
        expect("ZREVRANGE", r.zrevrange("py:z", 0, 0), [b"a"])
        expect("ZRANK", r.zrank("py:z", "c"), 1)
        expect("ZCARD", r.zcard("py:z"), 3)
        expect("ZCOUNT", r.zcount("py:z", 2, 3), 2)
        expect("ZRANGEBYSCORE", r.zrangebyscore("py:z", 2, 3), [b"b", b"c"])
        expect("ZREM", r.zrem("py:z", "b", "zz"), 1)
        expect("ZSCORE of a missing member", r.zscore("py:z", "b"), None)

    def check_expire_ttl(self, r):
        r.delete("py:exp", "py:exp2")
        r.set("py:exp", "v")
        expect("TTL without expiry", r.ttl("py:exp"), -1)
        expect("EXPIRE", r.expire("py:exp", 100), True)
        ttl = r.ttl("py:exp")
        expect_true("TTL after EXPIRE 100 is in 1..100", 0 < ttl <= 100, repr(ttl))
        pttl = r.pttl("py:exp")
        expect_true("PTTL after EXPIRE 100 is in 1..100000", 0 < pttl <= 100000, repr(pttl))
        expect("PERSIST", r.persist("py:exp"), True)
        expect("TTL after PERSIST", r.ttl("py:exp"), -1)
        expect("SET EX", r.set("py:exp2", "v", ex=50), True)
        ttl = r.ttl("py:exp2")
        expect_true("TTL after SET EX 50", 0 < ttl <= 50, repr(ttl))
        expect("TTL of a missing key", r.ttl("py:noexp"), -2)
        expect("EXPIRE of a missing key", r.expire("py:noexp", 10), False)

    def check_incr(self, r):
        r.delete("py:n")
        expect("INCR of a missing key", r.incr("py:n"), 1)
        expect("INCR", r.incr("py:n"), 2)
        expect("INCRBY", r.incrby("py:n", 40), 42)
        expect("DECR", r.decr("py:n"), 41)
        expect("DECRBY", r.decrby("py:n", 1), 40)
        expect("INCRBYFLOAT", r.incrbyfloat("py:n", 0.5), 40.5)
        r.set("py:notnum", "abc")
        expect_response_error("INCR of a non-integer", lambda: r.incr("py:notnum"), "not an integer")

    def check_big_value(self, r):
        value = os.urandom(BIG)
        expect("SET of a 20 MiB value", r.set("py:big", value), True)
        expect("STRLEN of the 20 MiB value", r.strlen("py:big"), BIG)
        got = r.get("py:big")
        expect_true(
            "GET returns the 20 MiB value byte for byte",
            got == value,
            f"got {None if got is None else len(got)} bytes",
        )
        expect("MGET with the 20 MiB value among small ones", r.mget(["py:big", "absent:big"])[0] == value, True)
        expect("GET after the big value", r.ping(), True)
        r.delete("py:big")

    def check_client_name_id(self, r):
        client_id = r.client_id()
        expect_true("CLIENT ID is a positive integer", isinstance(client_id, int) and client_id > 0, repr(client_id))
        expect("CLIENT ID is stable on one connection", r.client_id(), client_id)
        expect("CLIENT GETNAME before SETNAME", r.client_getname(), None)
        expect("CLIENT SETNAME", r.client_setname("rampart-py"), True)
        expect("CLIENT GETNAME", text(r.client_getname()), "rampart-py")
        other = self.connect()
        expect_true("two connections get different CLIENT IDs", other.client_id() != client_id)
        expect("CLIENT GETNAME on another connection", other.client_getname(), None)
        other.close()

    def check_ping_echo(self, r):
        expect("PING", r.ping(), True)
        expect("ECHO", r.echo("hello"), b"hello")
        expect("ECHO of binary bytes", r.echo(b"\x00\r\n\xff"), b"\x00\r\n\xff")

    def check_info_keyspace(self, r):
        r.mset({key: "x" for key in MULTI})
        r.set("py:info:ttl", "v", ex=1000)
        info = r.info()
        expect_true("INFO has redis_version", "redis_version" in info, repr(sorted(info)))
        db0 = info.get("db0")
        expect_true("INFO has a db0 keyspace line", isinstance(db0, dict), repr(info))
        if self.backends:
            keys = expires = 0
            for port in self.backends:
                shard = redis.Redis(port=port, protocol=2).info("keyspace").get("db0", {})
                keys += shard.get("keys", 0)
                expires += shard.get("expires", 0)
            expect("INFO db0 keys (sum over the shards)", db0.get("keys"), keys)
            expect("INFO db0 expires (sum over the shards)", db0.get("expires"), expires)
        else:
            expect_true("INFO db0 keys counts the multi keys", db0.get("keys", 0) >= len(MULTI), repr(db0))
        # avg_ttl is Redis's running estimate and moves between calls; keys and expires do not.
        counts = lambda db: {field: (db or {}).get(field) for field in ("keys", "expires")}
        expect("INFO keyspace db0 (keys, expires)", counts(r.info("keyspace").get("db0")), counts(db0))
        r.delete(*MULTI, "py:info:ttl")

    def check_unknown_command(self, r):
        before = r.client_id()
        expect_response_error(
            "an unknown command raises ResponseError naming it",
            lambda: r.execute_command("NOSUCHCMD", "arg1"),
            "unknown command",
            "NOSUCHCMD",
        )
        expect("PING after the unknown command", r.ping(), True)
        expect("SET after the unknown command", r.set("py:after", "ok"), True)
        expect("GET after the unknown command", r.get("py:after"), b"ok")
        expect("same connection after the unknown command (CLIENT ID)", r.client_id(), before)

    def check_cross_shard(self, r):
        if not self.cross:
            raise CheckFailed("--cross KEY_A KEY_B is required for this check")
        a, b = self.cross
        r.delete(a, b)
        r.sadd(a, "1", "2")
        r.sadd(b, "2", "3")
        expect_response_error(
            f"SUNION {a} {b} (different shards)",
            lambda: r.sunion(a, b),
            "different shards",
        )
        expect_response_error(
            f"RENAME {a} {b} (different shards)",
            lambda: r.rename(a, b),
            "different shards",
        )
        expect(f"{a} is untouched after the refused RENAME", r.smembers(a), {b"1", b"2"})
        expect(f"{b} is untouched after the refused RENAME", r.smembers(b), {b"2", b"3"})
        expect("PING after the cross-shard errors", r.ping(), True)
        r.delete(a, b)

    def check_hash_tagged_sunion(self, r):
        r.delete("{tag}:a", "{tag}:b", "{tag}:u", "{tag}:v")
        r.sadd("{tag}:a", "1", "2")
        r.sadd("{tag}:b", "2", "3")
        expect("hash-tagged SUNION", r.sunion("{tag}:a", "{tag}:b"), {b"1", b"2", b"3"})
        expect("hash-tagged SINTER", r.sinter("{tag}:a", "{tag}:b"), {b"2"})
        expect("hash-tagged SUNIONSTORE", r.sunionstore("{tag}:u", "{tag}:a", "{tag}:b"), 3)
        expect("hash-tagged RENAME", r.rename("{tag}:u", "{tag}:v"), True)
        expect("SMEMBERS of the renamed key", r.smembers("{tag}:v"), {b"1", b"2", b"3"})
        r.delete("{tag}:a", "{tag}:b", "{tag}:v")

    def run(self):
        checks = [name for name in dir(self) if name.startswith("check_")]
        order = sorted(checks, key=lambda name: getattr(Suite, name).__code__.co_firstlineno)
        failures = 0
        for name in order:
            r = self.connect()
            try:
                getattr(self, name)(r)
                print(f"ok   {name}")
            except CheckFailed as failure:
                failures += 1
                print(f"FAIL {name}: {failure}", file=sys.stderr)
            except Exception:
                failures += 1
                print(f"FAIL {name}: unexpected exception\n{traceback.format_exc()}", file=sys.stderr)
            finally:
                r.close()
        print(f"{len(order) - failures}/{len(order)} checks passed (protocol {self.protocol})")
        return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("--protocol", choices=["default", "2", "3"], default="default")
    parser.add_argument("--cross", nargs=2, metavar=("KEY_A", "KEY_B"))
    parser.add_argument("--backends", type=lambda text: [int(port) for port in text.split(",")])
    args = parser.parse_args()
    suite = Suite(args.port, args.protocol, args.cross, args.backends)
    failures = suite.run()
    if failures:
        print(f"redis-py {redis.__version__}: {failures} check(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
