//! baresip (Debian's `baresip`, v1.0) as a headless real-peer user agent.
//!
//! Each instance gets its own config directory under the test's work
//! directory with a generated `config` and `accounts`:
//!
//! * SIP on 127.0.0.1:`sip_port` (baresip also opens TLS on `sip_port`+1),
//!   media advertised on 127.0.0.1 (`net_interface`), RTP from its own port
//!   range, G.711 only unless started with other [`BaresipCodecs`] (e.g.
//!   Opus only, module `opus`);
//! * audio source `ausine` (a sine of the configured frequency; ausine only
//!   runs at 48 kHz stereo, baresip resamples to the codec), audio player
//!   `aubridge` (a null sink: no sound card needed);
//! * module `sndfile` records the decoded received audio of every call to
//!   `rec/dump-*-dec.wav` (and what it sent to `*-enc.wav`), `rec/` given
//!   relative to the config directory (see [`config_text`]);
//! * one account `<sip:USER@127.0.0.1:PORT>;regint=0;answermode=auto`: no
//!   registration, incoming calls answered at once;
//! * module `ctrl_tcp` on 127.0.0.1:`ctrl_port`: the test sends JSON commands
//!   (`dial`, `hangup`, `sndcode` for DTMF, which module `menu` provides) as
//!   netstrings and reads baresip's events (`CALL_*`, `CALL_DTMF_START` for
//!   digits received).
//!
//! The process runs in its own process group and is stopped by PID
//! ([`Peer`]); stdout/stderr go to `NAME.log` in the work directory.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use super::{
    LOOPBACK, Peer, assert_ports_free, require_tool, tcp_port_listening, udp_port_bound, wait_until,
};

/// Where Debian's baresip keeps its modules.
pub const BARESIP_MODULES: &str = "/usr/lib/baresip/modules";

/// One baresip instance's settings.
#[derive(Debug, Clone)]
pub struct BaresipConf {
    /// Instance name (log file, config directory).
    pub name: String,
    /// SIP user of its account (`sip:USER@127.0.0.1:PORT`).
    pub user: String,
    pub sip_port: u16,
    pub ctrl_port: u16,
    /// RTP port range (inclusive).
    pub rtp_ports: (u16, u16),
    /// Frequency of the sine it sends (Hz, 10-20000).
    pub tone_hz: u32,
}

/// What a test may change beyond [`BaresipConf`]: the codecs of the account
/// and the codec modules loaded. The default is what [`Baresip::start`]
/// runs: G.711 only (`pcmu,pcma`, module `g711`).
#[derive(Debug, Clone)]
pub struct BaresipCodecs {
    /// The account's `audio_codecs` parameter, e.g. `pcmu,pcma` or
    /// `opus/48000/2` (baresip offers exactly these, in this order).
    pub audio_codecs: String,
    /// Modules to load (`g711`, `opus`, `g722`, `srtp`), without `.so`.
    pub modules: Vec<String>,
    /// More account parameters, e.g. `;mediaenc=srtp-mand` (empty: none).
    pub account_params: String,
}

impl Default for BaresipCodecs {
    fn default() -> Self {
        BaresipCodecs {
            audio_codecs: "pcmu,pcma".into(),
            modules: vec!["g711".into()],
            account_params: String::new(),
        }
    }
}

impl BaresipCodecs {
    /// Opus only (Debian's baresip-core ships the `opus` module):
    /// `opus/48000/2`, baresip's default Opus settings.
    pub fn opus_only() -> Self {
        BaresipCodecs {
            audio_codecs: "opus/48000/2".into(),
            modules: vec!["opus".into(), "g711".into()],
            account_params: String::new(),
        }
    }

    /// PCMU only.
    pub fn pcmu_only() -> Self {
        BaresipCodecs {
            audio_codecs: "pcmu".into(),
            modules: vec!["g711".into()],
            account_params: String::new(),
        }
    }

    /// `self` with media encryption `mediaenc` required (`srtp-mand`: SDES,
    /// RTP/SAVP with a=crypto; `dtls_srtp`: DTLS-SRTP), loading its module
    /// (`srtp` or `dtls_srtp`).
    pub fn with_mediaenc(mut self, mediaenc: &str) -> Self {
        let module = if mediaenc.starts_with("dtls") {
            "dtls_srtp"
        } else {
            "srtp"
        };
        self.modules.push(module.into());
        self.account_params = format!(";mediaenc={mediaenc}");
        self
    }
}

/// A running baresip.
pub struct Baresip {
    pub conf: BaresipConf,
    pub peer: Peer,
    pub dir: PathBuf,
    ctrl: TcpStream,
    events: Arc<Mutex<Vec<Value>>>,
    token: u64,
}

impl Baresip {
    /// Writes the config under `work/NAME.conf/`, starts `baresip -f DIR`
    /// and waits (at most 10 s) until its SIP port is bound and its control
    /// port answers. A missing baresip fails the test (`make deps`).
    pub fn start(work: &Path, conf: BaresipConf) -> Baresip {
        Baresip::start_with(work, conf, &BaresipCodecs::default())
    }

    /// [`Baresip::start`] with other codecs.
    pub fn start_with(work: &Path, conf: BaresipConf, codecs: &BaresipCodecs) -> Baresip {
        let bin = require_tool("baresip");
        for m in &codecs.modules {
            assert!(
                Path::new(BARESIP_MODULES).join(format!("{m}.so")).is_file(),
                "baresip module {m} must be in {BARESIP_MODULES} (Debian package baresip-core; \
                 run `make deps`)"
            );
        }
        assert!(
            Path::new(BARESIP_MODULES).join("ausine.so").is_file()
                && Path::new(BARESIP_MODULES).join("sndfile.so").is_file()
                && Path::new(BARESIP_MODULES).join("ctrl_tcp.so").is_file(),
            "baresip modules ausine, sndfile and ctrl_tcp must be in {BARESIP_MODULES} \
             (Debian package baresip-core; run `make deps`)"
        );
        assert_ports_free(&[conf.sip_port], &[conf.sip_port, conf.ctrl_port]);
        let dir = work.join(format!("{}.conf", conf.name));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("rec")).expect("create baresip config dir");
        fs::write(dir.join("config"), config_text(&conf, codecs)).expect("write baresip config");
        fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{}@{LOOPBACK}:{}>;regint=0;answermode=auto;audio_codecs={}{}\n",
                conf.user, conf.sip_port, codecs.audio_codecs, codecs.account_params
            ),
        )
        .expect("write baresip accounts");
        fs::write(dir.join("contacts"), "").expect("write baresip contacts");
        let log = work.join(format!("{}.log", conf.name));
        let mut cmd = Command::new(bin);
        cmd.arg("-f").arg(&dir).current_dir(&dir);
        let mut peer = Peer::spawn(&format!("baresip {}", conf.name), &mut cmd, &log);
        let up = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            peer.try_exit().is_some()
                || (udp_port_bound(conf.sip_port) && tcp_port_listening(conf.ctrl_port))
        });
        if let Some(st) = peer.try_exit() {
            panic!(
                "baresip {} exited during start-up ({st}); log:\n{}",
                conf.name,
                peer.log_tail(3000)
            );
        }
        assert!(
            up,
            "baresip {} did not bind SIP 127.0.0.1:{} and control port {} within 10 s; log:\n{}",
            conf.name,
            conf.sip_port,
            conf.ctrl_port,
            peer.log_tail(3000)
        );
        let addr: SocketAddr = format!("{LOOPBACK}:{}", conf.ctrl_port).parse().unwrap();
        let ctrl = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap_or_else(|e| {
            panic!(
                "cannot connect to baresip {} ctrl_tcp {addr}: {e}",
                conf.name
            )
        });
        ctrl.set_write_timeout(Some(Duration::from_secs(3))).ok();
        let events = Arc::new(Mutex::new(Vec::new()));
        let reader = ctrl.try_clone().expect("clone ctrl stream");
        let sink = events.clone();
        thread::spawn(move || read_netstrings(reader, sink));
        Baresip {
            conf,
            peer,
            dir,
            ctrl,
            events,
            token: 0,
        }
    }

    /// This UA's own SIP URI.
    pub fn uri(&self) -> String {
        format!("sip:{}@{LOOPBACK}:{}", self.conf.user, self.conf.sip_port)
    }

    /// Sends a `ctrl_tcp` command; waits (at most 5 s) for its response and
    /// fails the test unless it is `"ok": true`.
    pub fn command(&mut self, command: &str, params: &str) -> Value {
        self.token += 1;
        let token = format!("t{}", self.token);
        let msg = serde_json::json!({"command": command, "params": params, "token": token});
        let body = msg.to_string();
        let frame = format!("{}:{body},", body.len());
        self.ctrl
            .write_all(frame.as_bytes())
            .unwrap_or_else(|e| panic!("baresip {}: cannot send {body}: {e}", self.conf.name));
        let mut resp = None;
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            resp = self
                .events
                .lock()
                .unwrap()
                .iter()
                .find(|v| v["response"] == true && v["token"] == token.as_str())
                .cloned();
            resp.is_some()
        });
        let resp = resp.unwrap_or_else(|| {
            panic!(
                "baresip {}: no response to {body} within 5 s; log:\n{}",
                self.conf.name,
                self.peer.log_tail(2000)
            )
        });
        assert!(
            resp["ok"] == true,
            "baresip {}: command {body} failed: {resp}; log:\n{}",
            self.conf.name,
            self.peer.log_tail(2000)
        );
        resp
    }

    /// Calls `uri` (`dial`).
    pub fn dial(&mut self, uri: &str) {
        self.command("dial", uri);
    }

    /// Hangs up the current call (`hangup`).
    pub fn hangup(&mut self) {
        self.command("hangup", "");
    }

    /// Sends `digits` as DTMF in the current call, one `sndcode` command
    /// (module `menu`) per digit, `gap` apart. baresip 1.0 plays each as an
    /// RFC 4733 event of about 180 ms (9 packets and 3 end packets), so a
    /// gap over 200 ms leaves a pause between digits, as a person keying
    /// them would; `sndcode` with several digits would send them back to
    /// back with no pause at all.
    pub fn send_digits(&mut self, digits: &str, gap: Duration) {
        for (i, d) in digits.chars().enumerate() {
            if i > 0 {
                thread::sleep(gap);
            }
            self.command("sndcode", &d.to_string());
        }
    }

    /// Digits baresip reports it received in the call (`CALL_DTMF_START`
    /// events, from RFC 4733 telephone-events or SIP INFO), in order.
    pub fn dtmf_received(&self) -> String {
        self.events()
            .iter()
            .filter(|v| v["type"] == "CALL_DTMF_START")
            .filter_map(|v| v["param"].as_str().and_then(|p| p.chars().next()))
            .collect()
    }

    /// The events (`"event": true`) received so far.
    pub fn events(&self) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["event"] == true)
            .cloned()
            .collect()
    }

    /// Event types received so far, in order (for messages).
    pub fn event_types(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|v| v["type"].as_str().map(str::to_string))
            .collect()
    }

    /// Waits at most `bound` for an event of type `kind` (e.g.
    /// `CALL_ESTABLISHED`, `CALL_CLOSED`); returns it.
    pub fn wait_event(&self, kind: &str, bound: Duration) -> Option<Value> {
        let mut found = None;
        wait_until(bound, Duration::from_millis(20), || {
            found = self.events().into_iter().find(|v| v["type"] == kind);
            found.is_some()
        });
        found
    }

    /// Recordings of the received (decoded) audio, oldest first.
    pub fn received_recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(self.dir.join("rec"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Where baresip says the incoming RTP comes from (`ip:port`), from its
    /// log line `stream: incoming rtp for 'audio' established, receiving
    /// from ADDR`.
    pub fn rtp_source(&self) -> Option<String> {
        let log = fs::read_to_string(self.peer.log_path()).ok()?;
        log.lines()
            .filter_map(|l| l.split("receiving from ").nth(1))
            .map(|a| a.trim().to_string())
            .next_back()
    }

    pub fn log_tail(&self, max: usize) -> String {
        // baresip rewrites a status line (`[0:00:03] audio=.. (bit/s)`, ended
        // by CR) many times a second: drop those
        let text = fs::read_to_string(self.peer.log_path()).unwrap_or_default();
        let kept: String = text
            .split(['\r', '\n'])
            .map(|l| l.rsplit("(bit/s)").next().unwrap_or(l).trim())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let start = kept.len().saturating_sub(max);
        let start = (start..kept.len())
            .find(|&i| kept.is_char_boundary(i))
            .unwrap_or(kept.len());
        kept[start..].to_string()
    }

    /// A paragraph for assertion messages: events and the log's tail.
    pub fn summary(&self) -> String {
        format!(
            "baresip {} ({}): events {:?}\n--- log (tail) ---\n{}",
            self.conf.name,
            self.uri(),
            self.event_types(),
            self.log_tail(2500)
        )
    }

    /// Stops baresip (SIGTERM, SIGKILL after 5 s).
    pub fn stop(&mut self) {
        let _ = self.ctrl.shutdown(Shutdown::Both);
        self.peer.stop(Duration::from_secs(5));
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.ctrl.shutdown(Shutdown::Both);
    }
}

/// The config file. `snd_path` is relative (baresip runs in its config
/// directory): baresip 1.0's `sndfile` builds each recording's path in a
/// 128-byte buffer and silently cuts longer ones, so an absolute path under a
/// deep work directory made both recordings one truncated file.
fn config_text(c: &BaresipConf, codecs: &BaresipCodecs) -> String {
    let modules: String = codecs
        .modules
        .iter()
        .map(|m| format!("module\t\t\t{m}.so\n"))
        .collect();
    format!(
        "# generated by tests/support/baresip.rs\n\
         poll_method\t\tepoll\n\
         sip_listen\t\t{LOOPBACK}:{sip}\n\
         net_interface\t\t{LOOPBACK}\n\
         call_local_timeout\t120\n\
         call_max_calls\t\t4\n\
         audio_player\t\taubridge,{name}-sink\n\
         audio_alert\t\taubridge,{name}-alert\n\
         audio_source\t\tausine,{tone}\n\
         ausrc_srate\t\t48000\n\
         ausrc_channels\t\t2\n\
         audio_buffer\t\t20-160\n\
         rtp_ports\t\t{r0}-{r1}\n\
         rtcp_mux\t\tno\n\
         jitter_buffer_delay\t5-10\n\
         rtp_stats\t\tno\n\
         module_path\t\t{BARESIP_MODULES}\n\
         {modules}\
         module\t\t\tausine.so\n\
         module\t\t\taubridge.so\n\
         module\t\t\tsndfile.so\n\
         module_app\t\taccount.so\n\
         module_app\t\tmenu.so\n\
         module_app\t\tctrl_tcp.so\n\
         ctrl_tcp_listen\t\t{LOOPBACK}:{ctrl}\n\
         snd_path\t\trec\n",
        sip = c.sip_port,
        name = c.name,
        tone = c.tone_hz,
        r0 = c.rtp_ports.0,
        r1 = c.rtp_ports.1,
        ctrl = c.ctrl_port,
    )
}

/// Reads `len:json,` netstrings until the stream closes.
fn read_netstrings(mut s: TcpStream, sink: Arc<Mutex<Vec<Value>>>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while let Some(colon) = buf.iter().position(|&b| b == b':') {
            let Some(len) = std::str::from_utf8(&buf[..colon])
                .ok()
                .and_then(|l| l.trim().parse::<usize>().ok())
            else {
                // out of sync: drop everything seen so far
                buf.clear();
                break;
            };
            if buf.len() < colon + 1 + len + 1 {
                break;
            }
            let body = &buf[colon + 1..colon + 1 + len];
            if let Ok(v) = serde_json::from_slice::<Value>(body) {
                sink.lock().unwrap().push(v);
            }
            buf.drain(..colon + 1 + len + 1);
        }
    }
}
