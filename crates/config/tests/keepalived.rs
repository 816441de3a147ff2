//! The keepalived.conf reader: the corpus in `tests/keepalived_corpus/` (verdicts checked with
//! keepalived 2.2.7's `keepalived -t`, see its README), and the model built from the seed's
//! configuration and from every supported keyword.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_config::keepalived::{
    self, KeepalivedError, KeepalivedErrorKind, StartState, VirtualAddress, VrrpConfig,
    VrrpInstance, VrrpVersion,
};

fn corpus(verdict: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keepalived_corpus")
        .join(verdict);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    files.retain(|path| path.extension().is_some_and(|ext| ext == "conf"));
    files.sort();
    assert!(!files.is_empty(), "no files in {}", dir.display());
    files
}

/// The values of the `! NAME: value` header lines of a corpus file.
fn header(path: &Path, name: &str) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    let prefix = format!("! {name}: ");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn corpus_accepts_with_the_expected_warnings() {
    let mut failures = Vec::new();
    for path in corpus("accept") {
        let config = match keepalived::load(&path) {
            Ok(config) => config,
            Err(error) => {
                failures.push(format!("rejected: {error}"));
                continue;
            }
        };
        let expected = header(&path, "warn");
        let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
        let prefix = format!("{}:", path.display());
        let all_found = expected.iter().all(|want| {
            warnings
                .iter()
                .any(|warning| warning.contains(want.as_str()))
        });
        let all_named = warnings.iter().all(|warning| warning.starts_with(&prefix));
        if warnings.len() != expected.len() || !all_found || !all_named {
            failures.push(format!(
                "{}: expected warnings {expected:?}, got {warnings:#?}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_rejects_naming_file_line_and_reason() {
    let mut failures = Vec::new();
    for path in corpus("reject") {
        let error: KeepalivedError = match keepalived::load(&path) {
            Ok(_) => {
                failures.push(format!("{}: accepted", path.display()));
                continue;
            }
            Err(error) => error,
        };
        let text = error.to_string();
        let [expect] = header(&path, "expect").try_into().unwrap_or_else(|lines| {
            panic!(
                "{}: one \"! expect: LINE: TEXT\" line, found {lines:?}",
                path.display()
            )
        });
        let (line, want) = expect.split_once(": ").unwrap();
        let prefix = format!("{}:{line}:", path.display());
        if !text.starts_with(&prefix) || !text.contains(want) || error.line < 1 {
            failures.push(format!(
                "{}: expected line {line} and {want:?}, got: {text}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn parse(text: &str) -> Result<VrrpConfig, KeepalivedError> {
    keepalived::parse(text, Path::new("keepalived.conf"))
}

fn only(config: &VrrpConfig) -> &VrrpInstance {
    match config.instances.as_slice() {
        [instance] => instance,
        other => panic!("expected one instance, found {}", other.len()),
    }
}

const MINIMAL: &str = "vrrp_instance VI_1 {
    interface eth1
    virtual_router_id 12
    virtual_ipaddress {
        10.213.8.3
    }
}
";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn the_seed_configuration() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keepalived_corpus/accept/a01_seed.conf");
    let config = keepalived::load(&path).unwrap();
    assert_eq!(config.router_id.as_deref(), Some("PROXY_A"));
    let instance = only(&config);
    assert_eq!(instance.name, "VI_1");
    assert_eq!(instance.file, path);
    assert_eq!(instance.line, 11);
    assert_eq!(instance.state, StartState::Backup);
    assert_eq!(instance.interface, "eth1");
    assert_eq!(instance.vrid, 12);
    assert_eq!(instance.priority, 101);
    assert_eq!(instance.advert_int_centis, 100);
    assert_eq!(instance.advert_interval(), Duration::from_secs(1));
    assert!(!instance.preempt);
    assert!(!instance.nopreempt_cleared);
    assert_eq!(instance.preempt_delay, Duration::ZERO);
    assert_eq!(
        instance.virtual_addresses,
        [VirtualAddress {
            addr: ip("10.213.8.3"),
            prefix_len: 32
        }]
    );
    assert_eq!(
        instance.auth.map(|auth| auth.wire_bytes()),
        Some(*b"secret12")
    );
    assert_eq!(instance.unicast_src_ip, None);
    assert!(instance.unicast_peers.is_empty());
    assert_eq!(instance.garp_master_delay, Duration::from_secs(5));
    assert_eq!(instance.garp_master_repeat, 5);
    assert_eq!(instance.version, VrrpVersion::V2);
    let warnings: Vec<(usize, &str)> = config
        .warnings
        .iter()
        .map(|warning| (warning.line, warning.keyword.as_str()))
        .collect();
    assert_eq!(warnings, [(6, "vrrp_script"), (25, "track_script")]);
}

#[test]
fn keepalived_defaults() {
    let config = parse(MINIMAL).unwrap();
    let instance = only(&config);
    assert_eq!(instance.state, StartState::Backup);
    assert_eq!(instance.priority, 100);
    assert_eq!(instance.advert_int_centis, 100);
    assert!(instance.preempt);
    assert_eq!(instance.garp_master_delay, Duration::from_secs(5));
    assert_eq!(instance.garp_master_repeat, 5);
    assert_eq!(instance.version, VrrpVersion::V2);
    assert_eq!(instance.auth, None);
    assert!(config.warnings.is_empty());
    assert_eq!(config.router_id, None);
}

#[test]
fn state_and_priority_default_from_each_other() {
    let master =
        parse(&MINIMAL.replace("    interface", "    state MASTER\n    interface")).unwrap();
    assert_eq!(
        (only(&master).state, only(&master).priority),
        (StartState::Master, 255)
    );
    let owner =
        parse(&MINIMAL.replace("    interface", "    priority 255\n    interface")).unwrap();
    assert_eq!(
        (only(&owner).state, only(&owner).priority),
        (StartState::Master, 255)
    );
    let backup =
        parse(&MINIMAL.replace("    interface", "    priority 254\n    interface")).unwrap();
    assert_eq!(
        (only(&backup).state, only(&backup).priority),
        (StartState::Backup, 254)
    );
}

#[test]
fn every_supported_keyword() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keepalived_corpus/accept/a03_every_supported_keyword.conf");
    let config = keepalived::load(&path).unwrap();
    assert_eq!(config.router_id.as_deref(), Some("PROXY_A"));
    let instance = only(&config);
    assert_eq!(instance.advert_int_centis, 200);
    assert_eq!(instance.preempt_delay, Duration::from_millis(30_500));
    assert_eq!(
        instance.virtual_addresses,
        [
            VirtualAddress {
                addr: ip("10.213.8.3"),
                prefix_len: 32
            },
            VirtualAddress {
                addr: ip("10.213.8.4"),
                prefix_len: 24
            }
        ]
    );
    assert_eq!(instance.unicast_src_ip, Some(ip("10.213.7.1")));
    assert_eq!(instance.unicast_peers, [ip("10.213.7.2"), ip("10.213.7.3")]);
    // The instance's own values win over global_defs.
    assert_eq!(instance.garp_master_delay, Duration::from_secs(10));
    assert_eq!(instance.garp_master_repeat, 3);
    assert!(config.warnings.is_empty());

    let globals = parse(&format!(
        "global_defs {{\n vrrp_garp_master_delay 0\n vrrp_garp_master_repeat 2\n}}\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!(only(&globals).garp_master_delay, Duration::ZERO);
    assert_eq!(only(&globals).garp_master_repeat, 2);
}

#[test]
fn version_3_and_ipv6() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keepalived_corpus/accept/a04_version3_subsecond.conf");
    let config = keepalived::load(&path).unwrap();
    let centis: Vec<(VrrpVersion, u16)> = config
        .instances
        .iter()
        .map(|instance| (instance.version, instance.advert_int_centis))
        .collect();
    assert_eq!(centis, [(VrrpVersion::V3, 25), (VrrpVersion::V3, 4095)]);
    assert_eq!(
        config
            .instances
            .first()
            .map(|instance| instance.advert_interval()),
        Some(Duration::from_millis(250))
    );

    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keepalived_corpus/accept/a05_ipv6_version3.conf");
    let config = keepalived::load(&path).unwrap();
    let prefixes: Vec<u8> = only(&config)
        .virtual_addresses
        .iter()
        .map(|vip| vip.prefix_len)
        .collect();
    assert_eq!(prefixes, [128, 64]);
}

#[test]
fn master_with_nopreempt_preempts_with_a_warning() {
    let text = MINIMAL.replace(
        "    interface",
        "    state MASTER\n    priority 150\n    nopreempt\n    interface",
    );
    let config = parse(&text).unwrap();
    let instance = only(&config);
    assert!(instance.preempt);
    assert!(instance.nopreempt_cleared);
    assert_eq!(instance.state, StartState::Master);
    let [warning] = config.warnings.as_slice() else {
        panic!("{:?}", config.warnings);
    };
    assert_eq!(warning.keyword, "nopreempt");
    assert_eq!(
        warning.to_string(),
        "keepalived.conf:1: warning: \"nopreempt\" of vrrp_instance \"VI_1\" is cleared: it \
         does not work with initial state MASTER; keepalived clears it too and preempts"
    );
}

#[test]
fn the_password_is_never_printed() {
    let text = MINIMAL.replace(
        "    interface",
        "    authentication {\n auth_type PASS\n auth_pass hunter2x\n }\n    interface",
    );
    let config = parse(&text).unwrap();
    assert_eq!(
        only(&config).auth.map(|auth| auth.wire_bytes()),
        Some(*b"hunter2x")
    );
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains("hunter2x"), "{debug}");
    assert!(debug.contains("AuthPassword(<redacted>)"));
}

#[test]
fn errors_name_file_line_column_and_keyword() {
    let text = MINIMAL.replace("virtual_router_id 12", "virtual_router_id  twelve");
    let error = parse(&text).unwrap_err();
    assert_eq!((error.line, error.column), (3, 24));
    assert_eq!(error.keyword.as_deref(), Some("virtual_router_id"));
    assert_eq!(
        error.to_string(),
        "keepalived.conf:3:24: keyword \"virtual_router_id\" has the value \"twelve\", which is \
         not a number; expected an integer from 1 to 255"
    );
    assert!(matches!(
        *error.kind,
        KeepalivedErrorKind::NotANumber { .. }
    ));

    let missing = Path::new("/nonexistent/keepalived.conf");
    let error = keepalived::load(missing).unwrap_err();
    assert_eq!(error.line, 0);
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/keepalived.conf: cannot read the keepalived configuration"),
        "{error}"
    );
}

#[test]
fn invalid_utf8_is_refused() {
    let dir = scratch("utf8");
    let path = dir.join("keepalived.conf");
    fs::write(&path, b"global_defs {\n router_id \xff\n}\n").unwrap();
    let error = keepalived::load(&path).unwrap_err();
    assert!(matches!(
        *error.kind,
        KeepalivedErrorKind::InvalidUtf8 { byte: 0xFF }
    ));
}

/// An empty directory of its own under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("rampart-keepalived-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn include_reads_files_relative_to_the_including_file() {
    let dir = scratch("include");
    fs::create_dir_all(dir.join("conf.d")).unwrap();
    fs::write(
        dir.join("keepalived.conf"),
        "global_defs {\n    router_id A\n}\ninclude conf.d/instances.conf\n",
    )
    .unwrap();
    fs::write(dir.join("conf.d/instances.conf"), "include vi1.inc\n").unwrap();
    fs::write(dir.join("conf.d/vi1.inc"), MINIMAL).unwrap();
    let config = keepalived::load(&dir.join("keepalived.conf")).unwrap();
    let instance = only(&config);
    assert_eq!(instance.file, dir.join("conf.d").join("vi1.inc"));
    assert_eq!(instance.line, 1);

    // An error in an included file names that file.
    fs::write(
        dir.join("conf.d/vi1.inc"),
        MINIMAL.replace("eth1", "eth1 eth2"),
    )
    .unwrap();
    let error = keepalived::load(&dir.join("keepalived.conf")).unwrap_err();
    assert_eq!(error.file, dir.join("conf.d").join("vi1.inc"));
    assert_eq!((error.line, error.column), (2, 20));

    // A file that includes itself.
    fs::write(dir.join("conf.d/vi1.inc"), "include vi1.inc\n").unwrap();
    let error = keepalived::load(&dir.join("keepalived.conf")).unwrap_err();
    assert!(
        matches!(*error.kind, KeepalivedErrorKind::IncludeTooDeep { .. }),
        "{error}"
    );

    // A missing file names the include line and the file.
    fs::write(dir.join("conf.d/instances.conf"), "\ninclude nothere.inc\n").unwrap();
    let error = keepalived::load(&dir.join("keepalived.conf")).unwrap_err();
    assert_eq!(error.file, dir.join("conf.d").join("instances.conf"));
    assert_eq!(error.line, 2);
    assert!(error.to_string().contains("nothere.inc"), "{error}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn parse_refuses_include() {
    let error = parse(&format!("include other.conf\n{MINIMAL}")).unwrap_err();
    assert_eq!(*error.kind, KeepalivedErrorKind::IncludeWithoutFiles);
    assert_eq!(error.line, 1);
}
