//! The command line as operators use it: nutcracker's flags, `-t` verdicts with precise
//! reasons, and `rampart route`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::process::output_with_stdin;
use support::rampart_bin;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

fn rampart(args: &[&str]) -> Output {
    Command::new(rampart_bin())
        .args(args)
        .output()
        .expect("run rampart")
}

/// `yaml` written to the file `name` in `dir`.
fn config_file(dir: &tempfile::TempDir, name: &str, yaml: &str) -> PathBuf {
    let file = dir.path().join(name);
    std::fs::write(&file, yaml).unwrap();
    file
}

/// rampart started on `config` with a free stats port and admin port on loopback and `extra`
/// flags, until it exits (at once when it refuses to start, or as a daemon's parent).
fn start_up(config: &Path, extra: &[&str]) -> Output {
    let stats_port = support::free_port().to_string();
    let admin = format!("127.0.0.1:{}", support::free_port());
    let config = config.to_str().unwrap();
    let mut args = vec!["-c", config, "-s", &stats_port, "-a", "127.0.0.1"];
    args.extend(["--admin", &admin]);
    args.extend_from_slice(extra);
    rampart(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// rampart exited 1, saying `reason` on stderr.
fn assert_refused(output: &Output, reason: &str) {
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains(reason),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn test_conf_accepts_the_example() {
    let config = example("nutcracker.yml");
    let output = rampart(&["-t", "-c", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("syntax is ok"));
}

#[test]
fn test_conf_points_at_the_outdented_seed_line() {
    let config = example("seed-as-copied.yml");
    let output = rampart(&["--test-conf", "--conf-file", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("syntax is invalid"), "{stderr}");
    assert!(
        stderr.contains("seed-as-copied.yml:5"),
        "names file and line: {stderr}"
    );
    assert!(stderr.contains("\"hash\""), "names the directive: {stderr}");
}

#[test]
fn test_conf_reports_a_missing_file() {
    let output = rampart(&["-t", "-c", "/nonexistent/rampart.yml"]);
    assert_refused(&output, "/nonexistent/rampart.yml");
}

#[test]
fn test_conf_reports_an_unresolvable_listen_host_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        &dir,
        "bad-host.yml",
        "p:\n  redis: true\n  listen: no-such-host.invalid:22121\n  servers:\n   - 127.0.0.1:6379:1\n",
    );
    let output = rampart(&["-t", "-c", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("bad-host.yml:3") && stderr.contains("listen"),
        "{stderr}"
    );
}

#[test]
fn version_and_describe_stats_exit_zero() {
    let version = rampart(&["-V"]);
    assert!(version.status.success());
    assert!(text(&version.stderr).contains("rampart-"));
    let describe = rampart(&["--describe-stats"]);
    assert!(describe.status.success());
    let stderr = text(&describe.stderr);
    assert!(stderr.contains("pool stats:") && stderr.contains("server stats:"));
    assert!(stderr.contains(
        "  server_ejected_at   \"timestamp when server was ejected in usec since epoch\""
    ));
}

#[test]
fn bad_flags_exit_one_with_a_reason() {
    for args in [
        &["-s", "0"][..],
        &["-m", "100"],
        &["-v", "12"],
        &["-x"],
        &["-s", "port"],
    ] {
        let output = rampart(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?} says why");
    }
}

#[test]
fn route_places_the_seed_keys_on_their_servers() {
    let config = example("nutcracker.yml");
    let output = rampart(&["route", "-c", config.to_str().unwrap(), "{a}1", "{b}1"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "{a}1\t127.0.0.1:6379\t127.0.0.1:6379\n{b}1\t127.0.0.1:6380\t127.0.0.1:6380\n"
    );
}

#[test]
fn route_reads_stdin_and_keeps_every_key_in_order() {
    let config = example("nutcracker.yml");
    let mut input = Vec::new();
    let mut expected_keys: Vec<Vec<u8>> = Vec::new();
    for i in 0..500 {
        let key = format!("{{k{}}}:{i}", i % 13).into_bytes();
        input.extend_from_slice(&key);
        input.push(b'\n');
        expected_keys.push(key);
    }
    input.extend_from_slice(b"\n\xff\xfe binary\nlast-without-newline");
    expected_keys.extend([
        b"".to_vec(),
        b"\xff\xfe binary".to_vec(),
        b"last-without-newline".to_vec(),
    ]);
    let output = output_with_stdin(
        Command::new(rampart_bin())
            .arg("route")
            .arg("-c")
            .arg(&config),
        &input,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let lines: Vec<&[u8]> = output
        .stdout
        .strip_suffix(b"\n")
        .unwrap()
        .split(|&b| b == b'\n')
        .collect();
    assert_eq!(lines.len(), expected_keys.len());
    for (line, key) in lines.iter().zip(&expected_keys) {
        let (printed_key, _) = line.split_at(line.iter().position(|&b| b == b'\t').unwrap());
        assert_eq!(printed_key, key.as_slice());
    }
}

#[test]
fn route_needs_pool_when_there_are_several() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        &dir,
        "two.yml",
        "alpha:\n  listen: 127.0.0.1:24001\n  servers:\n   - 127.0.0.1:6379:1\nbeta:\n  listen: 127.0.0.1:24002\n  servers:\n   - 127.0.0.1:6380:1 b\n",
    );
    let path = file.to_str().unwrap();
    let ambiguous = rampart(&["route", "-c", path, "k"]);
    assert_refused(&ambiguous, "--pool");
    let unknown = rampart(&["route", "-c", path, "--pool", "gamma", "k"]);
    assert!(
        text(&unknown.stderr).contains("beta, alpha"),
        "{}",
        text(&unknown.stderr)
    );
    let chosen = rampart(&["route", "-c", path, "--pool", "beta", "k"]);
    assert_eq!(text(&chosen.stdout), "k\tb\t127.0.0.1:6380\n");
}

#[test]
fn route_reports_bad_ejections() {
    let config = example("nutcracker.yml");
    let path = config.to_str().unwrap();
    let unknown = rampart(&["route", "-c", path, "--eject", "nope", "k"]);
    assert_refused(&unknown, "127.0.0.1:6379, 127.0.0.1:6380");
    let ejected = rampart(&["route", "-c", path, "--eject", "127.0.0.1:6379", "{a}1"]);
    assert_eq!(
        text(&ejected.stdout),
        "{a}1\t127.0.0.1:6380\t127.0.0.1:6380\n"
    );
}

#[test]
fn a_listen_port_already_taken_stops_start_up() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        &dir,
        "taken.yml",
        &format!(
            "p:\n  listen: 127.0.0.1:{port}\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n"
        ),
    );
    let output = start_up(&file, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("cannot listen") && stderr.contains(&port.to_string()),
        "{stderr}"
    );
}

#[test]
fn a_memcache_pool_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let file = config_file(
        &dir,
        "memcache.yml",
        &format!("m:\n  listen: 127.0.0.1:{port}\n  servers:\n   - 127.0.0.1:11211:1\n"),
    );
    assert_refused(&start_up(&file, &[]), "memcache");
}

#[test]
fn daemonize_writes_the_pid_file_and_sigterm_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let config = config_file(
        &dir,
        "daemon.yml",
        &format!(
            "d:\n  listen: 127.0.0.1:{port}\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n"
        ),
    );
    let pid_file = dir.path().join("rampart.pid");
    let log = dir.path().join("rampart.log");
    let parent = start_up(
        &config,
        &[
            "-d",
            "-p",
            pid_file.to_str().unwrap(),
            "-o",
            log.to_str().unwrap(),
        ],
    );
    assert!(parent.status.success(), "{}", text(&parent.stderr));
    let mut pid = String::new();
    support::wait_until(
        "the daemon's pid file",
        std::time::Duration::from_secs(10),
        || {
            pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
            !pid.is_empty() && support::process::pings(port)
        },
    );
    let pid: i32 = pid.parse().expect("the pid file holds a decimal pid");
    // SAFETY: kill(2) on the pid of the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    support::wait_until(
        "the pid file to be removed",
        std::time::Duration::from_secs(10),
        || !pid_file.exists(),
    );
}

#[test]
fn test_conf_checks_the_keepalived_conf_too_with_its_warnings() {
    let config = example("nutcracker.yml");
    let vrrp = example("keepalived.conf");
    let output = rampart(&[
        "-t",
        "-c",
        config.to_str().unwrap(),
        "--vrrp",
        vrrp.to_str().unwrap(),
    ]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("VRRP configuration file"), "{stderr}");
    assert!(
        stderr.contains("keepalived.conf:6: warning")
            && stderr.contains("keepalived.conf:25: warning"),
        "the vrrp_script and track_script lines are named: {stderr}"
    );
    assert!(
        !stderr.contains("secret12"),
        "no password in the output: {stderr}"
    );
}

#[test]
fn a_bad_keepalived_conf_is_refused_with_file_and_line_by_t_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let vrrp = config_file(
        &dir,
        "keepalived.conf",
        "vrrp_sync_group G {\n    group {\n        VI_1\n    }\n}\nvrrp_instance VI_1 {\n    interface eth1\n    virtual_router_id 12\n    virtual_ipaddress {\n        10.0.0.3\n    }\n}\n",
    );
    let config = example("nutcracker.yml");
    let vrrp = vrrp.to_str().unwrap();
    let output = rampart(&["-t", "-c", config.to_str().unwrap(), "--vrrp", vrrp]);
    assert_refused(&output, "keepalived.conf:1:");
    assert_refused(&output, "vrrp_sync_group");
    let output = start_up(&config, &["--vrrp", vrrp]);
    assert_refused(&output, "keepalived.conf:1:");
}
