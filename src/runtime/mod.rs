//! The only module that touches sockets, timers and the clock (tokio).
//!
//! ```text
//!  UDP/TCP sockets ─▶ reader tasks ─(hash Call-ID)─▶ shard task N ─▶ Proxy (sans-IO)
//!                                                      │  poll_transmit
//!  UDP send_to / TCP writer task ◀─────────────────────┘
//!  admin HTTP (/healthz, /metrics)   signals: SIGTERM/SIGINT drain, SIGHUP reload
//! ```
//!
//! A call's messages always land on the same shard (Call-ID hash), so they
//! are handled in order while both cores work.

mod admin;
mod net;
mod shard;
mod signals;
mod tcp;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::dialplan::DialPlan;
use crate::proxy::ProxyStats;

pub use shard::call_id_of;

/// Number of proxy shards (one per core on the 2-core target machine).
const SHARDS: usize = 2;

/// Start the gateway with `plan` (loaded from `path`, re-read on SIGHUP) and
/// run until SIGTERM/SIGINT has drained it. Called by `callgate run`.
pub fn run(plan: DialPlan, path: PathBuf) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SHARDS)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callgate: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(serve(plan, path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callgate: {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve(plan: DialPlan, path: PathBuf) -> std::io::Result<()> {
    let plan = Arc::new(plan);
    let mut bound = net::bind_all(&plan).await?;
    let stats: Vec<Arc<ProxyStats>> = (0..SHARDS)
        .map(|_| Arc::new(ProxyStats::default()))
        .collect();
    let hub = tcp::TcpHub::new();
    let shards = shard::start(&plan, &bound, &stats, hub.clone());
    net::start_readers(&mut bound, &shards, &hub);
    let admin_state = Arc::new(admin::AdminState::new(stats.clone()));
    if let Some(addr) = plan.admin {
        admin::start(addr, admin_state.clone()).await?;
    }
    for s in &bound.sockets {
        tracing::info!(listener = %s.listener, transport = ?s.transport, addr = %s.addr, "listening");
    }
    signals::wait(path, &shards, &stats, &admin_state, Duration::from_secs(10)).await;
    Ok(())
}
