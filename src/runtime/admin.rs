//! Admin HTTP: `GET /healthz` (200 while serving, 503 while draining),
//! `GET /metrics` (Prometheus text via `metrics-exporter-prometheus`) and
//! `GET /calls` (JSON: the B2BUA calls of every shard with their media counters).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::b2bua::CallInfo;
use crate::media::DirectionStats;
use crate::proxy::{METHODS, ProxyStats};

use super::shard::Shards;

/// Maps the monotonic clock the core uses to wall time: one (Instant,
/// SystemTime) pair read together at startup.
#[derive(Clone, Copy, Debug)]
pub(super) struct WallClock {
    instant: Instant,
    system: SystemTime,
}

impl WallClock {
    /// Read both clocks now.
    pub fn now() -> WallClock {
        WallClock {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }

    /// The wall time of `at`.
    pub fn wall(&self, at: Instant) -> SystemTime {
        if at >= self.instant {
            self.system + (at - self.instant)
        } else {
            self.system - (self.instant - at)
        }
    }
}

/// `t` as an RFC 3339 UTC timestamp with milliseconds (`2026-01-31T23:59:59.250Z`).
pub(super) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to civil date (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// State the admin endpoints read.
pub(super) struct AdminState {
    stats: Vec<Arc<ProxyStats>>,
    shards: Shards,
    clock: WallClock,
    /// Set once SIGTERM started draining.
    pub draining: AtomicBool,
    prometheus: Option<PrometheusHandle>,
}

impl AdminState {
    /// Install the Prometheus recorder (once per process) and keep the shard
    /// stats, the shards (calls, media) and the startup clock pair.
    pub fn new(stats: Vec<Arc<ProxyStats>>, shards: Shards, clock: WallClock) -> AdminState {
        let prometheus = PrometheusBuilder::new().install_recorder().ok();
        AdminState {
            stats,
            shards,
            clock,
            draining: AtomicBool::new(false),
            prometheus,
        }
    }

    fn sum(&self, f: impl Fn(&ProxyStats) -> u64) -> u64 {
        self.stats.iter().map(|s| f(s)).sum()
    }

    /// Publish the shard counters to the recorder and render them.
    pub fn render_metrics(&self) -> String {
        for (i, m) in METHODS.iter().enumerate() {
            let inc = self.sum(|s| ProxyStats::get(&s.requests_in[i]));
            let out = self.sum(|s| ProxyStats::get(&s.requests_out[i]));
            metrics::counter!("callgate_sip_requests_total", "direction" => "in", "method" => *m)
                .absolute(inc);
            metrics::counter!("callgate_sip_requests_total", "direction" => "out", "method" => *m)
                .absolute(out);
        }
        for class in 1..=6usize {
            let label = format!("{class}xx");
            let inc = self.sum(|s| ProxyStats::get(&s.responses_in[class]));
            let out = self.sum(|s| ProxyStats::get(&s.responses_out[class]));
            metrics::counter!("callgate_sip_responses_total", "direction" => "in", "class" => label.clone()).absolute(inc);
            metrics::counter!("callgate_sip_responses_total", "direction" => "out", "class" => label).absolute(out);
        }
        metrics::counter!("callgate_sip_parse_errors_total")
            .absolute(self.sum(|s| ProxyStats::get(&s.parse_errors)));
        metrics::counter!("callgate_calls_total").absolute(self.sum(|s| ProxyStats::get(&s.calls)));
        metrics::counter!("callgate_internal_errors_total")
            .absolute(self.sum(|s| ProxyStats::get(&s.internal_errors)));
        metrics::counter!("callgate_failovers_total")
            .absolute(self.sum(|s| ProxyStats::get(&s.failovers)));
        metrics::gauge!("callgate_active_transactions").set(self.active_transactions() as f64);
        metrics::gauge!("callgate_active_dialogs")
            .set(self.sum(|s| ProxyStats::get(&s.active_dialogs)) as f64);
        self.publish_call_metrics();
        metrics::gauge!("callgate_draining").set(if self.draining.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        });
        self.prometheus
            .as_ref()
            .map(PrometheusHandle::render)
            .unwrap_or_default()
    }

    /// B2BUA call, per-trunk and media plane metrics.
    fn publish_call_metrics(&self) {
        metrics::gauge!("callgate_active_calls").set(self.shards.active_calls() as f64);
        for (trunk, c) in self.shards.trunk_counters() {
            metrics::counter!("callgate_trunk_attempts_total", "trunk" => trunk.clone())
                .absolute(c.attempts);
            metrics::counter!("callgate_trunk_answers_total", "trunk" => trunk.clone())
                .absolute(c.answers);
            metrics::counter!("callgate_trunk_failures_total", "trunk" => trunk)
                .absolute(c.failures);
        }
        let m = self.shards.media_counters();
        let t = &m.totals;
        metrics::counter!("callgate_rtp_packets_relayed_total").absolute(t.rtp_packets);
        metrics::counter!("callgate_rtp_bytes_relayed_total").absolute(t.rtp_bytes);
        metrics::counter!("callgate_rtcp_packets_relayed_total").absolute(t.rtcp_packets);
        for (reason, n) in [
            ("malformed", t.dropped_malformed),
            ("source", t.dropped_source),
            ("payload_type", t.dropped_payload_type),
            ("no_destination", t.dropped_no_destination),
            ("unknown_port", t.dropped_unknown_port),
            ("srtp", t.dropped_srtp),
        ] {
            metrics::counter!("callgate_media_packets_dropped_total", "reason" => reason)
                .absolute(n);
        }
        metrics::gauge!("callgate_media_ports_in_use").set(m.ports_in_use as f64);
        metrics::counter!("callgate_media_bind_errors_total").absolute(m.bind_errors);
        metrics::counter!("callgate_media_send_errors_total").absolute(m.send_errors);
        metrics::counter!("callgate_media_commands_ignored_total").absolute(t.ignored_commands);
    }

    /// `GET /calls`: one JSON object per B2BUA call of every shard.
    pub fn render_calls(&self) -> String {
        let now = Instant::now();
        let calls: Vec<serde_json::Value> = self
            .shards
            .calls()
            .into_iter()
            .map(|(shard, call, media)| call_json(&self.clock, now, shard, &call, media))
            .collect();
        let mut body = serde_json::Value::Array(calls).to_string();
        body.push('\n');
        body
    }

    /// Proxied requests still waiting for a final answer, across shards.
    pub fn pending_requests(&self) -> u64 {
        self.sum(|s| ProxyStats::get(&s.pending_requests))
    }

    /// Transactions alive across shards.
    pub fn active_transactions(&self) -> u64 {
        self.sum(|s| ProxyStats::get(&s.active_transactions))
    }
}

/// Bind the admin address and serve requests until the process exits.
pub(super) async fn start(addr: SocketAddr, state: Arc<AdminState>) -> std::io::Result<()> {
    let lis = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("bind admin {addr}: {e}")))?;
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = lis.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(1024);
                let mut chunk = [0u8; 1024];
                // Read the request head; bounded in size and time.
                let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    while buf.len() < 8192 && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let line = buf.split(|&b| b == b'\r').next().unwrap_or(&[]);
                let (status, ctype, body) = respond(&state, line);
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(())
}

fn respond(state: &AdminState, request_line: &[u8]) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    if method != b"GET" {
        return ("405 Method Not Allowed", "text/plain", "only GET\n".into());
    }
    match path {
        b"/healthz" if state.draining.load(Ordering::Relaxed) => {
            ("503 Service Unavailable", "text/plain", "draining\n".into())
        }
        b"/healthz" => ("200 OK", "text/plain", "ok\n".into()),
        b"/calls" => ("200 OK", "application/json", state.render_calls()),
        b"/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4",
            state.render_metrics(),
        ),
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}

/// One call of `/calls`. `duration_s` counts from the INVITE (`started`);
/// `a_to_b`/`b_to_a` are RTP counters of the media relay, `null` when the
/// call has no anchored media session.
fn call_json(
    clock: &WallClock,
    now: Instant,
    shard: usize,
    call: &CallInfo,
    media: Option<[DirectionStats; 2]>,
) -> serde_json::Value {
    use serde_json::json;
    let legs: Vec<_> = call
        .legs
        .iter()
        .map(|l| {
            json!({
                "call_id": l.call_id,
                "peer": l.peer,
                "via": l.via,
                "codecs": l.codecs,
                "media_port": l.media_port,
            })
        })
        .collect();
    let dir = |d: &DirectionStats| {
        json!({
            "packets": d.rtp_packets,
            "bytes": d.rtp_bytes,
            "rtcp_packets": d.rtcp_packets,
            "dropped": d.dropped_malformed + d.dropped_source + d.dropped_payload_type
                + d.dropped_no_destination + d.dropped_srtp,
        })
    };
    let duration = now.saturating_duration_since(call.started).as_millis() as f64 / 1000.0;
    json!({
        "id": call.id,
        "shard": shard,
        "state": call.state,
        "media_mode": call.media_mode,
        "legs": legs,
        "media_session": call.media_session,
        "a_to_b": media.as_ref().map(|m| dir(&m[0])),
        "b_to_a": media.as_ref().map(|m| dir(&m[1])),
        "started": rfc3339(clock.wall(call.started)),
        "answered": call.answered.map(|a| rfc3339(clock.wall(a))),
        "duration_s": duration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b2bua::LegInfo;

    #[test]
    fn rfc3339_dates() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(s * 1000 + ms);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_709_251_199, 999)), "2024-02-29T23:59:59.999Z");
        assert_eq!(rfc3339(at(4_102_444_800, 0)), "2100-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn wall_clock_maps_both_ways() {
        let c = WallClock::now();
        let d = Duration::from_secs(90);
        assert_eq!(c.wall(c.instant + d), c.system + d);
        if let Some(before) = c.instant.checked_sub(d) {
            assert_eq!(c.wall(before), c.system - d);
        }
    }

    #[test]
    fn call_json_fields() {
        let clock = WallClock::now();
        let leg = |id: &str, port| LegInfo {
            call_id: id.into(),
            peer: "sip:+4420@example.com".into(),
            via: "carrier-a".into(),
            codecs: vec!["PCMU/8000".into()],
            media_port: port,
        };
        let call = CallInfo {
            id: 4,
            state: "confirmed",
            media_mode: "anchor",
            legs: [leg("a@x", Some(30000)), leg("b@y", None)],
            media_session: Some(9),
            started: clock.instant,
            answered: Some(clock.instant + Duration::from_secs(2)),
        };
        let ab = DirectionStats {
            rtp_packets: 10,
            rtp_bytes: 1720,
            dropped_source: 1,
            ..DirectionStats::default()
        };
        let now = clock.instant + Duration::from_millis(12_345);
        let v = call_json(&clock, now, 1, &call, Some([ab, DirectionStats::default()]));
        assert_eq!(v["id"], 4);
        assert_eq!(v["shard"], 1);
        assert_eq!(v["state"], "confirmed");
        assert_eq!(v["legs"][0]["media_port"], 30000);
        assert!(v["legs"][1]["media_port"].is_null());
        assert_eq!(v["legs"][1]["call_id"], "b@y");
        assert_eq!(v["legs"][0]["codecs"][0], "PCMU/8000");
        assert_eq!(v["a_to_b"]["packets"], 10);
        assert_eq!(v["a_to_b"]["bytes"], 1720);
        assert_eq!(v["a_to_b"]["dropped"], 1);
        assert_eq!(v["b_to_a"]["packets"], 0);
        assert_eq!(v["duration_s"], 12.345);
        assert_eq!(v["started"], rfc3339(clock.system));
        assert_eq!(
            v["answered"],
            rfc3339(clock.system + Duration::from_secs(2))
        );
        let bypass = CallInfo {
            media_session: None,
            ..call
        };
        let v = call_json(&clock, now, 0, &bypass, None);
        assert!(v["a_to_b"].is_null() && v["media_session"].is_null());
    }
}
