//! Ports, dial plans and after-call checks of the B2BUA real-peer tests
//! (`tests/peers_b2bua.rs`, `tests/peers_baresip.rs`, and the shared set-up
//! of `tests/peers_media.rs` and `tests/peers_srtp.rs`).
//!
//! The tests run on the fixed loopback interface: `dialplans/loopback.yaml`
//! (B2BUA), gateway 127.0.0.1:5060/5080, trunks carrier-a 5070 and carrier-b
//! 5072, admin 9090, media relay 127.0.0.1:20000–20999. Two environment
//! variables let an engineer run them beside other tests on a shared machine,
//! or debug a flow against another dial plan; unset, the fixed interface is
//! used:
//!
//! * `CALLGATE_PEERS_PORT_OFFSET=N` adds N to every port a test uses: the
//!   listeners, trunks, admin and media range of its copy of the dial plan,
//!   and the peers' own SIP, control and RTP ports.
//! * `CALLGATE_PEERS_DIALPLAN=FILE` (relative to the repository root, or
//!   absolute) replaces `dialplans/loopback.yaml`, e.g. with
//!   `dialplans/loopback-proxy.yaml` to debug a scenario through the proxy.
//!   Checks that only hold for a B2BUA (anchored SDP, `/calls`, separate
//!   dialogs per leg, RTP through the relay range) are skipped when the plan
//!   has no `mode: b2bua` route; the test prints that it skipped them.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    Gateway, LOOPBACK, check_dialplan, dialplan, repo_root, start_gateway_at_with, wait_until,
};

/// First port of the gateway's media relay range in `dialplans/loopback.yaml`.
pub const MEDIA_FIRST: u16 = 20000;
/// Last port of the media relay range.
pub const MEDIA_LAST: u16 = 20999;

/// SIPp caller's RTP port (`-mp`); the pcap it plays is sent from here and
/// the echo comes back here.
pub const UAC_MEDIA_PORT: u16 = 6100;
/// SIPp callee's RTP port (`-mp`, echoed with `-rtp_echo`).
pub const UAS_MEDIA_PORT: u16 = 6200;

/// baresip caller (A): SIP (UDP and TCP; baresip also listens TLS on +1).
pub const BARESIP_A_SIP_PORT: u16 = 5100;
/// baresip caller's `ctrl_tcp` control port.
pub const BARESIP_A_CTRL_PORT: u16 = 5102;
/// baresip callee's `ctrl_tcp` control port (its SIP port is carrier-a's).
pub const BARESIP_B_CTRL_PORT: u16 = 5103;
/// baresip RTP port ranges (A, then B), outside the relay range.
pub const BARESIP_A_RTP: (u16, u16) = (30000, 30019);
pub const BARESIP_B_RTP: (u16, u16) = (30020, 30039);

/// The ports of `dialplans/loopback*.yaml` that a shifted plan moves.
const PLAN_PORTS: [u16; 6] = [5060, 5066, 5070, 5072, 5080, 9090];

/// Where one test's peers live: the fixed ports plus an offset.
#[derive(Clone, Debug)]
pub struct Net {
    pub offset: u16,
}

impl Net {
    /// The fixed ports, or shifted by `CALLGATE_PEERS_PORT_OFFSET`.
    pub fn from_env() -> Net {
        let offset = match std::env::var("CALLGATE_PEERS_PORT_OFFSET") {
            Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| {
                panic!("CALLGATE_PEERS_PORT_OFFSET must be a port offset, got {v:?}")
            }),
            _ => 0,
        };
        assert!(
            u32::from(offset) + u32::from(BARESIP_B_RTP.1) <= 65535,
            "CALLGATE_PEERS_PORT_OFFSET={offset} would push ports past 65535"
        );
        Net { offset }
    }

    /// A fixed port of the interface, shifted.
    pub fn port(&self, fixed: u16) -> u16 {
        fixed + self.offset
    }

    /// `127.0.0.1:PORT` for a fixed port, shifted.
    pub fn addr(&self, fixed: u16) -> String {
        format!("{LOOPBACK}:{}", self.port(fixed))
    }

    /// The gateway's client-side listener (callers send here).
    pub fn gateway(&self) -> String {
        self.addr(super::GATEWAY_PORT)
    }

    pub fn admin(&self) -> String {
        self.addr(super::ADMIN_PORT)
    }

    pub fn carrier_a(&self) -> u16 {
        self.port(super::CARRIER_A_PORT)
    }

    pub fn carrier_b(&self) -> u16 {
        self.port(super::CARRIER_B_PORT)
    }

    pub fn uac(&self) -> u16 {
        self.port(super::UAC_PORT)
    }

    /// The relay's media port range (inclusive).
    pub fn media(&self) -> (u16, u16) {
        (self.port(MEDIA_FIRST), self.port(MEDIA_LAST))
    }
}

/// The dial plan one test runs, as written to its work directory.
#[derive(Clone, Debug)]
pub struct Plan {
    pub path: PathBuf,
    /// Some route has `mode: b2bua`: the B2BUA-only checks apply.
    pub b2bua: bool,
    /// Media relay range of this plan (inclusive).
    pub media: (u16, u16),
}

impl Plan {
    /// Prints (once per test) that B2BUA-only checks are skipped.
    pub fn note_skipped(&self, what: &str) {
        if !self.b2bua {
            eprintln!(
                "note: {} has no `mode: b2bua` route; skipped the B2BUA-only check: {what}",
                self.path.display()
            );
        }
    }
}

/// The plan for one test: `dialplans/loopback.yaml` (or the file named by
/// `CALLGATE_PEERS_DIALPLAN`), ports shifted by the net's offset, the
/// top-level `timers:` block replaced by `timers` when given. Written to
/// `work/plan.yaml` and accepted by `callgate check` (or the test fails).
pub fn test_plan(net: &Net, work: &Path, timers: Option<&str>) -> Plan {
    let src = match std::env::var("CALLGATE_PEERS_DIALPLAN") {
        Ok(v) if !v.trim().is_empty() => {
            let p = PathBuf::from(v.trim());
            let p = if p.is_absolute() {
                p
            } else {
                repo_root().join(p)
            };
            assert!(
                p.is_file(),
                "CALLGATE_PEERS_DIALPLAN={} is not a file",
                p.display()
            );
            p
        }
        _ => dialplan("loopback.yaml"),
    };
    let text =
        fs::read_to_string(&src).unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
    let b2bua = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .any(|l| l.trim().strip_prefix("mode:").map(str::trim) == Some("b2bua"));
    let mut out = shift_ports(&text, net.offset);
    if let Some(block) = timers {
        out = with_timers(&out, block);
    }
    let path = work.join("plan.yaml");
    fs::write(&path, &out).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    check_dialplan(&path);
    Plan {
        path,
        b2bua,
        media: net.media(),
    }
}

/// Moves the loopback plan's ports by `offset`: every `127.0.0.1:PORT` whose
/// PORT is one of the interface's, and the media range `20000-20999`.
pub fn shift_ports(yaml: &str, offset: u16) -> String {
    if offset == 0 {
        return yaml.to_string();
    }
    let needle = format!("{LOOPBACK}:");
    let mut out = String::with_capacity(yaml.len());
    let mut rest = yaml;
    while let Some(i) = rest.find(&needle) {
        let after = i + needle.len();
        out.push_str(&rest[..after]);
        let digits = rest[after..].bytes().take_while(u8::is_ascii_digit).count();
        let num = &rest[after..after + digits];
        match num.parse::<u16>() {
            Ok(p) if PLAN_PORTS.contains(&p) => out.push_str(&(p + offset).to_string()),
            _ => out.push_str(num),
        }
        rest = &rest[after + digits..];
    }
    out.push_str(rest);
    out.replace(
        &format!("{MEDIA_FIRST}-{MEDIA_LAST}"),
        &format!("{}-{}", MEDIA_FIRST + offset, MEDIA_LAST + offset),
    )
}

/// Replaces (or adds) the top-level `timers:` mapping of a YAML dial plan
/// with `block` (its keys, one per line, without the `timers:` line).
pub fn with_timers(yaml: &str, block: &str) -> String {
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
    out.push_str("# test-only timers\ntimers:\n");
    for l in block.lines().filter(|l| !l.trim().is_empty()) {
        out.push_str("  ");
        out.push_str(l.trim());
        out.push('\n');
    }
    out
}

/// Starts the gateway with `plan` on the net's ports.
pub fn start_gateway_net(plan: &Plan, work: &Path, net: &Net) -> Gateway {
    start_gateway_net_with(plan, work, net, &[])
}

/// [`start_gateway_net`] with extra `callgate run` arguments
/// (`--media-threads 2`).
pub fn start_gateway_net_with(plan: &Plan, work: &Path, net: &Net, args: &[&str]) -> Gateway {
    start_gateway_at_with(
        &plan.path,
        work,
        &[
            net.port(super::GATEWAY_PORT),
            net.port(super::GATEWAY_CARRIER_SIDE_PORT),
        ],
        &net.admin(),
        args,
    )
}

/// One media real-peer test's gateway, plan and work directory
/// (`tests/peers_media.rs`, `tests/peers_srtp.rs`; each adds its own
/// methods).
pub struct Setup {
    pub net: Net,
    pub plan: Plan,
    pub work: PathBuf,
    pub gw: Gateway,
}

impl Setup {
    /// baresip "a" (the caller) on its fixed ports, sending a `tone_hz`
    /// tone with `codecs`.
    pub fn baresip_a(
        &self,
        codecs: &super::baresip::BaresipCodecs,
        tone_hz: u32,
    ) -> super::baresip::Baresip {
        super::baresip::Baresip::start_with(
            &self.work,
            super::baresip::BaresipConf {
                name: "baresip_a".into(),
                user: "a".into(),
                sip_port: self.net.port(BARESIP_A_SIP_PORT),
                ctrl_port: self.net.port(BARESIP_A_CTRL_PORT),
                rtp_ports: (
                    self.net.port(BARESIP_A_RTP.0),
                    self.net.port(BARESIP_A_RTP.1),
                ),
                tone_hz,
            },
            codecs,
        )
    }

    /// Whether `port` is in the plan's media (relay) range.
    pub fn in_media_range(&self, port: u16) -> bool {
        (self.plan.media.0..=self.plan.media.1).contains(&port)
    }

    /// The relay port that sends to `rtp`: the source of the first datagram
    /// the test's socket got (at most 5 s; fails otherwise, with `ctx()`),
    /// which must be in the media range.
    pub fn first_relay_port(
        &self,
        rtp: &super::media::RtpEndpoint,
        ctx: &dyn Fn() -> String,
    ) -> u16 {
        let mut src = None;
        wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            src = rtp.first_source();
            src.is_some()
        });
        let src = src.unwrap_or_else(|| {
            panic!(
                "no RTP reached the test's socket :{} within 5 s of the answer; /calls: {:?}\n{}",
                rtp.port,
                self.gw.calls(),
                ctx()
            )
        });
        assert!(
            self.in_media_range(src),
            "RTP to :{} must come from the relay's range, came from :{src}\n{}",
            rtp.port,
            ctx()
        );
        src
    }
}

/// The test's plan with `options` added under a trunk or route (`(name,
/// line)`, e.g. `("carrier-a", "codecs: [PCMA]")`), checked, and the gateway
/// started on it; `None` (after a note naming `checks`, what is skipped)
/// when the plan has no B2BUA route: no media plane to test.
pub fn media_setup(test: &str, options: &[(&str, &str)], checks: &str) -> Option<Setup> {
    let net = Net::from_env();
    let work = super::work_dir(test);
    let plan = test_plan(&net, &work, None);
    if !plan.b2bua {
        plan.note_skipped(checks);
        return None;
    }
    let mut yaml = fs::read_to_string(&plan.path).expect("read the test plan");
    for (name, line) in options {
        yaml = with_option(&yaml, name, line);
    }
    fs::write(&plan.path, &yaml).expect("write the test plan");
    check_dialplan(&plan.path);
    let gw = start_gateway_net(&plan, &work, &net);
    Some(Setup {
        net,
        plan,
        work,
        gw,
    })
}

/// Adds `line` to the mapping of the list item `- name: NAME` (a trunk
/// or a route), indented like its keys. Fails if there is no such item.
pub fn with_option(yaml: &str, name: &str, line: &str) -> String {
    let mut out = String::new();
    let mut found = false;
    for l in yaml.lines() {
        out.push_str(l);
        out.push('\n');
        let t = l.trim_start();
        if !found && t.strip_prefix("- name:").map(str::trim) == Some(name) {
            out.push_str(&" ".repeat(l.len() - t.len() + 2));
            out.push_str(line);
            out.push('\n');
            found = true;
        }
    }
    assert!(
        found,
        "the test plan has no `- name: {name}` to add {line:?} to"
    );
    out
}

// ------------------------------------------------------ after-call checks ---

/// Local ports of the UDP sockets process `pid` holds (its fds matched to
/// /proc/net/udp{,6} by inode).
pub fn udp_ports_of_pid(pid: u32) -> Vec<u16> {
    let mut inodes = HashSet::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(target) = fs::read_link(e.path()) {
                let t = target.to_string_lossy();
                if let Some(n) = t
                    .strip_prefix("socket:[")
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    inodes.insert(n);
                }
            }
        }
    }
    let mut out = Vec::new();
    for f in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 {
                continue;
            }
            let Ok(inode) = cols[9].parse::<u64>() else {
                continue;
            };
            if !inodes.contains(&inode) {
                continue;
            }
            if let Some((_, port_hex)) = cols[1].rsplit_once(':')
                && let Ok(port) = u16::from_str_radix(port_hex, 16)
            {
                out.push(port);
            }
        }
    }
    out.sort_unstable();
    out
}

/// Every UDP port in `first..=last` bound by any process (from /proc/net).
pub fn udp_ports_bound_in(first: u16, last: u16) -> Vec<u16> {
    let mut out = Vec::new();
    for f in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 2 {
                continue;
            }
            if let Some((_, port_hex)) = cols[1].rsplit_once(':')
                && let Ok(port) = u16::from_str_radix(port_hex, 16)
                && (first..=last).contains(&port)
            {
                out.push(port);
            }
        }
    }
    out.sort_unstable();
    out
}

impl Gateway {
    /// `GET /calls`: the JSON array of calls in progress.
    pub fn calls(&self) -> Result<Vec<serde_json::Value>, String> {
        let r = self.get("/calls").map_err(|e| format!("GET /calls: {e}"))?;
        if r.status != 200 {
            return Err(format!("GET /calls answered HTTP {}: {}", r.status, r.body));
        }
        match serde_json::from_str::<serde_json::Value>(&r.body) {
            Ok(serde_json::Value::Array(a)) => Ok(a),
            Ok(other) => Err(format!("GET /calls is not a JSON array: {other}")),
            Err(e) => Err(format!("GET /calls is not JSON ({e}): {}", r.body)),
        }
    }

    /// The gateway's own UDP sockets in the media range `first..=last`.
    pub fn media_ports_bound(&self, first: u16, last: u16) -> Vec<u16> {
        udp_ports_of_pid(self.peer.pid())
            .into_iter()
            .filter(|p| (first..=last).contains(p))
            .collect()
    }
}

/// After every B2BUA test, with the gateway still running: `GET /calls` is
/// `[]` and no UDP port of the plan's media range is bound (by the gateway
/// or anyone else), each within `bound` (a call's last transactions may
/// take a moment to finish). Skipped, with a note, for a non-B2BUA plan.
pub fn assert_gateway_clean(gw: &mut Gateway, plan: &Plan, bound: Duration, ctx: &str) {
    gw.assert_alive(&format!("after the calls ({ctx})"));
    if !plan.b2bua {
        plan.note_skipped("/calls is [] and no media port is left bound");
        return;
    }
    let mut last = Err(String::from("not asked yet"));
    let empty = wait_until(bound, Duration::from_millis(100), || {
        last = gw.calls();
        matches!(&last, Ok(a) if a.is_empty())
    });
    assert!(
        empty,
        "{ctx}: GET /calls must be [] once every call has ended (waited {bound:?}); last: {}\n\
         --- callgate log (tail) ---\n{}",
        match &last {
            Ok(a) => serde_json::to_string_pretty(a).unwrap_or_default(),
            Err(e) => e.clone(),
        },
        gw.log_tail(3000)
    );
    let (first, lastp) = plan.media;
    // Any process's socket counts, unless the range overlaps the kernel's
    // ephemeral ports (a shifted range): then only the gateway's own.
    let any_process = !overlaps_ephemeral(first, lastp);
    let mut bound_ports = Vec::new();
    let free = wait_until(bound, Duration::from_millis(100), || {
        bound_ports = if any_process {
            udp_ports_bound_in(first, lastp)
        } else {
            gw.media_ports_bound(first, lastp)
        };
        bound_ports.is_empty()
    });
    assert!(
        free,
        "{ctx}: no UDP port of the media range {first}-{lastp} may stay bound once every call \
         has ended (waited {bound:?}); still bound: {bound_ports:?} (of them the gateway's own: \
         {:?}; see `ss -uanp`)\n--- callgate log (tail) ---\n{}",
        gw.media_ports_bound(first, lastp),
        gw.log_tail(3000)
    );
}

/// Whether `first..=last` overlaps the kernel's ephemeral port range.
fn overlaps_ephemeral(first: u16, last: u16) -> bool {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = range
        .split_whitespace()
        .filter_map(|v| v.parse::<u16>().ok());
    match (it.next(), it.next()) {
        (Some(lo), Some(hi)) => first <= hi && last >= lo,
        _ => true,
    }
}

/// The SDP body of a SIP message (after the blank line), if any.
pub fn sdp_body(msg: &str) -> Option<&str> {
    let body = msg
        .split_once("\r\n\r\n")
        .or_else(|| msg.split_once("\n\n"))?
        .1;
    body.contains("m=").then_some(body)
}

/// The audio endpoint an SDP offers: (`c=` address, `m=audio` port); the
/// media-level `c=` wins over the session-level one.
pub fn sdp_audio_endpoint(sdp: &str) -> Option<(String, u16)> {
    let mut session_c = None;
    let mut media_c = None;
    let mut port = None;
    let mut in_audio = false;
    for l in sdp.lines().map(str::trim) {
        if let Some(m) = l.strip_prefix("m=") {
            in_audio = m.starts_with("audio ");
            if in_audio && port.is_none() {
                port = m.split_whitespace().nth(1).and_then(|p| p.parse().ok());
            }
        } else if let Some(c) = l.strip_prefix("c=") {
            let addr = c.split_whitespace().nth(2).map(str::to_string);
            if port.is_none() && !in_audio {
                session_c = addr;
            } else if in_audio && media_c.is_none() {
                media_c = addr;
            }
        }
    }
    Some((media_c.or(session_c)?, port?))
}

/// The direction attribute of the audio stream (`sendrecv` when none).
pub fn sdp_direction(sdp: &str) -> &'static str {
    for d in ["sendonly", "recvonly", "inactive", "sendrecv"] {
        if sdp.lines().any(|l| l.trim() == format!("a={d}")) {
            return d;
        }
    }
    "sendrecv"
}

/// Fails unless `sdp` puts audio on `ip` and a port of `media`.
pub fn assert_sdp_anchored(sdp: &str, ip: &str, media: (u16, u16), what: &str, ctx: &str) {
    let ep = sdp_audio_endpoint(sdp);
    assert!(
        matches!(&ep, Some((a, p)) if a == ip && (media.0..=media.1).contains(p)),
        "{what}: the SDP must offer the gateway's relay ({ip}, a port in {}-{}), got {ep:?}:\n\
         {sdp}\n{ctx}",
        media.0,
        media.1
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_moves_interface_ports_only() {
        let y = "admin: 127.0.0.1:9090\n    udp: 127.0.0.1:5060\n    address: 127.0.0.1:5070\n\
                 x: 127.0.0.1:5061\nmedia:\n  ports: 20000-20999\n";
        let s = shift_ports(y, 20000);
        assert!(s.contains("127.0.0.1:29090"));
        assert!(s.contains("127.0.0.1:25060"));
        assert!(s.contains("127.0.0.1:25070"));
        assert!(s.contains("127.0.0.1:5061"));
        assert!(s.contains("ports: 40000-40999"));
        assert_eq!(shift_ports(y, 0), y);
    }

    #[test]
    fn timers_block_replaced() {
        let y = "a: 1\ntimers:\n  t1_ms: 500\nb: 2\n";
        let out = with_timers(y, "no_answer_s: 2\n");
        assert_eq!(
            out,
            "a: 1\nb: 2\n# test-only timers\ntimers:\n  no_answer_s: 2\n"
        );
    }

    #[test]
    fn sdp_helpers() {
        let msg = "INVITE sip:x SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\nc=IN IP4 10.0.0.1\r\n\
                   t=0 0\r\nm=audio 20002 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\n";
        let sdp = sdp_body(msg).unwrap();
        assert_eq!(
            sdp_audio_endpoint(sdp),
            Some(("127.0.0.1".to_string(), 20002))
        );
        assert_eq!(sdp_direction(sdp), "sendonly");
        assert!(sdp_body("ACK sip:x SIP/2.0\r\nCSeq: 1 ACK\r\n\r\n").is_none());
    }
}
