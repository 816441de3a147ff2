//! `rampart demo` end to end, as a person would use it without a terminal: start it, read the
//! `redis-cli -h HOST -p PORT` line, write and read keys there with redis-py, kill the master
//! of shard 1 with `rampart demo --kill master-of 1`, check that reads and writes carry on
//! and that the demo reports the promoted replica as the new master, then SIGTERM it and check
//! that it leaves nothing behind: no process, namespace, veth, temporary directory or state
//! file. As root (CI) this goes through the virtual IP of two rampart nodes in namespaces.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Writes and reads `demo:test:<n>` keys through the proxy, retrying each for up to the
/// limit; prints how many went through and exits 1 if one never did.
const CLIENT: &str = r#"
import sys, time, redis
host, port, round_, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
client = redis.Redis(host=host, port=port, socket_timeout=12, socket_connect_timeout=1)
deadline = time.time() + limit
failures = 0
for index in range(40):
    key, value = f"demo:test:{index}", f"{round_}-{index}"
    while True:
        try:
            client.set(key, value)
            if client.get(key) == value.encode():
                break
            raise RuntimeError(f"{key} read back wrong")
        except Exception as error:
            failures += 1
            if time.time() > deadline:
                print(f"gave up on {key}: {error}")
                sys.exit(1)
            time.sleep(0.2)
print(f"ok 40 keys, {failures} failed attempts")
"#;

/// The demo as a child process, its stdout lines arriving on a channel; SIGTERMed (then
/// killed) when dropped, so a failing test still tears the demo down.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(stderr: &Path) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("demo")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .expect("start rampart demo");
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line (from now on) for which `pick` gives something, within `limit`.
    fn wait_for<T>(&mut self, what: &str, limit: Duration, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let picked = pick(&line);
                    self.seen.push(line);
                    if let Some(picked) = picked {
                        return picked;
                    }
                }
                Err(_) => panic!(
                    "no line with {what} within {limit:?}; the demo printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the pid of the child this test started and has not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(libc::SIGTERM);
            if self.wait_exit(Duration::from_secs(15)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

fn run_client(host: &str, port: &str, round: &str, limit: u64) -> String {
    let output = Command::new("python3")
        .args(["-c", CLIENT, host, port, round, &limit.to_string()])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "redis-py through {host}:{port} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn ip(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn demo_survives_a_master_kill_and_leaves_nothing_behind() {
    let started = Instant::now();
    let stderr = std::env::temp_dir().join(format!("rampart-demo-test.{}.err", std::process::id()));
    let mut demo = Running::start(&stderr);
    let (host, port) = demo.wait_for(
        "redis-cli -h HOST -p PORT",
        Duration::from_secs(45),
        |line| {
            let rest = line.split("redis-cli -h ").nth(1)?;
            let (host, port) = rest.split_once(" -p ")?;
            Some((host.to_string(), port.trim().to_string()))
        },
    );
    let ready = started.elapsed();
    let state_path = demo
        .seen
        .iter()
        .find_map(|line| {
            let rest = line.trim().strip_prefix("state file ")?;
            Some(rest.split_whitespace().next()?.to_string())
        })
        .expect("the demo names its state file");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).expect("read the state file"))
            .expect("the state file is JSON");
    let processes = state["processes"].as_array().expect("processes").clone();
    let address_of = |label: &str| {
        processes
            .iter()
            .find(|entry| entry["label"] == label)
            .and_then(|entry| entry["address"].as_str())
            .unwrap_or_else(|| panic!("no {label} in {state}"))
            .to_string()
    };
    let (first_master, replica) = (address_of("redis shard1/a"), address_of("redis shard1/b"));
    let pids: Vec<u64> = processes
        .iter()
        .filter_map(|entry| entry["pid"].as_u64())
        .collect();
    let dir = state["dir"].as_str().expect("dir").to_string();
    let prefix = format!("rdemo{}", demo.child.id());
    let root = rustix::process::geteuid().is_root();
    if root {
        assert!(
            host.starts_with("10.213."),
            "as root, clients use the VIP: {host}"
        );
        assert!(ip(&["netns", "list"]).contains(&format!("{prefix}-a")));
    } else {
        assert_eq!(host, "127.0.0.1");
    }

    println!("before: {}", run_client(&host, &port, "before", 10).trim());

    let kill = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["demo", "--kill", "master-of", "1"])
        .output()
        .expect("run rampart demo --kill");
    let said = String::from_utf8_lossy(&kill.stdout).into_owned();
    assert!(
        kill.status.success() && said.contains(&first_master),
        "--kill master-of 1: {said}{}",
        String::from_utf8_lossy(&kill.stderr)
    );
    let killed = Instant::now();
    println!("during: {}", run_client(&host, &port, "during", 20).trim());
    let carried_on = killed.elapsed();
    demo.wait_for("the new master", Duration::from_secs(20), |line| {
        line.contains(&format!("shard1 master={replica} "))
            .then_some(())
    });
    let reported = killed.elapsed();
    println!("after: {}", run_client(&host, &port, "after", 10).trim());

    demo.signal(libc::SIGTERM);
    let status = demo
        .wait_exit(Duration::from_secs(20))
        .expect("the demo stops within 20 s of SIGTERM");
    assert!(status.success(), "the demo exited with {status}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|stat| stat.contains(") Z ")),
            "process {pid} of the demo is still running"
        );
    }
    assert!(
        !ip(&["netns", "list"]).contains(&prefix),
        "a namespace is left"
    );
    assert!(!ip(&["-o", "link"]).contains(&prefix), "the veth is left");
    assert!(!Path::new(&dir).exists(), "{dir} is left");
    assert!(!Path::new(&state_path).exists(), "{state_path} is left");
    let _ = std::fs::remove_file(&stderr);
    println!(
        "demo ready after {ready:?}; writes and reads through {host}:{port} all done {carried_on:?} \
         after the kill; new master reported {reported:?} after it; whole test {:?}",
        started.elapsed()
    );
}
