//! Signals: SIGTERM/SIGINT drain (no new calls, OPTIONS answered 503,
//! wait for transactions to finish, bounded) then exit; SIGHUP reloads the
//! dial plan without touching calls in progress.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::dialplan::DialPlan;
use crate::proxy::ProxyStats;

use super::admin::AdminState;
use super::shard::{ShardInput, Shards};

/// Wait for signals until a drain completes.
pub(super) async fn wait(
    path: PathBuf,
    shards: &Shards,
    _stats: &[Arc<ProxyStats>],
    admin: &Arc<AdminState>,
    drain_limit: Duration,
) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match DialPlan::load(&path) {
                Ok(plan) => {
                    let plan = Arc::new(plan);
                    shards.broadcast(|| ShardInput::Reload(plan.clone()));
                    tracing::info!(path = %path.display(), "dial plan reloaded");
                }
                Err(e) => tracing::error!("dial plan reload failed, keeping the old one:\n{e}"),
            },
        }
    }
    tracing::info!("draining");
    admin.draining.store(true, Ordering::Relaxed);
    shards.broadcast(|| ShardInput::Drain);
    let deadline = tokio::time::Instant::now() + drain_limit;
    // Bounded: poll every 50 ms until no proxied request awaits an answer or the limit passes.
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if admin.pending_requests() == 0 {
            break;
        }
    }
    tracing::info!("drained; exiting");
}
