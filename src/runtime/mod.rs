//! The only module that touches sockets, timers and the clock (tokio).
//!
//! ```text
//!  UDP sockets ─▶ event loop thread(s) ─(hash Call-ID)─▶ shard N ─▶ Proxy (sans-IO)
//!  TCP sockets ─▶ reader tasks ───────────┘   + timers       │  poll_transmit
//!  UDP send_to / TCP writer task ◀────────────────────────────┘
//!  admin HTTP (/healthz, /metrics, /calls)   signals: SIGTERM/SIGINT drain, SIGHUP reload
//!  media: per shard a MediaHost, its sockets bound before the SDP naming them leaves
//! ```
//!
//! A call's messages always land on the same shard (Call-ID hash), so they
//! are handled in order while both cores work.

mod admin;
mod event_loop;
mod media;
mod media_sockets;
mod media_tokio;
mod media_uring;
mod media_uring_driver;
mod media_uring_mem;
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

/// Most cores (runtimes, shards) used.
const MAX_CORES: usize = 8;

/// Start the gateway with `plan` (loaded from `path`, re-read on SIGHUP),
/// `udp_threads` signaling event loops and `media_threads` media driver
/// threads, and run until SIGTERM/SIGINT has drained it. Called by
/// `callgate run`.
///
/// UDP signaling runs on the event loop threads; one single-threaded tokio
/// runtime per core carries the rest (TCP connections, media planes, admin
/// HTTP, signals), each TCP listener registered with one of them so its
/// hot path never wakes another thread (a work-stealing runtime did,
/// measurably).
pub fn run(plan: DialPlan, path: PathBuf, udp_threads: usize, media_threads: usize) -> ExitCode {
    disable_transparent_huge_pages();
    let n = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_CORES);
    let build = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let main_rt = match build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callgate: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let mut cores = vec![main_rt.handle().clone()];
    let mut stops = Vec::new();
    for i in 1..n {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name(format!("callgate-core{i}"))
            .spawn(move || {
                if let Ok(rt) = build() {
                    let _ = handle_tx.send(rt.handle().clone());
                    rt.block_on(async {
                        let _ = stop_rx.await;
                    });
                }
            });
        match (spawned, handle_rx.recv()) {
            (Ok(_), Ok(h)) => {
                cores.push(h);
                stops.push(stop_tx);
            }
            _ => tracing::warn!(
                core = i,
                "could not start a runtime thread; using fewer cores"
            ),
        }
    }
    let result = main_rt.block_on(serve(plan, path, cores, udp_threads, media_threads));
    drop(stops);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callgate: {e}");
            ExitCode::from(1)
        }
    }
}

/// Opt the process out of transparent huge pages (`prctl(PR_SET_THP_DISABLE)`).
///
/// The gateway's heap grows by ~4 KB per call for the 32 s transactions
/// linger (RFC 3261 §17, RFC 6026), and mimalloc asks for huge pages on its
/// arenas: every first touch of a 2 MB region then had the kernel zero all
/// of it (`clear_page_erms`, 7.7 % of the gateway's CPU in `perf` at 2000
/// calls/s). With 4 KB pages, measured with `perf stat` over 30,000 calls
/// at 2000 calls/s: 3.21–3.25 s of CPU against 3.42–3.76 s. The rest of
/// the process (media buffers, stacks) gains nothing from huge pages
/// either. A kernel without the call keeps its default: the error is only
/// logged.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours; it only sets a flag on the process's address space.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "could not opt out of transparent huge pages"
        );
    }
}

async fn serve(
    plan: DialPlan,
    path: PathBuf,
    cores: Vec<tokio::runtime::Handle>,
    udp_threads: usize,
    media_threads: usize,
) -> std::io::Result<()> {
    let plan = Arc::new(plan);
    let mut bound = net::bind_all(&plan, &cores)?;
    let stats: Vec<Arc<ProxyStats>> = (0..cores.len())
        .map(|_| Arc::new(ProxyStats::default()))
        .collect();
    let hub = tcp::TcpHub::new();
    let shards = shard::start(
        &plan,
        &bound,
        &stats,
        hub.clone(),
        &cores,
        udp_threads,
        media_threads,
    )?;
    net::start_readers(&mut bound, &shards, &hub, &cores);
    let admin_state = Arc::new(admin::AdminState::new(
        stats.clone(),
        shards.clone(),
        admin::WallClock::now(),
    ));
    if let Some(addr) = plan.admin {
        admin::start(addr, admin_state.clone()).await?;
    }
    for s in &bound.sockets {
        tracing::info!(listener = %s.listener, transport = ?s.transport, addr = %s.addr, "listening");
    }
    signals::wait(path, &shards, &stats, &admin_state, Duration::from_secs(10)).await;
    shards.close_media();
    Ok(())
}
