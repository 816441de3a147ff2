#!/bin/sh
# Runs keepalived's configuration test (`keepalived -t`) on every corpus file and prints its
# verdict next to rampart's (the directory the file is in). Needs root and keepalived; it
# works in a throw-away network namespace with interfaces eth1 and eth2, because
# `keepalived -t` also checks that the interfaces exist. `-t` only reads the configuration:
# nothing is started and no address is added.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
ns="rampart-kacheck-$$"
ip netns add "$ns" || exit 1
trap 'ip netns del "$ns"' EXIT
ip -n "$ns" link add eth1 type veth peer name eth2
ip -n "$ns" link set lo up
ip -n "$ns" link set eth1 up
ip -n "$ns" link set eth2 up
for file in "$dir"/accept/*.conf "$dir"/reject/*.conf; do
    verdict=$(basename "$(dirname "$file")")
    log=$(cd "$(dirname "$file")" && ip netns exec "$ns" keepalived -t -f "$file" -l -D 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ]; then keepalived=accepts; else keepalived="rejects (exit $rc)"; fi
    # A disagreement must be explained by a "! keepalived:" line in the file.
    flag=
    case "$verdict:$rc" in
        accept:0 | reject:[1-9]*) ;;
        *) grep -q '^! keepalived: ' "$file" && flag=' (explained in the file)' || flag=' MISMATCH' ;;
    esac
    printf '%s %s: keepalived %s%s\n' "$verdict" "$(basename "$file")" "$keepalived" "$flag"
    [ "$rc" -eq 0 ] || printf '%s\n' "$log" | sed 's/^/    /'
done
