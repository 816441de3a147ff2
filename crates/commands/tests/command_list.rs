//! The list of every Redis 7.0 command with how rampart serves it next to nutcracker 0.5.0's
//! support, in `docs/compatibility.md` between its `commands:begin` and `commands:end` marks,
//! is made from the command table; this test fails when it is out of date.
//! `RAMPART_WRITE_COMMANDS=1 cargo test -p rampart-commands --test command_list` writes it.

use std::path::Path;

use rampart_commands::{
    Command, KeySpec, Keyspace, Kind, LocalCommand, Merge, PubSubCommand, SessionCommand, commands,
};

mod nutcracker;
use nutcracker::NUTCRACKER;

/// How rampart serves `command`, in a few words.
fn served(command: &Command) -> String {
    match command.kind {
        Kind::Forward => match command.keys {
            KeySpec::None => "shared: to the shard of the key `placeholder`".into(),
            KeySpec::Streams { .. } => {
                "shared: to the shard of its keys; with BLOCK, dedicated".into()
            }
            _ => "shared: to the shard of its keys".into(),
        },
        Kind::Split(merge) => format!(
            "split per shard, {}",
            match merge {
                Merge::Values => "values merged in key order",
                Merge::SumIntegers => "integers summed",
                Merge::AllOk => "OK when every shard says OK",
            }
        ),
        Kind::Local(local) => match local {
            LocalCommand::Info => "local, with the keyspace fanned out".into(),
            LocalCommand::Script => "fanned out (LOAD, EXISTS, FLUSH)".into(),
            _ => "local".into(),
        },
        Kind::Blocking => "dedicated: a connection of its own until answered".into(),
        Kind::Session(SessionCommand::Reset) => "local (ends what the client holds)".into(),
        Kind::Session(SessionCommand::Wait) => {
            "dedicated: the connection of the client's transaction or WATCH".into()
        }
        Kind::Session(_) => "dedicated: pinned to the transaction's shard".into(),
        Kind::PubSub(PubSubCommand::Publish) => "shared: to the channel's shard".into(),
        Kind::PubSub(PubSubCommand::PSubscribe | PubSubCommand::PUnsubscribe) => {
            "subscriber links on every shard".into()
        }
        Kind::PubSub(_) => "subscriber link to the channel's shard".into(),
        Kind::Keyspace(Keyspace::Scan) => "fanned out: one shard after another".into(),
        Kind::Keyspace(Keyspace::PubSubNumSub | Keyspace::PubSubShardNumSub) => {
            "split per channel's shard, pairs in request order".into()
        }
        Kind::Keyspace(Keyspace::PubSubNumPat) => "fanned out, the largest count".into(),
        Kind::Keyspace(_) => "fanned out to every shard, merged".into(),
        Kind::Unsupported(reason) => format!("refused: {reason}"),
    }
}

fn nutcracker(name: &str) -> &'static str {
    let top = name.split('|').next().unwrap_or(name);
    if NUTCRACKER.contains(&top) {
        "forwarded"
    } else {
        "closes the connection"
    }
}

fn list() -> String {
    let mut text = String::from(
        "Every command of Redis 7.0, how rampart serves it, and what nutcracker 0.5.0 does with \
         it. Generated from the command table (`crates/commands/src/table.rs`) by \
         `RAMPART_WRITE_COMMANDS=1 cargo test -p rampart-commands --test command_list`; a test \
         fails when it is out of date.\n\n\
         - **shared**: on the pipelined connections every client of the worker shares.\n\
         - **split**: one request per shard holding some of the keys, the replies merged.\n\
         - **fanned out**: sent to every shard (or one after another), the replies merged.\n\
         - **dedicated**: on a server connection the client holds alone \
         (`dedicated_connections`, see above).\n\
         - **local**: answered by rampart.\n\
         - **refused**: `-ERR` with the reason; the connection stays open.\n\n\
         | command | rampart | nutcracker 0.5.0 |\n|---|---|---|\n",
    );
    for command in commands() {
        let rows: Vec<&Command> = if command.subcommands.is_empty() {
            vec![command]
        } else {
            command.subcommands.iter().collect()
        };
        for row in rows {
            text.push_str(&format!(
                "| `{}` | {} | {} |\n",
                row.name.replace('|', " "),
                served(row),
                nutcracker(row.name)
            ));
        }
    }
    text
}

const BEGIN: &str = "<!-- commands:begin -->\n";
const END: &str = "<!-- commands:end -->";

#[test]
fn the_command_list_in_compatibility_md_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/compatibility.md");
    let current = std::fs::read_to_string(&path).expect("docs/compatibility.md");
    let start = current.find(BEGIN).expect("a commands:begin mark") + BEGIN.len();
    let end = current.find(END).expect("a commands:end mark");
    let wanted = list();
    if std::env::var_os("RAMPART_WRITE_COMMANDS").is_some() {
        let updated = format!("{}{wanted}{}", &current[..start], &current[end..]);
        std::fs::write(&path, updated).expect("write docs/compatibility.md");
        return;
    }
    assert!(
        current[start..end] == wanted,
        "the command list in docs/compatibility.md is out of date: run \
         RAMPART_WRITE_COMMANDS=1 cargo test -p rampart-commands --test command_list"
    );
}
