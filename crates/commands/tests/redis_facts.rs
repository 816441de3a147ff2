//! Cross-checks the command table against redis-server 7.0's own `COMMAND` reply, captured in
//! `data/redis-7.0-commands.txt`, and against nutcracker 0.5.0's command list.

use rampart_commands::{Command, KeySpec, Kind, commands, lookup};

mod nutcracker;
use nutcracker::NUTCRACKER;

/// One line of the captured `COMMAND` reply.
struct Fact<'a> {
    name: &'a str,
    arity: i32,
    positions: (i32, i32, i32),
    flags: Vec<&'a str>,
    specs: Vec<&'a str>,
}

fn facts() -> Vec<Fact<'static>> {
    include_str!("data/redis-7.0-commands.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let mut fields = line.split(' ');
            let mut next = || fields.next().expect("a field");
            let name = next();
            let arity = next().parse().expect("arity");
            let first = next().parse().expect("first key");
            let last = next().parse().expect("last key");
            let step = next().parse().expect("step");
            let flags = next().split(',').collect();
            Fact {
                name,
                arity,
                positions: (first, last, step),
                flags,
                specs: fields.collect(),
            }
        })
        .collect()
}

/// Our entry for a fact's name; `container|sub` names a subcommand.
fn entry(name: &str) -> Option<&'static Command> {
    match name.split_once('|') {
        Some((container, sub)) => lookup(container.as_bytes())?.subcommand(sub.as_bytes()),
        None => lookup(name.as_bytes()),
    }
}

fn routed(command: &Command) -> bool {
    matches!(command.kind, Kind::Forward | Kind::Split(_))
}

#[test]
fn every_redis_command_is_known() {
    let facts = facts();
    assert_eq!(
        facts.iter().filter(|fact| !fact.name.contains('|')).count(),
        240
    );
    for fact in facts.iter().filter(|fact| !fact.name.contains('|')) {
        assert!(
            lookup(fact.name.as_bytes()).is_some(),
            "{} missing",
            fact.name
        );
    }
    assert_eq!(commands().len(), 240);
    for command in commands() {
        for sub in command.subcommands {
            assert!(
                facts.iter().any(|fact| fact.name == sub.name),
                "{}",
                sub.name
            );
        }
    }
}

#[test]
fn subcommands_of_split_containers_are_all_there() {
    for fact in facts() {
        let Some((container, _)) = fact.name.split_once('|') else {
            continue;
        };
        let parent = lookup(container.as_bytes()).expect("container");
        if !parent.subcommands.is_empty() {
            assert!(entry(fact.name).is_some(), "{} missing", fact.name);
        }
    }
}

#[test]
fn arity_and_key_positions_match_redis() {
    for fact in facts() {
        let Some(command) = entry(fact.name) else {
            continue;
        };
        assert_eq!(command.arity, fact.arity, "{} arity", fact.name);
        assert_eq!(
            command.key_positions(),
            fact.positions,
            "{} key positions",
            fact.name
        );
        if routed(command) && command.keys != KeySpec::None {
            let readonly = fact.flags.contains(&"readonly");
            assert_eq!(command.readonly, readonly, "{} readonly", fact.name);
        }
    }
}

#[test]
fn keyed_redis_commands_have_keys_when_routed() {
    for fact in facts() {
        let Some(command) = entry(fact.name) else {
            continue;
        };
        if routed(command) {
            assert_eq!(
                fact.specs.is_empty(),
                command.keys == KeySpec::None,
                "{} keys",
                fact.name
            );
        }
    }
}

#[test]
fn numkeys_positions_match_redis_key_specs() {
    for fact in facts() {
        let Some(command) = entry(fact.name) else {
            continue;
        };
        let keynum = fact.specs.iter().find_map(|spec| {
            let (begin, find) = spec.split_once(':')?;
            let begin: u8 = begin.strip_prefix("index=")?.parse().ok()?;
            let mut numbers = find.strip_prefix("keynum=")?.split('/');
            let mut number = || numbers.next()?.parse::<u8>().ok();
            Some((begin + number()?, begin + number()?))
        });
        match command.keys {
            KeySpec::NumKeys {
                numkeys_at,
                first_key_at,
                ..
            } => assert_eq!(keynum, Some((numkeys_at, first_key_at)), "{}", fact.name),
            _ => assert_eq!(keynum, None, "{}", fact.name),
        }
    }
}

#[test]
fn store_and_stream_specs_match_redis_keywords() {
    for fact in facts() {
        let Some(command) = entry(fact.name) else {
            continue;
        };
        let keywords: Vec<&str> = fact
            .specs
            .iter()
            .filter_map(|spec| spec.strip_prefix("keyword="))
            .collect();
        match command.keys {
            KeySpec::Store {
                options_from,
                store,
                ..
            } if !keywords.is_empty() => {
                for word in store {
                    let expected = format!("{word}/{options_from}:range=0/1/0");
                    assert!(
                        keywords.contains(&expected.as_str()),
                        "{} {word}",
                        fact.name
                    );
                }
            }
            KeySpec::Streams { .. } => {
                assert!(keywords[0].starts_with("STREAMS/"), "{}", fact.name);
            }
            _ if command.name != "migrate" => assert!(keywords.is_empty(), "{}", fact.name),
            _ => {}
        }
    }
}

#[test]
fn redis_flags_agree_with_refusals() {
    for fact in facts() {
        let Some(command) = entry(fact.name) else {
            continue;
        };
        let refused = matches!(command.kind, Kind::Unsupported(_));
        let streams = matches!(command.keys, KeySpec::Streams { .. });
        if fact.flags.contains(&"blocking") && !streams {
            assert!(
                refused || matches!(command.kind, Kind::Blocking | Kind::Session(_)),
                "{} blocks but is sent on a shared connection",
                fact.name
            );
        }
        if matches!(command.kind, Kind::Blocking) {
            assert!(fact.flags.contains(&"blocking"), "{}", fact.name);
        }
        if fact.flags.contains(&"pubsub") {
            let introspection =
                fact.name.starts_with("pubsub|") && matches!(command.kind, Kind::Keyspace(_));
            assert!(
                refused
                    || matches!(command.kind, Kind::PubSub(_))
                    || introspection
                    || fact.name == "spublish",
                "{} is a pub/sub command routed as a plain one",
                fact.name
            );
        }
        if fact.flags.contains(&"admin") {
            assert!(refused, "{} is admin but not refused", fact.name);
        }
    }
}

#[test]
fn every_nutcracker_command_is_supported() {
    assert_eq!(NUTCRACKER.len(), 137);
    for name in NUTCRACKER {
        let command = lookup(name.as_bytes()).unwrap_or_else(|| panic!("{name} missing"));
        if *name == "move" {
            assert!(matches!(command.kind, Kind::Unsupported(_)));
        } else {
            assert!(
                !matches!(command.kind, Kind::Unsupported(_)),
                "{name} refused"
            );
        }
    }
}

#[test]
fn keys_match_redis_getkeys() {
    let cases = include_str!("data/redis-7.0-getkeys.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty());
    for case in cases {
        let (request, expected) = case.split_once('\t').expect("request and keys");
        let args: Vec<&[u8]> = request.split(' ').map(str::as_bytes).collect();
        let command = rampart_commands::resolve(&args).expect(request);
        let keys: Vec<&str> = command
            .keys(&args)
            .expect(request)
            .map(|at| request.split(' ').nth(at).expect("index in range"))
            .collect();
        assert_eq!(keys.join(" "), expected, "{request}");
    }
}
