//! Interoperability with the Eclipse Mosquitto command-line clients (`mosquitto_pub` and
//! `mosquitto_sub` from the Debian package mosquitto-clients) over MQTT 3.1.1 and 5.0.
//!
//! The clients are required: every test fails (it does not skip) when they are not installed.
//! Every subscriber runs with `-W` and every process is killed at a deadline, so nothing hangs.

mod common;

use common::{Server, have};
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for a subscriber to receive what it expects.
const DEADLINE: Duration = Duration::from_secs(10);
/// `-W` given to every `mosquitto_sub`: it exits by itself after this many seconds.
const SUB_TIMEOUT_SECS: &str = "12";

const V311: &str = "mqttv311";
const V5: &str = "mqttv5";

fn require_clients() {
    for c in ["mosquitto_pub", "mosquitto_sub"] {
        assert!(
            have(c),
            "`{c}` is not installed: these tests need the Mosquitto clients (Debian/Ubuntu: apt-get install mosquitto-clients)"
        );
    }
}

/// Runs `mosquitto_pub` to completion (killed after [`DEADLINE`]) and checks it succeeded.
fn publish(server: &Server, version: &str, args: &[&str]) {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-V", version]).args(args);
    let out = run(cmd);
    assert!(
        out.status.success(),
        "mosquitto_pub {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command with captured output, killing it (and failing the test) after [`DEADLINE`].
fn run(mut cmd: Command) -> Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut p = Proc::new(child, format!("{cmd:?}"));
    let status = p.wait_until(Instant::now() + DEADLINE).unwrap_or_else(|| panic!("{} did not finish in {DEADLINE:?}", p.what));
    p.output(status)
}

/// A child process whose stdout and stderr are read on threads (so it never blocks on a full
/// pipe); killed on drop.
struct Proc {
    child: Child,
    what: String,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Proc {
    fn new(mut child: Child, what: String) -> Proc {
        let reader = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = r.read_to_end(&mut v);
                v
            })
        };
        let stdout = child.stdout.take().map(|s| reader(Box::new(s)));
        let stderr = child.stderr.take().map(|s| reader(Box::new(s)));
        Proc { child, what, stdout, stderr }
    }

    /// The exit status if the process ends before `deadline`.
    fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn output(&mut self, status: ExitStatus) -> Output {
        let stdout = self.stdout.take().map(|h| h.join().expect("stdout reader")).unwrap_or_default();
        let stderr = self.stderr.take().map(|h| h.join().expect("stderr reader")).unwrap_or_default();
        Output { status, stdout, stderr }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mosquitto_sub` (with `-W`) and the given arguments.
fn subscriber(server: &Server, version: &str, args: &[&str]) -> Proc {
    let mut cmd = Command::new("mosquitto_sub");
    cmd.args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-V", version, "-W", SUB_TIMEOUT_SECS]).args(args);
    let what = format!("{cmd:?}");
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn mosquitto_sub");
    Proc::new(child, what)
}

/// Publishes with `pub_args` until the subscriber exits (it was started with `-C`, so it exits
/// once it has its messages; publishing again covers the time before its SUBSCRIBE is done).
/// Returns the subscriber's stdout lines; fails if it exits unsuccessfully or never finishes.
fn publish_until_done(server: &Server, sub: &mut Proc, version: &str, pub_args: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(s) = sub.wait_until(Instant::now()) {
            break s;
        }
        assert!(Instant::now() < deadline, "{} received nothing within {DEADLINE:?}", sub.what);
        publish(server, version, pub_args);
        if let Some(s) = sub.wait_until(Instant::now() + Duration::from_millis(200)) {
            break s;
        }
    };
    let out = sub.output(status);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        status.success(),
        "{} exited with {status}: stdout {stdout:?}, stderr {:?}",
        sub.what,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

/// Waits for a subscriber that should finish on its own (e.g. after retained messages).
fn finished_output(sub: &mut Proc) -> Vec<String> {
    let status = sub.wait_until(Instant::now() + DEADLINE).unwrap_or_else(|| panic!("{} did not finish", sub.what));
    let out = sub.output(status);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        status.success(),
        "{} exited with {status}: stdout {stdout:?}, stderr {:?}",
        sub.what,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

/// Topic, QoS, retain flag and payload of each message.
const FORMAT: &str = "%t|%q|%r|%p";

/// One message published at `pub_qos` to a subscriber at `sub_qos`: arrives intact at
/// min(pub_qos, sub_qos), without the retain flag.
fn pubsub(version: &str, pub_qos: u8, sub_qos: u8) {
    require_clients();
    let server = Server::start();
    let topic = format!("mosq/{version}/q{pub_qos}");
    let payload = "héllo wörld, 100% \u{1F680} @N";
    let mut sub = subscriber(&server, version, &["-t", &topic, "-q", &sub_qos.to_string(), "-C", "1", "-F", FORMAT]);
    let lines = publish_until_done(&server, &mut sub, version, &["-t", &topic, "-q", &pub_qos.to_string(), "-m", payload]);
    let want = format!("{topic}|{}|0|{payload}", pub_qos.min(sub_qos));
    assert_eq!(lines, vec![want]);
}

#[test]
fn v311_qos0() {
    pubsub(V311, 0, 0);
}

#[test]
fn v311_qos1() {
    pubsub(V311, 1, 1);
}

#[test]
fn v311_qos2() {
    pubsub(V311, 2, 2);
}

#[test]
fn v5_qos0() {
    pubsub(V5, 0, 0);
}

#[test]
fn v5_qos1() {
    pubsub(V5, 1, 1);
}

#[test]
fn v5_qos2() {
    pubsub(V5, 2, 2);
}

#[test]
fn v311_delivery_qos_is_min_of_publish_and_subscription() {
    pubsub(V311, 2, 1);
}

#[test]
fn v5_delivery_qos_is_min_of_publish_and_subscription() {
    pubsub(V5, 1, 0);
}

/// A message published with `-r` is delivered, with the retain flag, to a subscriber that
/// starts afterwards.
fn retained(version: &str) {
    require_clients();
    let server = Server::start();
    publish(&server, version, &["-t", "ret/t", "-q", "1", "-r", "-m", "kept for later"]);
    let mut sub = subscriber(&server, version, &["-t", "ret/#", "-q", "1", "-C", "1", "-F", FORMAT]);
    assert_eq!(finished_output(&mut sub), vec!["ret/t|1|1|kept for later".to_string()]);
}

#[test]
fn v311_retained_message_read_by_later_subscriber() {
    retained(V311);
}

#[test]
fn v5_retained_message_read_by_later_subscriber() {
    retained(V5);
}

/// `-r -n` clears a retained message and a newer `-r` replaces one: a later subscriber gets only
/// what is still retained (it stops at the first live message, which it does not print).
#[test]
fn retained_messages_replaced_and_cleared() {
    require_clients();
    let server = Server::start();
    publish(&server, V311, &["-t", "ret/a", "-q", "1", "-r", "-m", "a"]);
    publish(&server, V311, &["-t", "ret/a", "-q", "1", "-r", "-n"]);
    publish(&server, V311, &["-t", "ret/b", "-q", "1", "-r", "-m", "old b"]);
    publish(&server, V311, &["-t", "ret/b", "-q", "1", "-r", "-m", "new b"]);
    let mut sub = subscriber(&server, V311, &["-t", "ret/#", "-q", "1", "--retained-only", "-F", FORMAT]);
    let lines = publish_until_done(&server, &mut sub, V311, &["-t", "ret/live", "-q", "1", "-m", "live"]);
    assert_eq!(lines, vec!["ret/b|1|1|new b".to_string()]);
}

/// MQTT 5 user properties (including a repeated key) arrive intact and in order; other
/// forwarded properties too.
#[test]
fn v5_user_properties_arrive_intact() {
    require_clients();
    let server = Server::start();
    let mut sub = subscriber(&server, V5, &["-t", "props/t", "-q", "1", "-C", "1", "-F", "%P|%C|%R|%p"]);
    let lines = publish_until_done(
        &server,
        &mut sub,
        V5,
        &[
            "-t", "props/t", "-q", "1", "-m", "with properties",
            "-D", "publish", "user-property", "unit", "celsius",
            "-D", "publish", "user-property", "tag", "a",
            "-D", "publish", "user-property", "tag", "b=c:d",
            "-D", "publish", "content-type", "text/plain",
            "-D", "publish", "response-topic", "props/reply",
        ],
    );
    assert_eq!(lines, vec!["unit:celsius tag:a tag:b=c:d|text/plain|props/reply|with properties".to_string()]);
}

/// A v5 publisher's message reaches a 3.1.1 subscriber and vice versa.
#[test]
fn v311_and_v5_clients_interoperate() {
    require_clients();
    let server = Server::start();
    let mut sub = subscriber(&server, V311, &["-t", "mix/a", "-q", "2", "-C", "1", "-F", FORMAT]);
    let lines = publish_until_done(&server, &mut sub, V5, &["-t", "mix/a", "-q", "2", "-m", "from v5", "-D", "publish", "user-property", "k", "v"]);
    assert_eq!(lines, vec!["mix/a|2|0|from v5".to_string()]);
    let mut sub = subscriber(&server, V5, &["-t", "mix/b", "-q", "1", "-C", "1", "-F", "%P|%t|%q|%p"]);
    let lines = publish_until_done(&server, &mut sub, V311, &["-t", "mix/b", "-q", "1", "-m", "from v311"]);
    assert_eq!(lines, vec!["|mix/b|1|from v311".to_string()]);
}
