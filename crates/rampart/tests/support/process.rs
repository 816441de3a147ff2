//! Real server processes for tests: redis-server and nutcracker, each in its own temporary
//! directory, on ports chosen at start, killed by PID (never by name) when dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
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
        .and_then(|mut client| client.call(&[b"PING"]))
        .map(|reply| match reply {
            Reply::Status(status) => status == "PONG",
            Reply::Error(error) => error.starts_with("NOAUTH"),
            _ => false,
        })
        .unwrap_or(false)
}

/// A redis-server on a free loopback port, without persistence.
pub struct Redis {
    pub port: u16,
    pub dir: tempfile::TempDir,
    process: Guarded,
}

impl Redis {
    pub fn start(extra: &[&str]) -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let process = Guarded::spawn(
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir.path())
                .args(extra),
            &dir.path().join("redis.log"),
        );
        wait_until(
            &format!("redis-server on {port}"),
            Duration::from_secs(10),
            || pings(port),
        );
        Redis { port, dir, process }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port).expect("connect to redis-server")
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Every key in database `db`.
    pub fn keys(&self, db: u32) -> Vec<Vec<u8>> {
        let mut client = self.client();
        assert!(
            client
                .call(&[b"SELECT", db.to_string().as_bytes()])
                .unwrap()
                .is_ok()
        );
        match client.call(&[b"KEYS", b"*"]).unwrap() {
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
            wait_until(
                &format!("nutcracker on {port}"),
                Duration::from_secs(10),
                || {
                    assert!(!process.has_exited(), "nutcracker exited; config:\n{yaml}");
                    pings(port)
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
}

/// rampart itself, serving a configuration, with its stats port on a free loopback port.
pub struct Rampart {
    pub config: PathBuf,
    pub stats_port: u16,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    process: Guarded,
}

impl Rampart {
    /// Starts rampart with `extra` flags and waits until every listen port answers PING
    /// (pools with `redis_auth` answer -NOAUTH, which also proves it is up).
    pub fn start(yaml: &str, listen_ports: &[u16], extra: &[&str]) -> Rampart {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("rampart.yml");
        fs::write(&config, yaml).expect("write rampart.yml");
        let stats_port = free_port();
        let log = dir.path().join("rampart.log");
        let mut process = Guarded::spawn(
            Command::new(super::rampart_bin())
                .arg("-c")
                .arg(&config)
                .args(["-s", &stats_port.to_string(), "-a", "127.0.0.1", "-v", "6"])
                .arg("-o")
                .arg(&log)
                .args(extra),
            &dir.path().join("rampart.out"),
        );
        for &port in listen_ports {
            wait_until(
                &format!("rampart on {port}"),
                Duration::from_secs(10),
                || {
                    assert!(!process.has_exited(), "rampart exited; config:\n{yaml}");
                    Client::connect(port)
                        .and_then(|mut client| client.call(&[b"PING"]))
                        .is_ok()
                },
            );
        }
        Rampart {
            config,
            stats_port,
            dir,
            log,
            process,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn has_exited(&mut self) -> bool {
        self.process.has_exited()
    }

    /// The stats JSON document.
    pub fn stats(&self) -> String {
        stats_at(self.stats_port)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
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

/// A one-pool redis config over the given servers (`host:port:weight [name]` entries).
pub fn pool_yaml(name: &str, port: u16, directives: &str, servers: &[String]) -> String {
    let mut yaml =
        format!("{name}:\n  listen: 127.0.0.1:{port}\n  redis: true\n{directives}  servers:\n");
    for server in servers {
        yaml.push_str(&format!("   - {server}\n"));
    }
    yaml
}
