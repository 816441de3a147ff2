//! What a client may say and how it is answered, through pools over real redis-servers: AUTH
//! in all its forms with `redis_auth` (and `redis_db`), RESP3 after HELLO 3, unknown and
//! unsupported commands, malformed frames, inline commands and QUIT, and a client's half-close.

mod support;

use std::io;

use support::process::Redis;
use support::random::scrambled;
use support::resp::{Client, Reply, bulk, cmd, encode_all, error, nil, ok, pong, show};
use support::shards::Cluster;

// ---------------------------------------------------------------------------------------------
// AUTH.
// ---------------------------------------------------------------------------------------------

/// nutcracker's text; Redis 7 ends it with a period. Either is accepted.
const NOAUTH: &str = "NOAUTH Authentication required";

/// Redis's `NOAUTH Authentication required.` as nutcracker's `NOAUTH Authentication required`.
fn noauth_as_nutcracker(reply: Reply) -> Reply {
    match reply {
        Reply::Error(text) if text == "NOAUTH Authentication required." => error(NOAUTH),
        other => other,
    }
}
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// A connection whose NOAUTH replies are read as nutcracker's text.
struct Auth<'c>(&'c mut Client);

impl Auth<'_> {
    fn call_str(&mut self, args: &[&str]) -> Reply {
        noauth_as_nutcracker(self.0.call_str(args))
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.0.send_raw(bytes);
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        self.0.read_reply().map(noauth_as_nutcracker)
    }
}

impl Cluster {
    /// Backends with `requirepass pw`. (Set once started: `Redis::start` waits for +PONG,
    /// which a server started with `--requirepass` never gives.)
    fn start_with_password(shards: usize, directives: &str) -> Cluster {
        let redis: Vec<Redis> = (0..shards)
            .map(|_| {
                let redis = Redis::start(&[]);
                let mut conn = Client::open(redis.port);
                assert_eq!(conn.call_str(&["CONFIG", "SET", "requirepass", "pw"]), ok());
                assert_eq!(
                    noauth_as_nutcracker(Client::open(redis.port).call_str(&["PING"])),
                    error(NOAUTH)
                );
                redis
            })
            .collect();
        Cluster::over(redis, directives)
    }
}

fn authed(port: u16) -> Client {
    let mut conn = Client::open(port);
    assert_eq!(conn.call_str(&["AUTH", "pw"]), ok(), "direct AUTH");
    conn
}

#[test]
fn auth_in_all_its_forms_on_a_pool_with_redis_auth() {
    let cluster = Cluster::start_with_password(2, "  redis_auth: pw\n");
    let mut conn = cluster.conn();
    let mut conn = Auth(&mut conn);
    assert_eq!(conn.call_str(&["PING"]), error(NOAUTH));
    assert_eq!(conn.call_str(&["GET", "auth:k"]), error(NOAUTH));
    assert_eq!(conn.call_str(&["SET", "auth:k", "v"]), error(NOAUTH));
    assert_eq!(
        conn.call_str(&["AUTH", "wrong"]),
        error("ERR invalid password")
    );
    assert_eq!(conn.call_str(&["PING"]), error(NOAUTH));
    assert_eq!(
        conn.call_str(&["AUTH"]),
        error("ERR wrong number of arguments for 'auth' command")
    );
    assert_eq!(
        conn.call_str(&["AUTH", "a", "b", "c"]),
        error("ERR syntax error")
    );
    assert_eq!(conn.call_str(&["AUTH", "pw"]), ok());
    assert_eq!(conn.call_str(&["PING"]), pong());
    assert_eq!(conn.call_str(&["SET", "auth:k", "v"]), ok());
    assert_eq!(conn.call_str(&["GET", "auth:k"]), bulk("v"));
    assert_eq!(conn.call_str(&["AUTH", "default", "pw"]), ok());
    assert_eq!(conn.call_str(&["GET", "auth:k"]), bulk("v"));
    assert_eq!(conn.call_str(&["AUTH", "someone", "pw"]), error(WRONGPASS));
    // A bad AUTH after a good one de-authenticates (as nutcracker does).
    assert_eq!(conn.call_str(&["AUTH", "pw"]), ok());
    assert_eq!(
        conn.call_str(&["AUTH", "wrong"]),
        error("ERR invalid password")
    );
    assert_eq!(conn.call_str(&["GET", "auth:k"]), error(NOAUTH));
    assert_eq!(conn.call_str(&["PING"]), error(NOAUTH));

    // Local replies keep their place in a pipeline.
    let commands = vec![
        cmd(&["GET", "auth:k"]),
        cmd(&["AUTH", "pw"]),
        cmd(&["SET", "auth:p", "1"]),
        cmd(&["GET", "auth:k"]),
        cmd(&["AUTH", "nope"]),
        cmd(&["GET", "auth:p"]),
        cmd(&["AUTH", "default", "pw"]),
        cmd(&["GET", "auth:p"]),
    ];
    conn.send_raw(&encode_all(&commands));
    let wanted = [
        error(NOAUTH),
        ok(),
        ok(),
        bulk("v"),
        error("ERR invalid password"),
        error(NOAUTH),
        ok(),
        bulk("1"),
    ];
    for (command, want) in commands.iter().zip(&wanted) {
        assert_eq!(&conn.read_reply().unwrap(), want, "{}", show(command));
    }

    // HELLO 3 AUTH authenticates and answers with a RESP3 map.
    let mut hello = cluster.conn();
    assert!(
        matches!(hello.call_str(&["HELLO", "3"]), Reply::Error(text) if text.starts_with("NOAUTH")),
        "HELLO without AUTH on a password pool"
    );
    assert_eq!(
        hello.call_str(&["HELLO", "3", "AUTH", "default", "wrong"]),
        error(WRONGPASS)
    );
    match hello.call_str(&["HELLO", "3", "AUTH", "default", "pw"]) {
        Reply::Map(pairs) => {
            let field = |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == bulk(name))
                    .map(|(_, value)| value.clone())
                    .unwrap_or_else(|| panic!("HELLO map has no {name}: {pairs:?}"))
            };
            assert_eq!(field("proto"), Reply::Integer(3));
            assert_eq!(field("server"), bulk("redis"));
        }
        other => panic!("HELLO 3 AUTH gave {other:?}"),
    }
    assert_eq!(hello.call_str(&["GET", "auth:k"]), bulk("v"));
    assert_eq!(hello.call_str(&["PING"]), pong());
    // RESP3 end to end: a missing key is RESP3's null.
    assert_eq!(hello.call_str(&["GET", "auth:missing"]), Reply::Null);

    // The data went to the password-protected backends.
    let stored: usize = cluster
        .redis
        .iter()
        .map(|redis| match authed(redis.port).call_str(&["DBSIZE"]) {
            Reply::Integer(count) => count as usize,
            other => panic!("DBSIZE gave {other:?}"),
        })
        .sum();
    assert_eq!(stored, 2, "auth:k and auth:p on the backends");
}

/// A client that said HELLO 3 gets RESP3 replies, split commands included.
#[test]
fn resp3_client_gets_resp3_replies_including_split_commands() {
    let cluster = Cluster::start(3, "", &[]);
    let keys = cluster.key_per_shard("r3:");
    let mut conn = cluster.conn();
    assert!(matches!(conn.call_str(&["HELLO", "3"]), Reply::Map(_)));
    assert_eq!(conn.call_str(&["MSET", &keys[0], "a", &keys[2], "c"]), ok());
    assert_eq!(
        conn.call_str(&["MGET", &keys[0], &keys[1], &keys[2], "r3:none"]),
        Reply::Array(Some(vec![bulk("a"), Reply::Null, bulk("c"), Reply::Null]))
    );
    assert_eq!(conn.call_str(&["GET", &keys[1]]), Reply::Null);
    assert_eq!(
        conn.call_str(&["HSET", "r3:h", "f", "v"]),
        Reply::Integer(1)
    );
    assert_eq!(
        conn.call_str(&["HGETALL", "r3:h"]),
        Reply::Map(vec![(bulk("f"), bulk("v"))])
    );
    assert_eq!(
        conn.call_str(&["EXISTS", &keys[0], &keys[1], &keys[2]]),
        Reply::Integer(2)
    );
    assert_eq!(
        conn.call_str(&["DEL", &keys[0], &keys[1], &keys[2]]),
        Reply::Integer(2)
    );
    // Back to RESP2 on the same connection.
    assert!(matches!(conn.call_str(&["HELLO", "2"]), Reply::Array(_)));
    assert_eq!(
        conn.call_str(&["HGETALL", "r3:h"]),
        Reply::Array(Some(vec![bulk("f"), bulk("v")]))
    );
    assert_eq!(
        conn.call_str(&["MGET", &keys[0], "r3:h"]),
        Reply::Array(Some(vec![nil(), nil()]))
    );
}

#[test]
fn auth_on_a_pool_without_password_is_refused_and_the_connection_stays_open() {
    let cluster = Cluster::start(1, "", &[]);
    let mut conn = cluster.conn();
    assert_eq!(
        conn.call_str(&["AUTH", "x"]),
        error("ERR Client sent AUTH, but no password is set")
    );
    assert_eq!(conn.call_str(&["PING"]), pong());
    assert_eq!(conn.call_str(&["SET", "open:k", "v"]), ok());
    assert_eq!(conn.call_str(&["GET", "open:k"]), bulk("v"));
}

#[test]
fn redis_auth_with_redis_db_writes_into_that_database() {
    let cluster = Cluster::start_with_password(2, "  redis_auth: pw\n  redis_db: 3\n");
    let mut conn = cluster.conn();
    assert_eq!(conn.call_str(&["AUTH", "pw"]), ok());
    let keys: Vec<String> = (0..20).map(|n| format!("db3:{n}")).collect();
    for key in &keys {
        assert_eq!(conn.call_str(&["SET", key, key]), ok(), "SET {key}");
    }
    for key in &keys {
        assert_eq!(conn.call_str(&["GET", key]), bulk(key), "GET {key}");
    }
    let mut in_db3 = 0;
    for redis in &cluster.redis {
        let mut direct = authed(redis.port);
        assert_eq!(
            direct.call_str(&["DBSIZE"]),
            Reply::Integer(0),
            "db 0 stays empty"
        );
        assert_eq!(direct.call_str(&["SELECT", "3"]), ok());
        match direct.call_str(&["DBSIZE"]) {
            Reply::Integer(count) => in_db3 += count,
            other => panic!("DBSIZE gave {other:?}"),
        }
    }
    assert_eq!(in_db3, 20, "every key landed in db 3");
}

// ---------------------------------------------------------------------------------------------
// Refused commands and protocol errors.
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_and_unsupported_commands_get_one_error_and_the_connection_stays_open() {
    let cluster = Cluster::start(1, "", &[]);
    let mut conn = cluster.conn();
    assert_eq!(
        conn.call_str(&["FOO"]),
        error("ERR unknown command 'FOO', with args beginning with: ")
    );
    assert_eq!(conn.call_str(&["PING"]), pong());
    for command in [
        &["CONFIG", "GET", "x"][..],
        &["MOVE", "x", "1"],
        &["CLUSTER", "INFO"],
        &["SLOWLOG", "GET"],
    ] {
        match conn.call_str(command) {
            Reply::Error(text) => {
                assert!(text.starts_with("ERR "), "{command:?}: -{text}");
                assert!(
                    text.to_lowercase().contains(&command[0].to_lowercase()),
                    "{command:?}: the error names the command: -{text}"
                );
            }
            other => panic!("{command:?} gave {other:?}"),
        }
        assert_eq!(conn.call_str(&["PING"]), pong(), "after {command:?}");
    }
    // All of them pipelined: one reply each, in order.
    let commands = vec![
        cmd(&["SET", "u:k", "1"]),
        cmd(&["FOO", "bar"]),
        cmd(&["CONFIG", "GET", "x"]),
        cmd(&["GET", "u:k"]),
        cmd(&["SLOWLOG", "GET"]),
        cmd(&["PING"]),
    ];
    conn.send_raw(&encode_all(&commands));
    let replies: Vec<Reply> = (0..commands.len())
        .map(|_| conn.read_reply().unwrap())
        .collect();
    assert_eq!(replies[0], ok());
    assert!(matches!(&replies[1], Reply::Error(text) if text.contains("'FOO'")));
    assert!(matches!(&replies[2], Reply::Error(text) if text.to_lowercase().contains("config")));
    assert_eq!(replies[3], bulk("1"));
    assert!(matches!(&replies[4], Reply::Error(text) if text.to_lowercase().contains("slowlog")));
    assert_eq!(replies[5], pong());
}

#[test]
fn malformed_frame_gets_a_protocol_error_then_the_connection_closes() {
    let cluster = Cluster::start(1, "", &[]);
    let mut conn = cluster.conn();
    assert_eq!(conn.call_str(&["SET", "p:k", "v"]), ok());
    // Replies to the requests before the bad frame still arrive, in order.
    let mut bytes = encode_all(&[cmd(&["SET", "p:k", "w"]), cmd(&["GET", "p:k"])]);
    bytes.extend_from_slice(b"*1\r\n$x\r\n");
    conn.send_raw(&bytes);
    assert_eq!(conn.read_reply().unwrap(), ok());
    assert_eq!(conn.read_reply().unwrap(), bulk("w"));
    match conn.read_reply() {
        Ok(Reply::Error(text)) => assert!(
            text.starts_with("ERR Protocol error: "),
            "protocol error reply: -{text}"
        ),
        other => panic!("malformed frame gave {other:?}"),
    }
    assert!(conn.closed_by_peer(), "closed after the protocol error");
}

#[test]
fn inline_commands_work_and_quit_says_ok_then_closes() {
    let cluster = Cluster::start(1, "", &[]);
    let mut conn = cluster.conn();
    conn.send_raw(b"PING\r\n");
    assert_eq!(conn.read_reply().unwrap(), pong());
    conn.send_raw(b"SET inline:k hello\r\nGET inline:k\r\nEXISTS inline:none\r\n");
    assert_eq!(conn.read_reply().unwrap(), ok());
    assert_eq!(conn.read_reply().unwrap(), bulk("hello"));
    assert_eq!(conn.read_reply().unwrap(), Reply::Integer(0));
    assert_eq!(conn.call_str(&["QUIT"]), ok());
    assert!(conn.closed_by_peer(), "closed after QUIT");

    // Pipelined: replies before QUIT arrive, what follows QUIT is dropped.
    let mut conn = cluster.conn();
    let commands = vec![
        cmd(&["SET", "quit:k", "1"]),
        cmd(&["QUIT"]),
        cmd(&["SET", "quit:k", "2"]),
    ];
    conn.send_raw(&encode_all(&commands));
    assert_eq!(conn.read_reply().unwrap(), ok());
    assert_eq!(conn.read_reply().unwrap(), ok());
    assert!(conn.closed_by_peer(), "closed after QUIT");
    assert_eq!(cluster.conn().call_str(&["GET", "quit:k"]), bulk("1"));
}

#[test]
fn client_half_close_still_gets_every_pending_reply() {
    let cluster = Cluster::start(3, "", &[]);
    let mut conn = cluster.conn();
    let commands: Vec<Vec<Vec<u8>>> = (0..2000)
        .map(|n| {
            let key = scrambled("hc:", n / 2);
            if n % 2 == 0 {
                cmd(&["SET", &key, &n.to_string()])
            } else {
                cmd(&["GET", &key])
            }
        })
        .collect();
    conn.send_raw(&encode_all(&commands));
    conn.shutdown_write().expect("half-close");
    for (n, command) in commands.iter().enumerate() {
        let want = if n % 2 == 0 {
            ok()
        } else {
            bulk((n - 1).to_string())
        };
        assert_eq!(
            conn.read_reply()
                .unwrap_or_else(|error| panic!("reply {n} to `{}`: {error}", show(command))),
            want,
            "reply {n} to `{}`",
            show(command)
        );
    }
    assert!(conn.closed_by_peer(), "closed once the replies are written");
}
