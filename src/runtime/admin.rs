//! Admin HTTP: `GET /healthz` (200 while serving, 503 while draining) and
//! `GET /metrics` (Prometheus text via `metrics-exporter-prometheus`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proxy::{METHODS, ProxyStats};

/// State the admin endpoints read.
pub(super) struct AdminState {
    stats: Vec<Arc<ProxyStats>>,
    /// Set once SIGTERM started draining.
    pub draining: AtomicBool,
    prometheus: Option<PrometheusHandle>,
}

impl AdminState {
    /// Install the Prometheus recorder (once per process) and keep the shard stats.
    pub fn new(stats: Vec<Arc<ProxyStats>>) -> AdminState {
        let prometheus = PrometheusBuilder::new().install_recorder().ok();
        AdminState {
            stats,
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
        b"/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4",
            state.render_metrics(),
        ),
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}
