//! Processes for tests: real redis-server, nutcracker and rampart servers, each in its own
//! temporary directory, on ports chosen at start (or given, to restart one where it was),
//! killed by PID (never by name) when dropped; and one-shot programs run to completion, with
//! input on stdin or within a time limit.

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::resp::{Client, Reply};
use super::{free_port, wait_until};

/// A child process that is killed and reaped when dropped.
pub struct Guarded {
    child: Child,
}

impl Guarded {
    pub fn spawn(command: &mut Command, log: &Path) -> Guarded {
        let log_file = fs::File::create(log).expect("create log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        Guarded { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kill -9, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status, once the process has ended.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for a child process")
    }

    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Polls `ready` (waiting for `what`) for up to 10 s, failing at once, with `exited()` as
    /// the message, if the process ends first.
    pub fn wait_ready(
        &mut self,
        what: &str,
        mut ready: impl FnMut() -> bool,
        exited: impl Fn() -> String,
    ) {
        wait_until(what, Duration::from_secs(10), || {
            assert!(!self.has_exited(), "{}", exited());
            ready()
        });
    }

    /// Waits for the process to end by itself, failing after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exit_status() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process {} still running after {limit:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (kill(2)) to the process, which must not have been reaped.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).unwrap();
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill({pid}, {signal})"
        );
    }

    /// The fields of /proc/PID/stat after the command name (which is in parentheses and may
    /// hold spaces): the state first, utime and stime 12th and 13th.
    fn stat_fields(&self) -> Vec<String> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .unwrap_or_else(|error| panic!("/proc/{}/stat: {error}", self.pid()));
        let after_name = &stat[stat.rfind(')').expect("a command name") + 1..];
        after_name.split_whitespace().map(str::to_string).collect()
    }

    /// The CPU time (user and system, all threads) the process has used so far.
    pub fn cpu_time(&self) -> Duration {
        let ticks: u64 = self.stat_fields()[11..13]
            .iter()
            .map(|field| field.parse::<u64>().expect("utime and stime"))
            .sum();
        // SAFETY: sysconf only reads a system setting.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / per_second)
    }

    /// SIGSTOP, returning once the process is stopped (state T).
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
        wait_until(
            &format!("process {} to stop", self.pid()),
            Duration::from_secs(5),
            || self.stat_fields()[0] == "T",
        );
    }

    /// Whether the process has handlers for all these signals (SigCgt in /proc).
    pub fn catches(&self, signals: &[libc::c_int]) -> bool {
        self.signal_set_has("SigCgt:", signals)
    }

    /// Whether the process ignores all these signals (SigIgn in /proc).
    pub fn ignores(&self, signals: &[libc::c_int]) -> bool {
        self.signal_set_has("SigIgn:", signals)
    }

    fn signal_set_has(&self, field: &str, signals: &[libc::c_int]) -> bool {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let set = status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0);
        signals.iter().all(|&signal| set & (1 << (signal - 1)) != 0)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Answers PING on this loopback port (+PONG, or -NOAUTH from a server with a password).
pub fn pings(port: u16) -> bool {
    Client::connect(port)
        .and_then(|mut client| client.try_call(&[b"PING"]))
        .map(|reply| match reply {
            Reply::Status(status) => status == "PONG",
            Reply::Error(error) => error.starts_with("NOAUTH"),
            _ => false,
        })
        .unwrap_or(false)
}

/// Whether a redis-server is busy (DEBUG SLEEP): a PING gets no answer within 100 ms.
pub fn redis_is_blocked(port: u16) -> bool {
    match Client::connect_with_timeout(port, Duration::from_millis(100)) {
        Ok(mut conn) => {
            conn.send(&[b"PING"]);
            conn.read_reply().is_err()
        }
        Err(_) => false,
    }
}

/// A redis-server on a loopback port, without persistence.
pub struct Redis {
    pub port: u16,
    pub dir: tempfile::TempDir,
    process: Guarded,
}

impl Redis {
    /// A redis-server on a free port.
    pub fn start(extra: &[&str]) -> Redis {
        Redis::start_on(free_port(), extra)
    }

    /// A redis-server on `port` (also to bring a killed one back where it was, empty).
    pub fn start_on(port: u16, extra: &[&str]) -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("redis.log");
        let mut process = Guarded::spawn(
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir.path())
                .args(extra),
            &log,
        );
        process.wait_ready(
            &format!("redis-server on {port}"),
            || pings(port),
            || {
                format!(
                    "redis-server on {port} exited:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                )
            },
        );
        Redis { port, dir, process }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port).expect("connect to redis-server")
    }

    /// kill -9.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGSTOP, returning once it is stopped.
    pub fn freeze(&self) {
        self.process.freeze();
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.process.signal(libc::SIGCONT);
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// The value of `key` in database 0, as text.
    pub fn get(&self, key: &str) -> Option<String> {
        match self.client().call(&[b"GET", key.as_bytes()]) {
            Reply::Bulk(value) => value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
            other => panic!("GET {key} on {} gave {other:?}", self.port),
        }
    }

    /// Every key in database `db`.
    pub fn keys(&self, db: u32) -> Vec<Vec<u8>> {
        let mut client = self.client();
        assert!(client.call(&[b"SELECT", db.to_string().as_bytes()]).is_ok());
        match client.call(&[b"KEYS", b"*"]) {
            Reply::Array(Some(items)) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bulk(Some(key)) => key,
                    other => panic!("KEYS gave {other:?}"),
                })
                .collect(),
            other => panic!("KEYS gave {other:?}"),
        }
    }
}

/// The real nutcracker (Debian's package) running a given configuration.
pub struct Nutcracker {
    pub config: PathBuf,
    pub stats_port: u16,
    pub dir: tempfile::TempDir,
    process: Guarded,
}

impl Nutcracker {
    /// Starts nutcracker and waits until every given listen port answers PING.
    pub fn start(yaml: &str, listen_ports: &[u16]) -> Nutcracker {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("nutcracker.yml");
        fs::write(&config, yaml).expect("write nutcracker.yml");
        let stats_port = free_port();
        let mut process = Guarded::spawn(
            Command::new("nutcracker")
                .arg("-c")
                .arg(&config)
                .args([
                    "-s",
                    &stats_port.to_string(),
                    "-a",
                    "127.0.0.1",
                    "-i",
                    "100",
                ])
                .arg("-o")
                .arg(dir.path().join("nutcracker.log")),
            &dir.path().join("nutcracker.out"),
        );
        for &port in listen_ports {
            process.wait_ready(
                &format!("nutcracker on {port}"),
                || pings(port),
                || {
                    let log =
                        fs::read_to_string(dir.path().join("nutcracker.log")).unwrap_or_default();
                    format!("nutcracker exited; its log:\n{log}\nconfig:\n{yaml}")
                },
            );
        }
        Nutcracker {
            config,
            stats_port,
            dir,
            process,
        }
    }

    /// The stats JSON document.
    pub fn stats(&self) -> String {
        stats_at(self.stats_port)
    }
}

/// rampart itself, serving a configuration, with its stats port and admin endpoint on free
/// loopback ports.
pub struct Rampart {
    pub config: PathBuf,
    pub stats_port: u16,
    /// The admin endpoint's port (unless the flags gave `--admin` themselves).
    pub admin_port: u16,
    pub dir: tempfile::TempDir,
    /// Its log file (unless the flags named another with `-o`).
    pub log: PathBuf,
    yaml: String,
    /// The flags it was started with, beyond `-c`, `-s`, `-a`, `--admin` and `-o`.
    flags: Vec<String>,
    open_files: Option<u64>,
    /// How many times it has been started (1, then one more each `restart`).
    starts: u32,
    process: Guarded,
}

impl Rampart {
    /// Starts rampart at verbosity 6 with `extra` flags and waits until every listen port
    /// answers PING (pools with `redis_auth` answer -NOAUTH, which also proves it is up).
    pub fn start(yaml: &str, listen_ports: &[u16], extra: &[&str]) -> Rampart {
        let mut flags = vec!["-v", "6"];
        flags.extend_from_slice(extra);
        let mut rampart = Rampart::spawn(yaml, &flags);
        rampart.wait_listening(listen_ports);
        rampart
    }

    /// Starts rampart on `yaml` with its stats port, admin endpoint (unless `flags` has
    /// `--admin`) and log file (unless `flags` has `-o`) and exactly these further `flags`,
    /// without waiting for it.
    pub fn spawn(yaml: &str, flags: &[&str]) -> Rampart {
        Rampart::launch(yaml, flags, None)
    }

    /// `start`, the process limited to `open_files` descriptors (RLIMIT_NOFILE, soft and hard,
    /// set between fork and exec).
    pub fn start_with_open_files(
        yaml: &str,
        listen_ports: &[u16],
        extra: &[&str],
        open_files: u64,
    ) -> Rampart {
        let mut flags = vec!["-v", "6"];
        flags.extend_from_slice(extra);
        let mut rampart = Rampart::launch(yaml, &flags, Some(open_files));
        rampart.wait_listening(listen_ports);
        rampart
    }

    fn launch(yaml: &str, flags: &[&str], open_files: Option<u64>) -> Rampart {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("rampart.yml");
        fs::write(&config, yaml).expect("write rampart.yml");
        let (stats_port, admin_port) = (free_port(), free_port());
        let flags: Vec<String> = flags.iter().map(|flag| flag.to_string()).collect();
        let first = Launch {
            dir: dir.path(),
            config: &config,
            stats_port,
            admin_port,
            flags: &flags,
            open_files,
        };
        let (process, log) = first.spawn(1);
        Rampart {
            config,
            stats_port,
            admin_port,
            dir,
            log,
            yaml: yaml.to_string(),
            flags,
            open_files,
            starts: 1,
            process,
        }
    }

    /// Starts rampart again once its process has ended (killed with `process().kill()`, say):
    /// the same configuration file as it is now (and whatever lies beside it), the same stats
    /// port, admin endpoint and flags, logging to a new file (`log` names it); waits until
    /// every one of `listen_ports` answers PING.
    pub fn restart(&mut self, listen_ports: &[u16]) {
        assert!(
            self.process.has_exited(),
            "restart is for a rampart that has ended; pid {} still runs",
            self.pid()
        );
        self.starts += 1;
        let again = Launch {
            dir: self.dir.path(),
            config: &self.config,
            stats_port: self.stats_port,
            admin_port: self.admin_port,
            flags: &self.flags,
            open_files: self.open_files,
        };
        let (process, log) = again.spawn(self.starts);
        (self.process, self.log) = (process, log);
        self.wait_listening(listen_ports);
    }

    /// Waits until every one of `ports` answers a PING, whatever the reply.
    pub fn wait_listening(&mut self, ports: &[u16]) {
        let yaml = &self.yaml;
        for &port in ports {
            self.process.wait_ready(
                &format!("rampart on {port}"),
                || {
                    Client::connect(port)
                        .and_then(|mut client| client.try_call(&[b"PING"]))
                        .is_ok()
                },
                || format!("rampart exited; config:\n{yaml}"),
            );
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn has_exited(&mut self) -> bool {
        self.process.has_exited()
    }

    /// The process, to signal it or see how it ended.
    pub fn process(&mut self) -> &mut Guarded {
        &mut self.process
    }

    /// The stats JSON document.
    pub fn stats(&self) -> String {
        stats_at(self.stats_port)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its resident set size (VmRSS), in kB.
    pub fn vm_rss_kb(&self) -> u64 {
        vm_rss_kb(self.pid())
    }
}

/// What starting a rampart process takes: where, on which file and ports, with which flags.
struct Launch<'a> {
    dir: &'a Path,
    config: &'a Path,
    stats_port: u16,
    admin_port: u16,
    flags: &'a [String],
    open_files: Option<u64>,
}

impl Launch<'_> {
    /// Starts start number `start` (1 first): its process and its log file, `rampart.log`
    /// (unless the flags name another with `-o`), then `rampart.2.log`, `rampart.3.log`...
    fn spawn(&self, start: u32) -> (Guarded, PathBuf) {
        let stem = if start == 1 {
            "rampart".to_string()
        } else {
            format!("rampart.{start}")
        };
        let log = self.dir.join(format!("{stem}.log"));
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        let admin = if flags.contains(&"--admin") {
            Vec::new()
        } else {
            vec![
                "--admin".to_string(),
                format!("127.0.0.1:{}", self.admin_port),
            ]
        };
        let output = if flags.contains(&"-o") {
            Vec::new()
        } else {
            vec!["-o".into(), log.clone().into_os_string()]
        };
        let mut command = Command::new(super::rampart_bin());
        command
            .arg("-c")
            .arg(self.config)
            .args(["-s", &self.stats_port.to_string(), "-a", "127.0.0.1"])
            .args(admin)
            .args(output)
            .args(&flags);
        if let Some(open_files) = self.open_files {
            let limit = libc::rlimit {
                rlim_cur: open_files,
                rlim_max: open_files,
            };
            // SAFETY: setrlimit is async-signal-safe and only reads the struct it is given.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let process = Guarded::spawn(&mut command, &self.dir.join(format!("{stem}.out")));
        (process, log)
    }
}

/// The JSON document a stats port (rampart's or nutcracker's) serves.
pub fn stats_at(port: u16) -> String {
    use std::io::Read;
    let mut text = String::new();
    std::net::TcpStream::connect(("127.0.0.1", port))
        .and_then(|mut stream| stream.read_to_string(&mut text))
        .unwrap_or_else(|error| panic!("read stats on {port}: {error}"));
    text
}

/// The resident memory of process `pid` in kB (VmRSS).
pub fn vm_rss_kb(pid: u32) -> u64 {
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).expect("read the process's /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// A one-pool redis config over the given servers (`host:port:weight [name]` entries).
pub fn pool_yaml(name: &str, port: u16, directives: &str, servers: &[String]) -> String {
    let mut yaml =
        format!("{name}:\n  listen: 127.0.0.1:{port}\n  redis: true\n{directives}  servers:\n");
    for server in servers {
        yaml.push_str(&format!("   - {server}\n"));
    }
    yaml
}

/// Runs `command` to completion with `stdin` as its input (written from another thread, so a
/// large output cannot deadlock it) and its output captured.
pub fn output_with_stdin(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&stdin));
    let output = child.wait_with_output().expect("wait for the output");
    writer
        .join()
        .expect("stdin writer")
        .unwrap_or_else(|error| panic!("write the input of {command:?}: {error}"));
    output
}

/// Runs `command` (its stdin empty), killing it after `limit`: its stdout if it exits 0, else
/// what failed with its stderr and stdout.
pub fn run_within(command: &mut Command, limit: Duration) -> Result<String, String> {
    let (shown, status, stdout, stderr) = run_limited(command, limit);
    let outcome = match status {
        Some(status) if status.success() => return Ok(stdout),
        Some(status) => format!("failed ({status})"),
        None => format!("did not finish within {limit:?}"),
    };
    Err(format!(
        "{shown} {outcome}\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}"
    ))
}

/// Runs `command` (its stdin empty) to its end, whatever its exit status, and returns its
/// output; kills it and fails if it runs longer than `limit`.
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    let (shown, status, stdout, stderr) = run_limited(command, limit);
    let status = status.unwrap_or_else(|| {
        panic!(
            "{shown} did not finish within {limit:?}\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}"
        )
    });
    Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    }
}

/// Runs `command` (its stdin empty, its output in files), killing it after `limit`: the
/// command line, its exit status (`None` when it was killed) and its stdout and stderr.
fn run_limited(
    command: &mut Command,
    limit: Duration,
) -> (String, Option<ExitStatus>, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let shown: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| word.to_string_lossy().into_owned())
        .collect();
    let shown = shown.join(" ");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {shown} (is it installed?): {error}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    (shown, status, stdout, stderr)
}

/// The TCP sockets process `pid` listens with: (port, socket inode), from /proc.
pub fn listening_sockets(pid: u32) -> std::collections::BTreeSet<(u16, String)> {
    let owned: std::collections::BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's descriptors")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let mut found = std::collections::BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(&"0A"), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let port = local
                .rsplit(':')
                .next()
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            if let Some(port) = port
                && owned.contains(*inode)
            {
                found.insert((port, inode.to_string()));
            }
        }
    }
    found
}
