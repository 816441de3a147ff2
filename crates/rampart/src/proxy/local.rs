//! Commands the proxy answers itself: PING, ECHO, QUIT, HELLO, AUTH, CLIENT, SELECT, COMMAND
//! and INFO, and SCRIPT, which it sends to every shard. Together they cover the connection handshakes of redis-py, redis-rs, node-redis,
//! Jedis, Lettuce and go-redis. Pure logic over the connection's state; no I/O.

use bytes::BytesMut;
use rampart_commands::{Arguments, Command, Kind, LocalCommand, commands};
use rampart_config::Pool;
use rampart_protocol::{Protocol, encode};

/// The Redis version the proxy reports in HELLO and INFO: the command surface it serves.
pub const REPORTED_REDIS_VERSION: &str = "7.0.0";

/// What a client has negotiated on its connection.
pub struct ConnectionState {
    pub id: u64,
    pub protocol: Protocol,
    pub authenticated: bool,
    pub name: Option<Vec<u8>>,
}

impl ConnectionState {
    /// A new client's state: RESP2, not authenticated, no name.
    pub fn new(id: u64) -> ConnectionState {
        ConnectionState {
            id,
            protocol: Default::default(),
            authenticated: false,
            name: None,
        }
    }
}

/// What the session must do after a local command.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The reply is in the output buffer.
    Replied,
    /// The reply is in the output buffer; close once it is written.
    Close,
    /// INFO: the proxy's sections are in the output buffer; the keyspace must be summed over
    /// the shards and appended.
    InfoWithKeyspace,
    /// The request goes, as it is, to every shard; the replies combine as said.
    Broadcast(Broadcast),
}

/// How the replies of a request sent to every shard combine.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Broadcast {
    /// Every shard must give the same reply (SCRIPT LOAD's SHA1).
    SameReply,
    /// Arrays of 0/1, one per argument: 1 only where every shard says 1 (SCRIPT EXISTS).
    AllSayYes,
    /// `+OK` once every shard said it (SCRIPT FLUSH).
    AllOk,
}

/// Facts about the running proxy that INFO reports, gathered only for INFO.
pub struct ProxyFacts {
    pub live_servers: usize,
    pub uptime_seconds: u64,
    pub connected_clients: u64,
    pub parked_clients: u64,
    pub workers: usize,
}

/// Answers `command` for a client; the reply (or INFO's local part) goes to `out`.
pub fn answer(
    command: LocalCommand,
    args: &dyn Arguments,
    state: &mut ConnectionState,
    pool: &Pool,
    facts: impl FnOnce() -> ProxyFacts,
    out: &mut BytesMut,
) -> Outcome {
    match command {
        LocalCommand::Ping => {
            match args.count() {
                1 => encode::simple_string(out, b"PONG"),
                2 => encode::bulk_string(out, args.get(1)),
                _ => encode::err(out, b"wrong number of arguments for 'ping' command"),
            }
            Outcome::Replied
        }
        LocalCommand::Echo => {
            encode::bulk_string(out, args.get(1));
            Outcome::Replied
        }
        LocalCommand::Quit => {
            encode::simple_string(out, b"OK");
            Outcome::Close
        }
        LocalCommand::Auth => {
            auth(args, state, pool, out);
            Outcome::Replied
        }
        LocalCommand::Hello => {
            hello(args, state, pool, out);
            Outcome::Replied
        }
        LocalCommand::Client => {
            client(args, state, out);
            Outcome::Replied
        }
        LocalCommand::Select => {
            select(args, pool, out);
            Outcome::Replied
        }
        LocalCommand::Command => {
            command_info(args, state.protocol, out);
            Outcome::Replied
        }
        LocalCommand::Info => info(args, state, pool, &facts(), out),
        LocalCommand::Script => script(args, out),
    }
}

/// SCRIPT LOAD, EXISTS and FLUSH go to every shard (EVALSHA runs on the shard of its keys);
/// the other subcommands act on one server's running script and are refused.
fn script(args: &dyn Arguments, out: &mut BytesMut) -> Outcome {
    let subcommand = args.get(1).to_ascii_uppercase();
    let flush_mode = args.count() == 2
        || (args.count() == 3
            && [&b"ASYNC"[..], b"SYNC"]
                .iter()
                .any(|mode| args.get(2).eq_ignore_ascii_case(mode)));
    match subcommand.as_slice() {
        b"LOAD" if args.count() == 3 => Outcome::Broadcast(Broadcast::SameReply),
        b"EXISTS" if args.count() >= 3 => Outcome::Broadcast(Broadcast::AllSayYes),
        b"FLUSH" if flush_mode => Outcome::Broadcast(Broadcast::AllOk),
        b"LOAD" | b"EXISTS" | b"FLUSH" => {
            encode::error_fmt(
                out,
                b"ERR",
                format_args!(
                    "wrong number of arguments for 'script|{}' command",
                    String::from_utf8_lossy(&subcommand).to_ascii_lowercase()
                ),
            );
            Outcome::Replied
        }
        _ => {
            encode::error_fmt(
                out,
                b"ERR",
                format_args!(
                    "SCRIPT {} is not supported by rampart: only LOAD, EXISTS and FLUSH, which go to every shard",
                    String::from_utf8_lossy(&subcommand)
                ),
            );
            Outcome::Replied
        }
    }
}

/// Whether `user`/`password` match the pool's `redis_auth` (the user must be `default`).
fn credentials_match(pool: &Pool, user: &[u8], password: &[u8]) -> bool {
    pool.redis_auth
        .as_ref()
        .is_some_and(|expected| user == b"default" && expected.as_bytes() == password)
}

fn auth(args: &dyn Arguments, state: &mut ConnectionState, pool: &Pool, out: &mut BytesMut) {
    let (user, password): (&[u8], &[u8]) = match args.count() {
        2 => (b"default", args.get(1)),
        3 => (args.get(1), args.get(2)),
        _ => {
            encode::err(out, b"syntax error");
            return;
        }
    };
    if pool.redis_auth.is_none() {
        if args.count() == 2 {
            encode::err(out, b"Client sent AUTH, but no password is set");
        } else if user == b"default" {
            encode::simple_string(out, b"OK");
        } else {
            wrong_pass(out);
        }
        return;
    }
    state.authenticated = credentials_match(pool, user, password);
    if state.authenticated {
        encode::simple_string(out, b"OK");
    } else if args.count() == 2 {
        encode::err(out, b"invalid password");
    } else {
        wrong_pass(out);
    }
}

fn wrong_pass(out: &mut BytesMut) {
    encode::error(
        out,
        b"WRONGPASS",
        b"invalid username-password pair or user is disabled.",
    );
}

/// What Redis answers a client name with a space, a newline or another special character.
const INVALID_CLIENT_NAME: &[u8] =
    b"Client names cannot contain spaces, newlines or special characters.";

/// Whether Redis accepts `name` as a client name (CLIENT SETNAME, HELLO ... SETNAME): printable
/// ASCII without spaces, so it cannot forge a field or a line of CLIENT INFO.
fn is_valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&byte| byte > b' ' && byte <= b'~')
}

/// An integer as Redis's `string2ll` reads it: an optional `-`, then digits without a leading
/// zero (`0` itself excepted), within 64 bits.
pub(super) fn redis_integer(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let leading_zero = digits.first() == Some(&b'0') && (digits.len() > 1 || digits != text);
    if digits.is_empty() || leading_zero || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn hello(args: &dyn Arguments, state: &mut ConnectionState, pool: &Pool, out: &mut BytesMut) {
    let mut protocol = state.protocol;
    if args.count() > 1 {
        protocol = match redis_integer(args.get(1)) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => {
                encode::error(out, b"NOPROTO", b"unsupported protocol version");
                return;
            }
            None => {
                encode::err(out, b"Protocol version is not an integer or out of range");
                return;
            }
        };
    }
    let mut name = None;
    let mut index = 2;
    while index < args.count() {
        let option = args.get(index).to_ascii_uppercase();
        match option.as_slice() {
            b"AUTH" if index + 2 < args.count() => {
                let (user, password) = (args.get(index + 1), args.get(index + 2));
                let accepted = match pool.redis_auth {
                    Some(_) => credentials_match(pool, user, password),
                    None => user == b"default",
                };
                if !accepted {
                    wrong_pass(out);
                    return;
                }
                state.authenticated = true;
                index += 3;
            }
            b"SETNAME" if index + 1 < args.count() => {
                let wanted = args.get(index + 1);
                if !is_valid_client_name(wanted) {
                    encode::err(out, INVALID_CLIENT_NAME);
                    return;
                }
                name = Some(wanted.to_vec());
                index += 2;
            }
            _ => {
                encode::error_fmt(
                    out,
                    b"ERR",
                    format_args!(
                        "Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(&option)
                    ),
                );
                return;
            }
        }
    }
    if pool.redis_auth.is_some() && !state.authenticated {
        encode::error(
            out,
            b"NOAUTH",
            b"HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
        return;
    }
    if name.is_some() {
        state.name = name;
    }
    state.protocol = protocol;
    let version = match protocol {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    encode::map_header(out, protocol, 7);
    for (field, value) in [("server", "redis"), ("version", REPORTED_REDIS_VERSION)] {
        encode::bulk_string(out, field.as_bytes());
        encode::bulk_string(out, value.as_bytes());
    }
    encode::bulk_string(out, b"proto");
    encode::integer(out, version);
    encode::bulk_string(out, b"id");
    encode::integer(out, state.id as i64);
    for (field, value) in [("mode", "standalone"), ("role", "master")] {
        encode::bulk_string(out, field.as_bytes());
        encode::bulk_string(out, value.as_bytes());
    }
    encode::bulk_string(out, b"modules");
    encode::array_header(out, 0);
}

fn client(args: &dyn Arguments, state: &mut ConnectionState, out: &mut BytesMut) {
    let subcommand = args.get(1).to_ascii_uppercase();
    match (subcommand.as_slice(), args.count()) {
        (b"SETNAME", 3) => {
            let name = args.get(2);
            if !is_valid_client_name(name) {
                encode::err(out, INVALID_CLIENT_NAME);
            } else {
                state.name = (!name.is_empty()).then(|| name.to_vec());
                encode::simple_string(out, b"OK");
            }
        }
        (b"GETNAME", 2) => match &state.name {
            Some(name) => encode::bulk_string(out, name),
            None => encode::null(out, state.protocol),
        },
        (b"ID", 2) => encode::integer(out, state.id as i64),
        (b"SETINFO", 4) => {
            let attribute = args.get(2).to_ascii_uppercase();
            if attribute == b"LIB-NAME" || attribute == b"LIB-VER" {
                encode::simple_string(out, b"OK");
            } else {
                encode::error_fmt(
                    out,
                    b"ERR",
                    format_args!(
                        "Unrecognized option '{}'",
                        String::from_utf8_lossy(args.get(2))
                    ),
                );
            }
        }
        (b"NO-EVICT" | b"NO-TOUCH", 3) => encode::simple_string(out, b"OK"),
        (b"INFO", 2) => {
            let name = state.name.as_deref().unwrap_or_default();
            let resp = if state.protocol == Protocol::Resp3 {
                3
            } else {
                2
            };
            let text = format!(
                "id={} name={} db=0 resp={resp}\n",
                state.id,
                String::from_utf8_lossy(name)
            );
            encode::verbatim_string(out, state.protocol, b"txt", text.as_bytes());
        }
        _ => encode::error_fmt(
            out,
            b"ERR",
            format_args!(
                "CLIENT {} is not supported by rampart: backend connections are shared by many clients",
                String::from_utf8_lossy(&subcommand)
            ),
        ),
    }
}

fn select(args: &dyn Arguments, pool: &Pool, out: &mut BytesMut) {
    let wanted = std::str::from_utf8(args.get(1))
        .ok()
        .and_then(|text| text.parse::<u32>().ok());
    match wanted {
        Some(db) if db == 0 || db == pool.redis_db => encode::simple_string(out, b"OK"),
        Some(db) => encode::error_fmt(
            out,
            b"ERR",
            format_args!(
                "SELECT {db} is not allowed: pool '{}' serves one database (redis_db {})",
                pool.name, pool.redis_db
            ),
        ),
        None => encode::err(out, b"value is not an integer or out of range"),
    }
}

/// One `COMMAND INFO` entry as Redis 7 lays it out.
fn write_command_entry(command: &Command, protocol: Protocol, out: &mut BytesMut) {
    let (first, last, step) = command.key_positions();
    encode::array_header(out, 10);
    encode::bulk_string(out, command.name.as_bytes());
    encode::integer(out, i64::from(command.arity));
    let mut flags: Vec<&[u8]> = vec![if command.readonly {
        b"readonly"
    } else {
        b"write"
    }];
    if matches!(command.kind, Kind::Local(_)) {
        flags.push(b"fast");
    }
    encode::set_header(out, protocol, flags.len());
    for flag in flags {
        encode::simple_string(out, flag);
    }
    for position in [first, last, step] {
        encode::integer(out, i64::from(position));
    }
    encode::set_header(out, protocol, 0);
    encode::set_header(out, protocol, 0);
    encode::array_header(out, 0);
    encode::array_header(out, command.subcommands.len());
    for subcommand in command.subcommands {
        write_command_entry(subcommand, protocol, out);
    }
}

fn is_served(command: &Command) -> bool {
    !matches!(command.kind, Kind::Unsupported(_))
}

fn command_info(args: &dyn Arguments, protocol: Protocol, out: &mut BytesMut) {
    let served = || commands().iter().filter(|command| is_served(command));
    let subcommand = (args.count() > 1).then(|| args.get(1).to_ascii_uppercase());
    match subcommand.as_deref() {
        None => {
            encode::array_header(out, served().count());
            for command in served() {
                write_command_entry(command, protocol, out);
            }
        }
        Some(b"COUNT") if args.count() == 2 => encode::integer(out, served().count() as i64),
        Some(b"COUNT") => {
            encode::err(
                out,
                b"wrong number of arguments for 'command|count' command",
            );
        }
        Some(b"LIST") => {
            encode::array_header(out, served().count());
            for command in served() {
                encode::bulk_string(out, command.name.as_bytes());
            }
        }
        Some(b"INFO") => {
            encode::array_header(out, args.count() - 2);
            for index in 2..args.count() {
                match rampart_commands::lookup(args.get(index)).filter(|command| is_served(command))
                {
                    Some(command) => write_command_entry(command, protocol, out),
                    None => encode::null_array(out, protocol),
                }
            }
        }
        Some(b"DOCS") => encode::map_header(out, protocol, 0),
        Some(other) => encode::error_fmt(
            out,
            b"ERR",
            format_args!(
                "COMMAND {} is not supported by rampart",
                String::from_utf8_lossy(other)
            ),
        ),
    }
}

fn info(
    args: &dyn Arguments,
    state: &ConnectionState,
    pool: &Pool,
    facts: &ProxyFacts,
    out: &mut BytesMut,
) -> Outcome {
    let wants = |section: &str| {
        args.count() == 1
            || (1..args.count()).any(|index| {
                let asked = args.get(index);
                [section.as_bytes(), b"all", b"everything", b"default"]
                    .iter()
                    .any(|name| asked.eq_ignore_ascii_case(name))
            })
    };
    let mut text = String::new();
    if wants("server") {
        text.push_str(&format!(
            "# Server\r\nredis_version:{REPORTED_REDIS_VERSION}\r\nrampart_version:{}\r\nredis_mode:standalone\r\n\
             process_id:{}\r\nuptime_in_seconds:{}\r\nio_threads_active:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            facts.uptime_seconds,
            facts.workers,
        ));
    }
    if wants("clients") {
        text.push_str(&format!(
            "# Clients\r\nconnected_clients:{}\r\nparked_clients:{}\r\n\r\n",
            facts.connected_clients, facts.parked_clients
        ));
    }
    if wants("proxy") {
        text.push_str(&format!(
            "# Proxy\r\npool:{}\r\nhash:{}\r\ndistribution:{}\r\nservers:{}\r\nlive_servers:{}\r\nredis_db:{}\r\n\r\n",
            pool.name,
            pool.hash.name(),
            pool.distribution.name(),
            pool.servers.len(),
            facts.live_servers,
            pool.redis_db,
        ));
    }
    out.extend_from_slice(text.as_bytes());
    if wants("keyspace") {
        Outcome::InfoWithKeyspace
    } else {
        let local = out.split();
        encode::verbatim_string(out, state.protocol, b"txt", &local);
        Outcome::Replied
    }
}
