//! Shared helpers for the real-peer integration tests (`tests/peers_*.rs`).
//!
//! Every test that talks to real peers (SIPp, Kamailio, the release `callgate`
//! binary) goes through these helpers:
//!
//! * [`serial`]: a process-wide lock; the peers use fixed ports on 127.0.0.1, so
//!   two tests of one test binary must never overlap. (`make test` also runs
//!   the peer binaries with `--test-threads=1`.)
//! * [`Peer`]: a child process in its own process group, stopped by PID with
//!   SIGTERM, then SIGKILL after a bound; dropped means stopped.
//! * [`start_gateway`]: `callgate run --dialplan FILE`, ready when
//!   `GET /healthz` on 127.0.0.1:9090 answers 200.
//! * [`Sipp`]: SIPp with `-trace_stat`/`-trace_err` (and optionally
//!   `-trace_msg`), waited for with a bound; its stat CSV is parsed.
//! * [`start_kamailio`]: Kamailio in the foreground (`-DD -E`) with a config.
//! * [`net`]: ports (shiftable), the dial plan of a B2BUA test and the checks
//!   after every call (`/calls` empty, no media port bound); [`rtp`]: a G.711
//!   pcap for SIPp and RTP counted on the wire; [`baresip`]: baresip as a
//!   headless UA; [`audio`]: WAV reading and tone detection; [`media`]: the
//!   media tests' own RTP sockets, RTP with payloads on the wire, G.711,
//!   RFC 4733 and in-band digits, tone levels and packet spacing.
//!
//! A missing peer binary is a test FAILURE telling to run `make deps`: the
//! real-peer tests never skip. Every wait in here is bounded.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(dead_code)]

pub mod audio;
pub mod baresip;
pub mod media;
pub mod net;
pub mod rtp;

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- ports ---

/// Gateway client-side listener (UDP + TCP), `dialplans/loopback-proxy*.yaml`.
pub const GATEWAY_PORT: u16 = 5060;
/// Gateway carrier-side listener.
pub const GATEWAY_CARRIER_SIDE_PORT: u16 = 5080;
/// Trunk `carrier-a` (first in failover order).
pub const CARRIER_A_PORT: u16 = 5070;
/// Trunk `carrier-b` (second in failover order).
pub const CARRIER_B_PORT: u16 = 5072;
/// Platform peer (calls arriving on 5080 go there).
pub const PLATFORM_PORT: u16 = 5066;
/// Gateway admin HTTP (`/healthz`, `/metrics`).
pub const ADMIN_PORT: u16 = 9090;
/// Local port of the calling SIPp.
pub const UAC_PORT: u16 = 5100;
/// Kamailio as an upstream proxy in front of the gateway.
pub const KAMAILIO_UPSTREAM_PORT: u16 = 5090;

pub const LOOPBACK: &str = "127.0.0.1";

pub fn gateway_target() -> String {
    format!("{LOOPBACK}:{GATEWAY_PORT}")
}

// ------------------------------------------------------------ locations ---

/// Repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `shared/` checked out beside the repository (`../shared`).
pub fn shared_dir() -> PathBuf {
    repo_root().join("..").join("shared")
}

/// A SIPp scenario from `sip-fixtures/sipp/`.
pub fn sipp_scenario(file: &str) -> PathBuf {
    let p = repo_root().join("sip-fixtures").join("sipp").join(file);
    assert!(p.is_file(), "SIPp scenario {} is missing", p.display());
    p
}

/// A Kamailio config from `sip-fixtures/kamailio/`.
pub fn kamailio_config(file: &str) -> PathBuf {
    let p = repo_root().join("sip-fixtures").join("kamailio").join(file);
    assert!(p.is_file(), "Kamailio config {} is missing", p.display());
    p
}

/// A dial plan from `dialplans/`; fails the test if it is not in the tree.
pub fn dialplan(file: &str) -> PathBuf {
    let p = repo_root().join("dialplans").join(file);
    assert!(
        p.is_file(),
        "dial plan {} is missing: the real-peer tests need the gateway's loopback dial plans",
        p.display()
    );
    p
}

/// The release binary under test (the tests run with `cargo test --release`).
pub fn callgate_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_callgate"))
}

/// A fresh, empty working directory for one test under Cargo's target tmpdir.
pub fn work_dir(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("peers")
        .join(test);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
    d
}

// --------------------------------------------------------------- serial ---

/// Process-wide lock: tests sharing the fixed ports never overlap inside one
/// test binary. A test that panicked while holding it does not poison others.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------- tools ---

/// Path of an external tool; a missing tool FAILS the test (never skips).
pub fn require_tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        dirs.push(PathBuf::from(extra));
    }
    for d in dirs {
        let candidate = d.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed (looked in PATH and the sbin directories). \
         Run `make deps` (as root: installs Debian packages sip-tester, kamailio, baresip, \
         pkg-config, libopus-dev). Real-peer tests never skip."
    );
}

// ------------------------------------------------------------- waiting ---

/// Polls `cond` every `step` until it holds or `bound` has passed.
pub fn wait_until(bound: Duration, step: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(step);
    }
}

fn proc_net_ports(files: &[&str], want_state: Option<&str>) -> Vec<u16> {
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 {
                continue;
            }
            if let Some(state) = want_state
                && cols[3] != state
            {
                continue;
            }
            if let Some((_, port_hex)) = cols[1].rsplit_once(':')
                && let Ok(port) = u16::from_str_radix(port_hex, 16)
            {
                out.push(port);
            }
        }
    }
    out
}

/// Some socket is bound to UDP `port` (any address), read from /proc/net.
/// Does not touch the port itself, so it never races the peer binding it.
pub fn udp_port_bound(port: u16) -> bool {
    proc_net_ports(&["/proc/net/udp", "/proc/net/udp6"], None).contains(&port)
}

/// Some socket listens on TCP `port` (any address), read from /proc/net.
pub fn tcp_port_listening(port: u16) -> bool {
    proc_net_ports(&["/proc/net/tcp", "/proc/net/tcp6"], Some("0A")).contains(&port)
}

/// Fails the test if a port it is about to use is taken (a stale peer).
pub fn assert_ports_free(udp: &[u16], tcp: &[u16]) {
    for &p in udp {
        assert!(
            !udp_port_bound(p),
            "UDP port {p} is already in use before the test started \
             (a stale gateway, SIPp or Kamailio from an earlier run? `ss -lunp | grep {p}`)"
        );
    }
    for &p in tcp {
        assert!(
            !tcp_port_listening(p),
            "TCP port {p} is already listening before the test started \
             (a stale process from an earlier run? `ss -ltnp | grep {p}`)"
        );
    }
}

// ----------------------------------------------------------------- Peer ---

const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Sends `sig` to the process group led by `pid` (each peer is a group leader).
fn signal_group(pid: u32, sig: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) takes plain integers and has no memory-safety
    // preconditions; the target is the process group of a child we spawned.
    unsafe { kill(-pid, sig) == 0 }
}

/// How a peer ended when it was stopped.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    /// Exit status, if the process was reaped within the bounds.
    pub status: Option<ExitStatus>,
    /// True if SIGTERM was not enough and SIGKILL was sent.
    pub forced: bool,
    /// True if the process had already exited before it was asked to stop.
    pub already_exited: bool,
}

/// A child process (in its own process group) that is stopped on drop.
pub struct Peer {
    name: String,
    child: Option<Child>,
    status: Option<ExitStatus>,
    log: PathBuf,
}

impl Peer {
    /// Spawns `cmd` with stdin closed and stdout+stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Peer {
        let out = fs::File::create(log)
            .unwrap_or_else(|e| panic!("{name}: cannot create log {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        Peer {
            name: name.to_string(),
            child: Some(child),
            status: None,
            log: log.to_path_buf(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Exit status if the process has exited (non-blocking).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(child) = self.child.as_mut()
            && let Ok(Some(st)) = child.try_wait()
        {
            self.status = Some(st);
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_exit().is_none()
    }

    /// Waits at most `bound` for the process to exit by itself.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        wait_until(bound, Duration::from_millis(20), || {
            self.try_exit().is_some()
        });
        self.try_exit()
    }

    /// SIGTERM to the group, wait at most `grace`, then SIGKILL and reap.
    pub fn stop(&mut self, grace: Duration) -> Stopped {
        if self.child.is_none() {
            return Stopped {
                status: self.status,
                forced: false,
                already_exited: true,
            };
        }
        if let Some(st) = self.try_exit() {
            // Reap stragglers of the group (e.g. Kamailio's workers).
            signal_group(self.pid(), SIGKILL);
            return Stopped {
                status: Some(st),
                forced: false,
                already_exited: true,
            };
        }
        signal_group(self.pid(), SIGTERM);
        if let Some(st) = self.wait_exit(grace) {
            signal_group(self.pid(), SIGKILL);
            return Stopped {
                status: Some(st),
                forced: false,
                already_exited: false,
            };
        }
        signal_group(self.pid(), SIGKILL);
        let st = self.wait_exit(Duration::from_secs(5));
        Stopped {
            status: st,
            forced: true,
            already_exited: false,
        }
    }

    /// The last `max` bytes of the peer's stdout/stderr log.
    pub fn log_tail(&self, max: usize) -> String {
        file_tail(&self.log, max)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.child.is_some() && self.status.is_none() {
            self.stop(Duration::from_secs(3));
        }
    }
}

/// The first `max` bytes of a file (lossy UTF-8), or a note if unreadable.
pub fn file_head(path: &Path, max: usize) -> String {
    match fs::read(path) {
        Ok(b) => {
            let cut = b.len().min(max);
            let mut s = String::from_utf8_lossy(&b[..cut]).into_owned();
            if b.len() > max {
                s.push_str(&format!("\n[... {} more bytes]", b.len() - max));
            }
            s
        }
        Err(e) => format!("[{} unreadable: {e}]", path.display()),
    }
}

/// The last `max` bytes of a file (lossy UTF-8), or a note if unreadable.
pub fn file_tail(path: &Path, max: usize) -> String {
    match fs::read(path) {
        Ok(b) => {
            let start = b.len().saturating_sub(max);
            String::from_utf8_lossy(&b[start..]).into_owned()
        }
        Err(e) => format!("[{} unreadable: {e}]", path.display()),
    }
}

// ----------------------------------------------------------------- HTTP ---

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// Minimal HTTP/1.1 GET over a plain TCP socket, bounded by `timeout`.
pub fn http_get(addr: &str, path: &str, timeout: Duration) -> io::Result<HttpResponse> {
    let sa: SocketAddr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&sa, timeout)?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: callgate-tests\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || buf.len() > 16 << 20 {
            break;
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if http_complete(&buf) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no HTTP status line in {:?}", &head[..head.len().min(200)]),
            )
        })?;
    Ok(HttpResponse {
        status,
        body: body.to_string(),
    })
}

fn http_complete(buf: &[u8]) -> bool {
    let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..pos]).to_ascii_lowercase();
    let body_len = buf.len() - pos - 4;
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("content-length:") {
            return v.trim().parse::<usize>().is_ok_and(|n| body_len >= n);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return buf.ends_with(b"0\r\n\r\n");
        }
    }
    false
}

// -------------------------------------------------------------- gateway ---

/// The gateway under test, started from the release binary.
pub struct Gateway {
    pub peer: Peer,
    pub dialplan: PathBuf,
    /// Admin HTTP address (`ip:port`) of this gateway.
    pub admin: String,
}

pub fn admin_addr() -> String {
    format!("{LOOPBACK}:{ADMIN_PORT}")
}

/// `callgate check FILE` must accept the dial plan (clear failure otherwise).
pub fn check_dialplan(file: &Path) {
    let out = Command::new(callgate_bin())
        .arg("check")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", callgate_bin().display()));
    assert!(
        out.status.success(),
        "`callgate check {}` rejected the dial plan ({}):\n{}{}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `callgate run --dialplan FILE` and waits (at most 20 s) until
/// `GET /healthz` answers 200. Fails the test with the gateway's log if it
/// exits or never becomes healthy.
pub fn start_gateway(dialplan: &Path, work: &Path) -> Gateway {
    start_gateway_with(dialplan, work, &[])
}

/// [`start_gateway`] with extra `callgate run` arguments (`--udp-threads 2`).
pub fn start_gateway_with(dialplan: &Path, work: &Path, args: &[&str]) -> Gateway {
    start_gateway_at_with(
        dialplan,
        work,
        &[GATEWAY_PORT, GATEWAY_CARRIER_SIDE_PORT],
        &admin_addr(),
        args,
    )
}

/// [`start_gateway`] for a dial plan on other ports: `sip_ports` are the
/// gateway's listener ports (UDP and TCP, checked free first) and `admin` its
/// admin HTTP address (`ip:port`).
pub fn start_gateway_at(dialplan: &Path, work: &Path, sip_ports: &[u16], admin: &str) -> Gateway {
    start_gateway_at_with(dialplan, work, sip_ports, admin, &[])
}

/// [`start_gateway_at`] with extra `callgate run` arguments.
pub fn start_gateway_at_with(
    dialplan: &Path,
    work: &Path,
    sip_ports: &[u16],
    admin: &str,
    args: &[&str],
) -> Gateway {
    assert!(
        dialplan.is_file(),
        "dial plan {} is missing",
        dialplan.display()
    );
    let admin_port: u16 = admin
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("admin address {admin} has no port"));
    let mut tcp = sip_ports.to_vec();
    tcp.push(admin_port);
    assert_ports_free(sip_ports, &tcp);
    let log = work.join("callgate.log");
    let mut cmd = Command::new(callgate_bin());
    cmd.arg("run").arg("--dialplan").arg(dialplan).args(args);
    cmd.current_dir(repo_root());
    let mut peer = Peer::spawn("callgate", &mut cmd, &log);
    let mut last = String::from("no answer yet");
    let healthy = wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        if peer.try_exit().is_some() {
            return true;
        }
        match http_get(admin, "/healthz", Duration::from_millis(500)) {
            Ok(r) if r.status == 200 => true,
            Ok(r) => {
                last = format!("HTTP {}", r.status);
                false
            }
            Err(e) => {
                last = e.to_string();
                false
            }
        }
    });
    if let Some(st) = peer.try_exit() {
        panic!(
            "callgate exited during start-up ({st}) with dial plan {}; log:\n{}",
            dialplan.display(),
            peer.log_tail(4000)
        );
    }
    assert!(
        healthy,
        "callgate did not answer GET /healthz with 200 on {admin} within 20 s (last: {last}); log:\n{}",
        peer.log_tail(4000)
    );
    Gateway {
        peer,
        dialplan: dialplan.to_path_buf(),
        admin: admin.to_string(),
    }
}

impl Gateway {
    /// Fails the test (with the log) if the gateway is no longer running.
    pub fn assert_alive(&mut self, context: &str) {
        if let Some(st) = self.peer.try_exit() {
            panic!(
                "callgate died {context} ({st}); log:\n{}",
                self.peer.log_tail(6000)
            );
        }
    }

    pub fn get(&self, path: &str) -> io::Result<HttpResponse> {
        http_get(&self.admin, path, Duration::from_secs(5))
    }

    /// Send SIGHUP: the gateway re-reads its dial plan.
    pub fn reload(&self) {
        const SIGHUP: i32 = 1;
        assert!(
            signal_group(self.peer.pid(), SIGHUP),
            "could not send SIGHUP to callgate"
        );
    }

    /// SIGTERM (the gateway drains and exits), SIGKILL after `grace`.
    pub fn stop(mut self, grace: Duration) -> Stopped {
        self.peer.stop(grace)
    }

    pub fn log_tail(&self, max: usize) -> String {
        self.peer.log_tail(max)
    }

    /// The names of the gateway's threads (`/proc/PID/task/*/comm`), sorted.
    pub fn thread_names(&self) -> Vec<String> {
        let tasks = format!("/proc/{}/task", self.peer.pid());
        let mut names: Vec<String> = fs::read_dir(tasks)
            .map(|dir| {
                dir.flatten()
                    .filter_map(|t| fs::read_to_string(t.path().join("comm")).ok())
                    .map(|n| n.trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Whether this kernel lets processes use io_uring
/// (`/proc/sys/kernel/io_uring_disabled` is 0).
pub fn io_uring_enabled() -> bool {
    fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|v| v.trim() == "0")
}

/// `dialplans/loopback-proxy.yaml` with SIP timers scaled down (T1 = 50 ms,
/// so Timer B = 64*T1 = 3.2 s): written to `work/loopback-proxy-fast.yaml`.
/// Derived at test time from the real dial plan so it never drifts from it;
/// only the top-level `timers:` block is replaced.
pub fn fast_dialplan(work: &Path) -> PathBuf {
    let src = dialplan("loopback-proxy.yaml");
    let text = fs::read_to_string(&src).expect("read loopback-proxy.yaml");
    let out = work.join("loopback-proxy-fast.yaml");
    fs::write(&out, with_fast_timers(&text)).expect("write fast dial plan");
    out
}

/// Replaces (or adds) the top-level `timers:` mapping of a YAML dial plan.
pub fn with_fast_timers(yaml: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in yaml.lines() {
        let top_level = !line.starts_with([' ', '\t', '#']) && !line.trim().is_empty();
        if top_level {
            skipping = line.starts_with("timers:");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(
        "# test-only: fast SIP timers (T1 50 ms -> Timer B 3.2 s)\n\
         timers:\n  t1_ms: 50\n  t2_ms: 4000\n  t4_ms: 5000\n  timer_c_s: 180\n",
    );
    out
}

// ----------------------------------------------------------------- SIPp ---

/// The last row of a SIPp `-trace_stat` CSV, by column name.
#[derive(Debug, Clone, Default)]
pub struct SippStats {
    pub columns: HashMap<String, String>,
}

impl SippStats {
    /// Parses the stat CSV (`;`-separated, header row first, last row wins).
    pub fn parse(csv: &str) -> Option<SippStats> {
        let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines.next()?.split(';').collect();
        let last: Vec<&str> = lines.next_back()?.split(';').collect();
        let columns = header
            .iter()
            .zip(last.iter())
            .map(|(h, v)| (h.trim().to_string(), v.trim().to_string()))
            .collect();
        Some(SippStats { columns })
    }

    pub fn count(&self, column: &str) -> u64 {
        self.columns
            .get(column)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    pub fn successful(&self) -> u64 {
        self.count("SuccessfulCall(C)")
    }
    pub fn failed(&self) -> u64 {
        self.count("FailedCall(C)")
    }
    /// Calls created by an incoming request (uas side): INVITEs received.
    pub fn incoming(&self) -> u64 {
        self.count("IncomingCall(C)")
    }
    pub fn outgoing(&self) -> u64 {
        self.count("OutgoingCall(C)")
    }
    pub fn created(&self) -> u64 {
        self.count("TotalCallCreated")
    }

    fn epoch(&self, column: &str) -> Option<f64> {
        // "2026-11-22\t06:13:49.508829\t1795328029.508829"
        self.columns
            .get(column)?
            .split('\t')
            .next_back()?
            .trim()
            .parse()
            .ok()
    }

    /// Seconds from StartTime to CurrentTime of the last row.
    pub fn elapsed_secs(&self) -> f64 {
        match (self.epoch("StartTime"), self.epoch("CurrentTime")) {
            (Some(a), Some(b)) if b >= a => b - a,
            _ => 0.0,
        }
    }

    /// The non-zero cumulative `Failed*(C)` counters, for failure messages.
    pub fn failure_breakdown(&self) -> String {
        let mut v: Vec<String> = self
            .columns
            .iter()
            .filter(|(k, val)| k.starts_with("Failed") && k.ends_with("(C)") && *val != "0")
            .map(|(k, val)| format!("{k}={val}"))
            .collect();
        v.sort();
        v.join(" ")
    }
}

/// What a finished SIPp run left behind.
#[derive(Debug, Clone)]
pub struct SippOutcome {
    pub name: String,
    /// Exit code (0: all calls successful, 1: some failed, 97/99/-1/-2: see `man sipp`).
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The test had to stop SIPp itself (it did not end within its bound).
    pub stopped_by_test: bool,
    pub stats: SippStats,
    pub errors: String,
    pub messages: Option<String>,
    pub screen_tail: String,
}

impl SippOutcome {
    pub fn successful(&self) -> u64 {
        self.stats.successful()
    }
    pub fn failed(&self) -> u64 {
        self.stats.failed()
    }

    /// One paragraph for assertion messages.
    pub fn summary(&self) -> String {
        format!(
            "SIPp {}: exit={:?} signal={:?} stopped_by_test={} created={} incoming={} \
             outgoing={} successful={} failed={} [{}] elapsed={:.1}s\n\
             --- error log (head) ---\n{}\n--- screen (tail) ---\n{}",
            self.name,
            self.exit_code,
            self.signal,
            self.stopped_by_test,
            self.stats.created(),
            self.stats.incoming(),
            self.stats.outgoing(),
            self.stats.successful(),
            self.stats.failed(),
            self.stats.failure_breakdown(),
            self.stats.elapsed_secs(),
            if self.errors.is_empty() {
                "(empty)"
            } else {
                &self.errors
            },
            self.screen_tail
        )
    }

    /// Asserts exit code 0, exactly `calls` successful and 0 failed calls.
    pub fn assert_all_successful(&self, calls: u64, context: &str) {
        assert!(
            self.exit_code == Some(0)
                && self.successful() == calls
                && self.failed() == 0
                && !self.stopped_by_test,
            "{context}: expected {calls} successful and 0 failed calls with exit code 0\n{}",
            self.summary()
        );
    }

    /// SIP messages SIPp traced (`-trace_msg`), parsed.
    pub fn traced(&self) -> Vec<TracedMessage> {
        self.messages
            .as_deref()
            .map(parse_sipp_message_log)
            .unwrap_or_default()
    }
}

/// Builder for one SIPp instance.
pub struct Sipp {
    name: String,
    work: PathBuf,
    args: Vec<String>,
    trace_msg: bool,
    is_uac: bool,
    tcp: bool,
    port: u16,
    ip: String,
}

impl Sipp {
    /// A calling SIPp (client mode) towards `target` (`ip:port`), bound to
    /// 127.0.0.1:[`UAC_PORT`].
    pub fn uac(name: &str, work: &Path, target: &str) -> Sipp {
        Sipp {
            name: name.to_string(),
            work: work.to_path_buf(),
            args: vec![target.to_string()],
            trace_msg: false,
            is_uac: true,
            tcp: false,
            port: UAC_PORT,
            ip: LOOPBACK.to_string(),
        }
    }

    /// An answering SIPp (server mode) on 127.0.0.1:`port`. It answers
    /// out-of-call OPTIONS with 200 (`-aa`), like a healthy trunk.
    pub fn uas(name: &str, work: &Path, port: u16) -> Sipp {
        Sipp {
            name: name.to_string(),
            work: work.to_path_buf(),
            args: vec!["-aa".to_string()],
            trace_msg: false,
            is_uac: false,
            tcp: false,
            port,
            ip: LOOPBACK.to_string(),
        }
    }

    /// Bind to another local address (e.g. `::1` for IPv6 tests).
    pub fn ip(mut self, ip: &str) -> Sipp {
        self.ip = ip.to_string();
        self
    }

    /// Bind to another local port (two callers at once).
    pub fn local_port(mut self, port: u16) -> Sipp {
        self.port = port;
        self
    }

    /// A scenario file from `sip-fixtures/sipp/`.
    pub fn scenario(mut self, file: &str) -> Sipp {
        self.args.push("-sf".into());
        self.args
            .push(sipp_scenario(file).to_string_lossy().into_owned());
        self
    }

    /// One of SIPp's built-in scenarios (`uac`, `uas`, ...).
    pub fn builtin(mut self, name: &str) -> Sipp {
        self.args.push("-sn".into());
        self.args.push(name.into());
        self
    }

    /// TCP, one connection for all calls (`-t t1`).
    pub fn tcp(mut self) -> Sipp {
        self.tcp = true;
        self.args.push("-t".into());
        self.args.push("t1".into());
        self
    }

    pub fn rate(self, cps: u32) -> Sipp {
        self.arg("-r").arg(&cps.to_string())
    }

    pub fn calls(self, n: u64) -> Sipp {
        self.arg("-m").arg(&n.to_string())
    }

    /// Maximum simultaneous calls (`-l`).
    pub fn limit(self, n: u64) -> Sipp {
        self.arg("-l").arg(&n.to_string())
    }

    /// SIPp's own global timeout (`-timeout Ns`): it ends by itself.
    pub fn timeout(self, bound: Duration) -> Sipp {
        self.arg("-timeout")
            .arg(&format!("{}s", bound.as_secs().max(1)))
    }

    /// Keep a log of every message sent and received (`-trace_msg`).
    pub fn trace_msg(mut self) -> Sipp {
        self.trace_msg = true;
        self
    }

    pub fn arg(mut self, a: &str) -> Sipp {
        self.args.push(a.to_string());
        self
    }

    pub fn spawn(self) -> SippProc {
        let sipp = require_tool("sipp");
        let stat_file = self.work.join(format!("{}.stat.csv", self.name));
        let err_file = self.work.join(format!("{}.errors.log", self.name));
        let msg_file = self.work.join(format!("{}.messages.log", self.name));
        let screen = self.work.join(format!("{}.screen.log", self.name));
        for f in [&stat_file, &err_file, &msg_file] {
            let _ = fs::remove_file(f);
        }
        if !self.is_uac {
            if self.tcp {
                assert_ports_free(&[], &[self.port]);
            } else {
                assert_ports_free(&[self.port], &[]);
            }
        }
        let mut cmd = Command::new(sipp);
        cmd.args(&self.args)
            .args(["-i", &self.ip, "-bind_local", "-nostdin"])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(&stat_file)
            .args(["-trace_err", "-error_file"])
            .arg(&err_file);
        if self.trace_msg {
            cmd.args(["-trace_msg", "-message_file"]).arg(&msg_file);
        }
        cmd.current_dir(&self.work);
        let mut peer = Peer::spawn(&format!("sipp {}", self.name), &mut cmd, &screen);
        if !self.is_uac {
            // A server is usable once its port is bound.
            let port = self.port;
            let tcp = self.tcp;
            let ready = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
                if tcp {
                    tcp_port_listening(port)
                } else {
                    udp_port_bound(port)
                }
            });
            if !ready || peer.try_exit().is_some() {
                let st = peer.try_exit();
                panic!(
                    "SIPp {} did not come up on {}:{port} (exit: {st:?}); screen:\n{}",
                    self.name,
                    self.ip,
                    peer.log_tail(3000)
                );
            }
        }
        SippProc {
            name: self.name,
            peer,
            stat_file,
            err_file,
            msg_file: self.trace_msg.then_some(msg_file),
        }
    }
}

/// A running SIPp.
pub struct SippProc {
    pub name: String,
    pub peer: Peer,
    stat_file: PathBuf,
    err_file: PathBuf,
    msg_file: Option<PathBuf>,
}

impl SippProc {
    /// The statistics SIPp dumped so far (every second with `-fd 1`).
    pub fn current_stats(&self) -> SippStats {
        fs::read_to_string(&self.stat_file)
            .ok()
            .and_then(|s| SippStats::parse(&s))
            .unwrap_or_default()
    }

    /// Polls the stat file until `cond` holds (at most `bound`).
    pub fn wait_stats(&self, bound: Duration, cond: impl Fn(&SippStats) -> bool) -> bool {
        wait_until(bound, Duration::from_millis(100), || {
            cond(&self.current_stats())
        })
    }

    /// Waits at most `bound` for SIPp to end by itself, then stops it.
    pub fn wait(mut self, bound: Duration) -> SippOutcome {
        let ended = self.peer.wait_exit(bound).is_some();
        if !ended {
            self.peer.stop(Duration::from_secs(3));
        }
        self.collect(!ended)
    }

    /// Stops a SIPp that runs until told (a uas): SIGTERM makes SIPp write
    /// its final statistics and exit; SIGKILL after 5 s.
    pub fn stop(mut self) -> SippOutcome {
        self.peer.stop(Duration::from_secs(5));
        self.collect(false)
    }

    fn collect(&mut self, stopped_by_test: bool) -> SippOutcome {
        let status = self.peer.try_exit();
        SippOutcome {
            name: self.name.clone(),
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            stopped_by_test,
            stats: self.current_stats(),
            errors: if self.err_file.exists() {
                file_head(&self.err_file, 3000)
            } else {
                String::new()
            },
            messages: self
                .msg_file
                .as_ref()
                .map(|p| fs::read_to_string(p).unwrap_or_default()),
            screen_tail: self.peer.log_tail(2500),
        }
    }
}

/// One message from a SIPp `-trace_msg` log.
#[derive(Debug, Clone)]
pub struct TracedMessage {
    pub received: bool,
    pub text: String,
}

/// Splits a SIPp message log into messages. Each entry looks like
/// `----- <date>` / `UDP message received [N] bytes :` (or `... sent (N bytes):`)
/// / empty line / the SIP message.
pub fn parse_sipp_message_log(log: &str) -> Vec<TracedMessage> {
    let mut out = Vec::new();
    let mut cur: Option<(bool, String)> = None;
    for line in log.split('\n') {
        let l = line.trim_end_matches('\r');
        if l.starts_with("-----------------------------------------------") {
            if let Some((received, text)) = cur.take() {
                out.push(TracedMessage {
                    received,
                    text: text.trim().to_string(),
                });
            }
            continue;
        }
        if cur.is_none() {
            if l.contains(" message received") {
                cur = Some((true, String::new()));
            } else if l.contains(" message sent") {
                cur = Some((false, String::new()));
            }
            continue;
        }
        if let Some((_, text)) = cur.as_mut() {
            text.push_str(l);
            text.push_str("\r\n");
        }
    }
    if let Some((received, text)) = cur.take() {
        out.push(TracedMessage {
            received,
            text: text.trim().to_string(),
        });
    }
    out
}

// ------------------------------------------------------------- Kamailio ---

/// Starts Kamailio in the foreground (`-DD -E`) with `cfg` and waits (at most
/// 10 s) until UDP `port` is bound. Stopping the returned peer signals
/// Kamailio's whole process group (the main process and its workers).
pub fn start_kamailio(name: &str, cfg: &Path, work: &Path, port: u16, extra: &[&str]) -> Peer {
    let bin = require_tool("kamailio");
    assert_ports_free(&[port], &[]);
    let rundir = work.join(format!("{name}.run"));
    fs::create_dir_all(&rundir).expect("create kamailio runtime dir");
    let mut cmd = Command::new(bin);
    cmd.arg("-f")
        .arg(cfg)
        .args(["-DD", "-E", "-m", "64", "-M", "8"])
        .arg("-Y")
        .arg(&rundir)
        .args(extra)
        .current_dir(work);
    let mut peer = Peer::spawn(name, &mut cmd, &work.join(format!("{name}.log")));
    let ready = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        udp_port_bound(port) || peer.try_exit().is_some()
    });
    if let Some(st) = peer.try_exit() {
        panic!(
            "kamailio ({}) exited during start-up ({st}); log:\n{}",
            cfg.display(),
            peer.log_tail(4000)
        );
    }
    assert!(
        ready,
        "kamailio ({}) did not bind UDP 127.0.0.1:{port} within 10 s; log:\n{}",
        cfg.display(),
        peer.log_tail(4000)
    );
    // The workers bind before the attendant reports; give them a moment.
    thread::sleep(Duration::from_millis(200));
    peer
}

// ---------------------------------------------------------- SIP parsing ---

/// Status code of a response (`SIP/2.0 NNN ...`), `None` for a request.
pub fn status_code(msg: &str) -> Option<u16> {
    let first = msg.lines().next()?;
    let rest = first.strip_prefix("SIP/2.0 ")?;
    rest.get(..3)?.parse().ok()
}

/// Values of a header (case-insensitive name, or its compact form),
/// unfolding continuation lines; stops at the end of the header section.
pub fn header_values(msg: &str, name: &str, compact: Option<&str>) -> Vec<String> {
    let head = msg
        .split("\r\n\r\n")
        .next()
        .unwrap_or(msg)
        .split("\n\n")
        .next()
        .unwrap_or(msg);
    let mut unfolded: Vec<String> = Vec::new();
    for line in head.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = unfolded.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            unfolded.push(line.to_string());
        }
    }
    unfolded
        .iter()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            let n = n.trim();
            let matches =
                n.eq_ignore_ascii_case(name) || compact.is_some_and(|c| n.eq_ignore_ascii_case(c));
            matches.then(|| v.trim().to_string())
        })
        .collect()
}

/// Splits a header value list at top-level commas (not inside `<>` or quotes).
pub fn split_header_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut in_angle, mut in_quote) = (false, false);
    for c in value.chars() {
        match c {
            '"' if !in_angle => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_angle && !in_quote => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Method of the CSeq header (`CSeq: 1 INVITE` -> `INVITE`).
pub fn cseq_method(msg: &str) -> Option<String> {
    header_values(msg, "CSeq", None)
        .first()?
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
}

/// Route-set entries (`Record-Route` or `Route`) of a message, in order.
pub fn route_entries(msg: &str, header: &str) -> Vec<String> {
    header_values(msg, header, None)
        .iter()
        .flat_map(|v| split_header_list(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_csv_last_row_by_name() {
        let csv = "StartTime;CurrentTime;SuccessfulCall(C);FailedCall(C);FailedMaxUDPRetrans(C);\n\
                   2026-11-22\t06:13:49.5\t100.5;2026-11-22\t06:13:49.5\t100.5;0;0;0;\n\
                   2026-11-22\t06:13:49.5\t100.5;2026-11-22\t06:14:00.0\t110.5;9;1;1;\n";
        let s = SippStats::parse(csv).unwrap();
        assert_eq!(s.successful(), 9);
        assert_eq!(s.failed(), 1);
        assert!((s.elapsed_secs() - 10.0).abs() < 1e-6);
        assert_eq!(
            s.failure_breakdown(),
            "FailedCall(C)=1 FailedMaxUDPRetrans(C)=1"
        );
    }

    #[test]
    fn header_list_split_and_fold() {
        let msg = "SIP/2.0 200 OK\r\nRecord-Route: <sip:a;lr>, <sip:b,x;lr>\r\n\
                   record-route: \"x, y\" <sip:c;lr>\r\nCSeq: 1\r\n INVITE\r\n\r\nbody";
        assert_eq!(route_entries(msg, "Record-Route").len(), 3);
        assert_eq!(cseq_method(msg).as_deref(), Some("INVITE"));
        assert_eq!(status_code(msg), Some(200));
    }

    #[test]
    fn fast_timers_replace_block() {
        let y = "a: 1\ntimers:\n  t1_ms: 500\n  t2_ms: 4000\nb:\n  - c\n";
        let out = with_fast_timers(y);
        assert!(out.starts_with("a: 1\nb:\n  - c\n"));
        assert!(out.contains("timers:\n  t1_ms: 50\n"));
        assert_eq!(out.matches("timers:").count(), 1);
    }

    #[test]
    fn message_log_split() {
        let log = "----------------------------------------------- 2026\n\
                   UDP message sent (10 bytes):\n\nINVITE sip:x SIP/2.0\nCSeq: 1 INVITE\n\n\n\
                   ----------------------------------------------- 2026\n\
                   UDP message received [10] bytes :\n\nSIP/2.0 200 OK\nCSeq: 1 INVITE\n\n";
        let m = parse_sipp_message_log(log);
        assert_eq!(m.len(), 2);
        assert!(!m[0].received && m[1].received);
        assert_eq!(status_code(&m[1].text), Some(200));
    }
}
