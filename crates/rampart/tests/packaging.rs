//! Packaging: systemd's readiness protocol (READY=1 once the listener accepts, STOPPING=1 on
//! SIGTERM) over a notify socket the test binds; packaging/install into a DESTDIR (complete,
//! idempotent, existing configuration kept) and its unit checked by `systemd-analyze verify`
//! when that is installed; every long flag of `--help` in the man page; and the production
//! examples passing `rampart -t ... --vrrp ...`.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::process::{Guarded, Redis};
use support::resp::Client;
use support::shards::alpha_yaml;
use support::{free_port, rampart_bin};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn receive(socket: &UnixDatagram) -> String {
    let mut buffer = [0; 4096];
    let len = socket
        .recv(&mut buffer)
        .expect("a notification within 10 s");
    String::from_utf8_lossy(&buffer[..len]).into_owned()
}

#[test]
fn ready_once_listening_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let redis = Redis::start(&[]);
    let port = free_port();
    let config = dir.path().join("rampart.yml");
    fs::write(&config, alpha_yaml(port, "", &[redis.port])).unwrap();
    let mut proxy = Guarded::spawn(
        Command::new(rampart_bin())
            .arg("-c")
            .arg(&config)
            .args(["-s", &free_port().to_string(), "-a", "127.0.0.1"])
            .env("NOTIFY_SOCKET", &socket_path),
        &dir.path().join("rampart.out"),
    );
    assert_eq!(receive(&socket), "READY=1\n");
    // READY=1 came after the listener was bound: a client is served at once.
    let mut client = Client::connect(port).expect("listening when READY=1 arrives");
    assert!(client.try_call(&[b"PING"]).is_ok());
    drop(client);
    proxy.signal(libc::SIGTERM);
    assert_eq!(receive(&socket), "STOPPING=1\n");
    assert_eq!(proxy.wait_exit(Duration::from_secs(15)).code(), Some(0));
}

fn install(destdir: &Path) {
    let status = Command::new("sh")
        .arg(repo().join("packaging/install"))
        .args(["--prefix", "/usr", "--binary", rampart_bin()])
        .env("DESTDIR", destdir)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn install_into_a_destdir_is_complete_idempotent_and_keeps_the_configuration() {
    let destdir = tempfile::tempdir().unwrap();
    let root = destdir.path();
    install(root);
    assert_eq!(mode(&root.join("usr/bin/rampart")), 0o755);
    let unit = fs::read_to_string(root.join("usr/lib/systemd/system/rampart.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/rampart -c ${RAMPART_CONF}"),
        "{unit}"
    );
    assert!(!unit.contains("@BINDIR@"));
    for page in ["rampart.8", "rampart-route.8", "rampart-check.8"] {
        assert_eq!(mode(&root.join("usr/share/man/man8").join(page)), 0o644);
    }
    assert!(root.join("etc/logrotate.d/rampart").exists());
    assert!(
        root.join("usr/share/doc/rampart/examples/production/sentinel.conf")
            .exists()
    );
    assert!(root.join("usr/share/doc/rampart/migrating.md").exists());
    let conf = root.join("etc/rampart/nutcracker.yml");
    assert_eq!(mode(&conf), 0o640, "it holds redis_auth");
    assert_eq!(mode(&root.join("etc/rampart/keepalived.conf")), 0o640);

    // A second run: same files, the operator's configuration untouched.
    fs::write(&conf, "# edited by the operator\n").unwrap();
    install(root);
    assert_eq!(
        fs::read_to_string(&conf).unwrap(),
        "# edited by the operator\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("usr/lib/systemd/system/rampart.service")).unwrap(),
        unit
    );

    // systemd-analyze verify needs the binary at the unit's path: check a copy that points
    // into the DESTDIR. Any complaint (an unknown key, a value it cannot parse) fails.
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let binary = root.join("usr/bin/rampart");
        let checked = root.join("rampart.service");
        fs::write(
            &checked,
            unit.replace("/usr/bin/rampart", &binary.display().to_string()),
        )
        .unwrap();
        let verified = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&checked)
            .output()
            .unwrap();
        let complaints = String::from_utf8_lossy(&verified.stderr);
        assert!(
            verified.status.success() && complaints.trim().is_empty(),
            "systemd-analyze verify: {complaints}"
        );
    }
}

/// `--name` words of the flag lines of a help text.
fn long_flags(help: &str) -> Vec<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .flat_map(|line| {
            line.split([' ', ',', '='])
                .filter(|word| word.starts_with("--"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_long_flag_of_help_is_in_the_man_pages() {
    for (args, page) in [
        (&["--help"][..], "rampart.8"),
        (&["route", "--help"], "rampart-route.8"),
        (&["check", "--help"], "rampart-check.8"),
    ] {
        let help = Command::new(rampart_bin()).args(args).output().unwrap();
        assert!(help.status.success());
        let help = String::from_utf8(help.stdout).unwrap();
        let man = fs::read_to_string(repo().join("packaging").join(page)).unwrap();
        let flags = long_flags(&help);
        assert!(flags.len() >= 3, "{help}");
        for flag in flags {
            let roff = flag.replace('-', "\\-");
            assert!(
                man.contains(&format!("\\fB{roff}\\fR")),
                "{flag} of `rampart {}` is missing from packaging/{page}",
                args.join(" ")
            );
        }
    }
    let help = Command::new(rampart_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for section in [
        "EXAMPLES:",
        "SIGNALS:",
        "FILES:",
        "EXIT STATUS:",
        "--log-format",
    ] {
        assert!(help.contains(section), "{section} in --help");
    }
}

#[test]
fn production_examples_pass_the_configuration_test() {
    let examples = repo().join("examples/production");
    for node in ["keepalived-proxy-a.conf", "keepalived-proxy-b.conf"] {
        let checked = Command::new(rampart_bin())
            .arg("-t")
            .arg("-c")
            .arg(examples.join("nutcracker.yml"))
            .arg("--vrrp")
            .arg(examples.join(node))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&checked.stderr);
        assert!(checked.status.success(), "{node}: {said}");
        assert!(
            !said.contains("warning"),
            "{node} should load without warnings: {said}"
        );
    }
}
