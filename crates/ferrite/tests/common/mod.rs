//! Test harness shared by the black-box suites: starts the real `ferrite` binary on an
//! OS-chosen port with its own data directory, and offers a raw MQTT client (built on the
//! `mqtt` codec) for the packets no client library will send.
#![allow(dead_code)] // each test binary uses a different part of the harness

use bytes::BytesMut;
use mqtt::{ConnAck, Connect, Packet, Properties, Protocol};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any single expected event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running `ferrite serve`, killed (and its data directory removed) on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    sets: Vec<String>,
    /// Listener name (`mqtt`, `mqtts`, `ws`, `wss`, `http`) → port.
    pub ports: std::collections::HashMap<String, u16>,
    /// The root access key printed on first start (id, secret).
    pub creds: Option<(String, String)>,
    /// The database the state is kept in, with FERRITE_TEST_BACKEND=postgres.
    _database: Option<testpg::Database>,
}

impl Server {
    /// Starts Ferrite with default settings.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts Ferrite with `--set key=value` overrides such as `mqtt.max_connections=2`.
    pub fn start_with(sets: &[&str]) -> Server {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ferrite-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Server::start_in(dir, sets)
    }

    /// Starts Ferrite on the data directory `dir` (removed when the server is dropped).
    /// With FERRITE_TEST_BACKEND=postgres (and no `store.backend` setting of the test's own)
    /// the state is kept in a fresh PostgreSQL database.
    pub fn start_in(dir: PathBuf, sets: &[&str]) -> Server {
        let mut sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let database = (std::env::var("FERRITE_TEST_BACKEND").as_deref() == Ok("postgres") && !sets.iter().any(|s| s.starts_with("store.backend")))
            .then(testpg::Database::create);
        if let Some(db) = &database {
            sets.insert(0, "store.backend=postgres".into());
            sets.insert(1, format!("store.postgres_url={}", db.url()));
        }
        let (child, ports, creds) = Server::spawn(&dir, &sets);
        Server { child, port: ports["mqtt"], dir, sets, ports, creds, _database: database }
    }

    /// Kills the process with SIGKILL (no chance to flush anything) and starts a new one on the
    /// same data directory; the port changes.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, ports, _) = Server::spawn(&self.dir, &self.sets);
        self.child = child;
        self.port = ports["mqtt"];
        self.ports = ports;
    }

    /// Stops the process with SIGTERM and starts a new one on the same data directory.
    pub fn restart(&mut self) {
        assert_eq!(self.terminate(), Some(0), "ferrite did not stop cleanly");
        let (child, ports, _) = Server::spawn(&self.dir, &self.sets);
        self.child = child;
        self.port = ports["mqtt"];
        self.ports = ports;
    }

    /// Starts the process; returns it, its ports and the root credentials printed on first start.
    fn spawn(dir: &std::path::Path, sets: &[String]) -> (Child, std::collections::HashMap<String, u16>, Option<(String, String)>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrite"));
        cmd.arg("serve").arg("--data-dir").arg(dir).arg("--mqtt-listen").arg("127.0.0.1:0");
        // Only the plain listener unless a test turns others on (later --set wins).
        for off in ["mqtt.tls_listen=off", "mqtt.ws_listen=off", "mqtt.wss_listen=off", "api.listen=127.0.0.1:0", "api.tls_listen=off"] {
            cmd.arg("--set").arg(off);
        }
        for s in sets {
            cmd.arg("--set").arg(s);
        }
        cmd.env("FERRITE_LOG__LEVEL", std::env::var("FERRITE_TEST_LOG").unwrap_or_else(|_| "warn".into()));
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn ferrite");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ports = std::collections::HashMap::new();
            let mut creds = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "ferrite ready" {
                    let _ = tx.send((std::mem::take(&mut ports), creds.take()));
                } else if let Some((id, secret)) = line.strip_prefix("root credentials: ").and_then(|c| c.split_once(' ')) {
                    creds = Some((id.to_string(), secret.to_string()));
                } else if let Some((name, addr)) = line.split_once(" listening on ")
                    && let Some(port) = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok())
                {
                    ports.insert(name.to_string(), port);
                }
            }
        });
        let (ports, creds) = rx.recv_timeout(WAIT).expect("ferrite did not report ready");
        (child, ports, creds)
    }

    /// Calls the `iot` API (SigV4-signed with the root key): returns the status and the body.
    pub fn iot(&self, method: &str, path: &str, query: &str, body: &str) -> (u16, String) {
        let (id, secret) = self.creds.clone().expect("root credentials were printed on first start");
        let host = format!("127.0.0.1:{}", self.ports["http"]);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        let headers = vec![("host".to_string(), host.clone()), ("x-amz-date".to_string(), identity::sigv4::format_amz_date(now))];
        let req = identity::sigv4::Request { method, path, query, headers: &headers, body: body.as_bytes() };
        let auth = identity::sigv4::sign(&req, &id, &secret, "us-east-1", "iot").expect("sign");
        let target = if query.is_empty() { path.to_string() } else { format!("{path}?{query}") };
        let mut stream = TcpStream::connect(&host).expect("connect to the API");
        let head = format!(
            "{method} {target} HTTP/1.1\r\nhost: {host}\r\nx-amz-date: {}\r\nauthorization: {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            headers[1].1,
            body.len()
        );
        stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body.as_bytes())).expect("send API request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read API response");
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    /// Registers a certificate (PEM) ACTIVE and attaches a policy allowing everything; returns
    /// its certificate id.
    pub fn register_allow_all(&self, cert_pem: &str) -> String {
        let body = serde_json::json!({ "certificatePem": cert_pem, "status": "ACTIVE" }).to_string();
        let (status, out) = self.iot("POST", "/certificate/register", "", &body);
        assert_eq!(status, 200, "RegisterCertificate: {out}");
        let out: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;
        let (status, out2) = self.iot("POST", "/policies/allow-all", "", &serde_json::json!({ "policyDocument": doc }).to_string());
        assert!(status == 200 || status == 409, "CreatePolicy: {out2}");
        let target = serde_json::json!({ "target": out["certificateArn"] }).to_string();
        let (status, out3) = self.iot("PUT", "/target-policies/allow-all", "", &target);
        assert_eq!(status, 200, "AttachPolicy: {out3}");
        out["certificateId"].as_str().expect("certificateId").to_string()
    }

    /// The value of a metric line (`name` exactly, no labels) from `/metrics`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.ports["http"])).ok()?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Waits (up to [`WAIT`]) until a metric has the value `want`; panics with the last value.
    pub fn wait_for_metric(&self, name: &str, want: f64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.metric(name);
            if got == Some(want) {
                return;
            }
            assert!(Instant::now() < deadline, "{name} is {got:?}, expected {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Resident memory of the server process, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// CPU time (user + system) the server process has used so far, in seconds.
    pub fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
        ticks / 100.0
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking MQTT client speaking raw packets, for protocol-violation tests.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
    pub v: Protocol,
}

impl Raw {
    /// Opens a TCP connection without sending anything.
    pub fn open(port: u16, v: Protocol) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        Raw { stream, buf: BytesMut::new(), v }
    }

    /// Connects and completes CONNECT/CONNACK; panics unless the CONNACK is a success.
    pub fn connect(port: u16, v: Protocol, client_id: &str) -> (Raw, ConnAck) {
        Raw::connect_with(port, connect_packet(v, client_id))
    }

    /// Sends the given CONNECT and returns the CONNACK, whatever its reason code.
    pub fn connect_with(port: u16, c: Connect) -> (Raw, ConnAck) {
        let mut raw = Raw::open(port, c.protocol);
        raw.send(&Packet::Connect(Box::new(c)));
        match raw.recv() {
            Some(Packet::ConnAck(ack)) => (raw, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub fn send(&mut self, p: &Packet) {
        let mut out = BytesMut::new();
        p.encode(&mut out, self.v);
        self.send_bytes(&out);
    }

    pub fn send_bytes(&mut self, b: &[u8]) {
        let _ = self.stream.write_all(b);
    }

    /// The next packet, or `None` if the server closed the connection or nothing came in time.
    pub fn recv(&mut self) -> Option<Packet> {
        self.recv_within(WAIT)
    }

    pub fn recv_within(&mut self, wait: Duration) -> Option<Packet> {
        let deadline = Instant::now() + wait;
        loop {
            match mqtt::decode(&mut self.buf, Some(self.v), usize::MAX) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(e) => panic!("server sent an undecodable packet: {e}"),
            }
            if Instant::now() >= deadline {
                return None;
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return None,
            }
        }
    }

    /// Reads until the server closes the connection; returns the packets received before that.
    /// Panics if the connection is still open after [`WAIT`].
    pub fn expect_close(&mut self) -> Vec<Packet> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        loop {
            match mqtt::decode(&mut self.buf, Some(self.v), usize::MAX) {
                Ok(Some(p)) => {
                    got.push(p);
                    continue;
                }
                Ok(None) => {}
                Err(e) => panic!("server sent an undecodable packet: {e}"),
            }
            assert!(Instant::now() < deadline, "connection still open; got {got:?}");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return got,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return got,
            }
        }
    }
}

/// A CONNECT with clean start, keep alive 60 and no will.
pub fn connect_packet(v: Protocol, client_id: &str) -> Connect {
    Connect {
        protocol: v,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

/// The path of a command, if installed (for the mosquitto clients).
pub fn have(cmd: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {cmd}")).output().is_ok_and(|o| o.status.success())
}
