//! Smoke test of the load generator against the real `ferrite` binary: runs of about a second
//! whose counts must be exact (QoS 1 and 2 lose nothing, QoS 2 duplicates nothing). No timing
//! is asserted.

use bench::{Options, Report};
use clap::Parser;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

/// `target/<profile>/ferrite`, next to this test's `deps` directory; built if missing.
fn ferrite_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("path of the test executable");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile> above deps/");
        let bin = profile_dir.join(format!("ferrite{}", std::env::consts::EXE_SUFFIX));
        if !bin.exists() {
            let mut cargo = Command::new(env!("CARGO"));
            cargo.args(["build", "-p", "ferrite"]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cargo.arg("--release");
            }
            if let Some(target_dir) = profile_dir.parent() {
                cargo.env("CARGO_TARGET_DIR", target_dir);
            }
            let status = cargo.status().expect("run cargo build -p ferrite");
            assert!(status.success(), "cargo build -p ferrite failed");
        }
        bin
    })
}

/// `--set` arguments turning off every listener but plain MQTT (read from `config example`, so
/// that listeners added later are turned off too).
fn listeners_off(bin: &Path) -> Vec<String> {
    let out = Command::new(bin).args(["config", "example"]).output().expect("ferrite config example");
    let mut section = String::new();
    let mut sets = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
        } else if let Some((key, _)) = line.split_once(" = ")
            && key.ends_with("listen")
            && !(section == "mqtt" && key == "listen")
        {
            sets.push(format!("{section}.{key}=off"));
        }
    }
    sets
}

/// A running `ferrite serve` on an OS-chosen port, killed on drop.
struct Ferrite {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Ferrite {
    fn start(name: &str) -> Ferrite {
        let bin = ferrite_binary();
        let dir = std::env::temp_dir().join(format!("ferrite-bench-smoke-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg("--data-dir").arg(&dir).arg("--mqtt-listen").arg("127.0.0.1:0");
        // A deep queue: these runs check the generator's counting, not Ferrite's queue limit.
        for s in listeners_off(bin).iter().map(String::as_str).chain(["store.sync=off", "mqtt.max_queued_messages=100000"]) {
            cmd.arg("--set").arg(s);
        }
        cmd.env("FERRITE_LOG__LEVEL", "warn").stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn ferrite");
        let stdout = child.stdout.take().expect("ferrite stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut port = None;
        loop {
            let line = rx.recv_timeout(Duration::from_secs(30)).expect("ferrite printed `ferrite ready`");
            if let Some(addr) = line.strip_prefix("mqtt listening on ") {
                port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
            }
            if line == "ferrite ready" {
                break;
            }
        }
        Ferrite { child, port: port.expect("ferrite printed `mqtt listening on ADDR`"), dir }
    }

    async fn bench(&self, args: &[&str]) -> Report {
        let port = self.port.to_string();
        // Draining ends as soon as everything arrived; the long bound only matters on a machine
        // so loaded that the counts would otherwise depend on timing.
        let common = ["--port", &port, "--duration", "1", "--drain", "10", "--quiet"];
        let argv = ["ferrite-bench"].iter().chain(args).chain(&common);
        let opts = Options::try_parse_from(argv).expect("valid options");
        bench::run(&opts).await.expect("the run went through")
    }
}

impl Drop for Ferrite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_qos1_loses_nothing() {
    let ferrite = Ferrite::start("fan-in");
    let r = ferrite.bench(&["fan-in", "--qos", "1", "--clients", "4", "--rate", "2000"]).await;
    assert!(r.sent > 0, "{r}");
    assert_eq!((r.lost, r.duplicates, r.disconnects), (0, 0, 0), "{r}");
    assert_eq!(r.received, r.sent, "{r}");
    assert_eq!(r.acked, r.sent, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_qos2_is_exactly_once() {
    let ferrite = Ferrite::start("p2p");
    let r = ferrite.bench(&["p2p", "--qos", "2", "--clients", "4", "--rate", "2000", "--mqtt", "3"]).await;
    assert!(r.sent > 0, "{r}");
    assert_eq!((r.lost, r.duplicates, r.disconnects), (0, 0, 0), "{r}");
    assert_eq!(r.received, r.sent, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_qos0_delivers() {
    let ferrite = Ferrite::start("fan-out");
    let r = ferrite.bench(&["fan-out", "--qos", "0", "--clients", "4"]).await;
    assert!(r.received > 0, "{r}");
    assert_eq!(r.subscribers, 4);
    assert_eq!(r.expected, 4 * r.sent, "{r}");
    assert!(r.latency.count > 0 && r.latency.p50_us <= r.latency.max_us, "{r}");
}
