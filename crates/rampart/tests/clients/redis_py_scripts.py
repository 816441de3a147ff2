"""redis-py's Script objects through rampart: EVALSHA on keys of every shard, with the
NOSCRIPT -> SCRIPT LOAD -> EVALSHA recovery redis-py does by itself, plus SCRIPT EXISTS and
SCRIPT FLUSH. Usage: redis_py_scripts.py PORT KEY... (keys spread over the shards)."""

import sys

import redis


def main() -> None:
    port, keys = int(sys.argv[1]), sys.argv[2:]
    client = redis.Redis(port=port, decode_responses=True)
    incr_by = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    for key in keys:
        client.delete(key)
        if incr_by(keys=[key], args=[5]) != 5 or incr_by(keys=[key], args=[2]) != 7:
            sys.exit(f"script on {key!r} did not count 5 then 7")
    sha = client.script_load("return 'loaded everywhere'")
    if client.script_exists(sha, "0" * 40) != [True, False]:
        sys.exit(f"SCRIPT EXISTS gave {client.script_exists(sha, '0' * 40)}")
    for key in keys:
        if client.evalsha(sha, 1, key) != "loaded everywhere":
            sys.exit(f"EVALSHA on the shard of {key!r} did not find the loaded script")
    if client.script_flush() is not True:
        sys.exit("SCRIPT FLUSH did not say OK")
    if client.script_exists(sha) != [False]:
        sys.exit("the script survived SCRIPT FLUSH on some shard")
    try:
        client.execute_command("SCRIPT", "KILL")
        sys.exit("SCRIPT KILL was not refused")
    except redis.ResponseError as error:
        if "not supported" not in str(error):
            sys.exit(f"SCRIPT KILL refused with {error}")
    print("redis-py scripts: ok")


if __name__ == "__main__":
    main()
