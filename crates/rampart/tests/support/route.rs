//! Where keys are placed, as `rampart route` says: the one way tests run it on many keys
//! (keys on stdin, one per line) and read its `key<TAB>server<TAB>address` lines back.

use std::path::Path;
use std::process::Command;

use super::process::output_with_stdin;
use super::rampart_bin;

/// One key's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub key: Vec<u8>,
    /// The server's name: its name in the config, else `host:port`.
    pub server: String,
    /// `host:port`.
    pub address: String,
}

/// `rampart route -c CONFIG [--pool POOL] [--eject NAME]...` with `keys` on stdin: where each
/// key is placed, in input order. Asserts that route succeeded and printed every key once, in
/// order.
pub fn place<K: AsRef<[u8]>>(
    config: &Path,
    pool: Option<&str>,
    ejected: &[&str],
    keys: &[K],
) -> Vec<Placed> {
    let mut command = Command::new(rampart_bin());
    command.arg("route").arg("-c").arg(config);
    if let Some(pool) = pool {
        command.args(["--pool", pool]);
    }
    for name in ejected {
        command.args(["--eject", name]);
    }
    let mut input = Vec::new();
    for key in keys {
        let key = key.as_ref();
        assert!(!key.contains(&b'\n'), "a routed key cannot hold a newline");
        input.extend_from_slice(key);
        input.push(b'\n');
    }
    let output = output_with_stdin(&mut command, &input);
    assert!(
        output.status.success(),
        "rampart route failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = |field: &[u8]| String::from_utf8(field.to_vec()).expect("route prints UTF-8 names");
    let placed: Vec<Placed> = output
        .stdout
        .split_inclusive(|&byte| byte == b'\n')
        .map(|line| {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let fields: Vec<&[u8]> = line.rsplitn(3, |&byte| byte == b'\t').collect();
            assert_eq!(fields.len(), 3, "key<TAB>server<TAB>address: {line:?}");
            Placed {
                key: fields[2].to_vec(),
                server: text(fields[1]),
                address: text(fields[0]),
            }
        })
        .collect();
    let routed_keys: Vec<&[u8]> = placed.iter().map(|placed| placed.key.as_slice()).collect();
    let given_keys: Vec<&[u8]> = keys.iter().map(AsRef::as_ref).collect();
    assert_eq!(
        routed_keys, given_keys,
        "route must print every key once, in input order"
    );
    placed
}
