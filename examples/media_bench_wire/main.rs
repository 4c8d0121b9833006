//! Transcoding benchmark client (run by `bench/media.sh`, `make
//! bench-media`): the same N Opus <-> PCMU calls, the same real RTP, through
//! either gateway process, measured the same way.
//!
//! Set-up (excluded from the measurement):
//!   `--target callgate`: over SIP to callgate's B2BUA (`--sip`, the client
//!     listener; the UAS answers on `--trunk`, a trunk with `codecs: [PCMU]`;
//!     see `sip.rs`);
//!   `--target rtpengine`: over rtpengine's ng protocol (`--ng`; `ng.rs`).
//! Either way the caller offers Opus only and the callee answers PCMU only.
//! Then every caller sends Opus and every callee 160-byte PCMU from its own
//! socket on 127.0.0.1, 50 packets/s each (`load.rs`). After `--warmup`
//! seconds the gateway's whole-process CPU (utime+stime of `--pid` from
//! /proc/PID/stat, every thread) is read over `--secs`, per call-second;
//! what arrived in that window is checked (callees get PT 0 with 160 bytes,
//! callers PT 111) and timed (`report.rs`): latency from the input's send to
//! the transcoded packet's kernel receive time, late = more than 20 ms.
//! Prints human-readable lines, then one `media_bench_wire:` line.
//! `MBW_DEBUG=1` also prints the first packets call 0's endpoints received.
//!
//! ```sh
//! media_bench_wire --target rtpengine --ng 127.0.0.1:22240 --calls 300 --pid $(pgrep -n rtpengine)
//! media_bench_wire --target callgate --sip 127.0.0.1:22250 --trunk 127.0.0.1:22254 --calls 300 --pid PID
//! ```
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a benchmark owns sockets and the clock

mod load;
mod ng;
#[path = "../support/ng_client.rs"]
#[allow(dead_code)] // shared with relay_bench, which uses part of it
mod ng_client;
mod report;
mod sdp;
mod sip;
#[path = "../support/speech.rs"]
mod speech;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use clap::Parser;

use load::{CallMedia, Load, now_ns};
use report::{Dir, Expect};

#[derive(Parser, Debug)]
struct Args {
    /// `callgate` (SIP to its B2BUA) or `rtpengine` (ng protocol).
    #[arg(long)]
    target: String,
    /// rtpengine's ng control socket.
    #[arg(long, default_value = "127.0.0.1:22240")]
    ng: SocketAddr,
    /// callgate's client-side SIP listener.
    #[arg(long, default_value = "127.0.0.1:22250")]
    sip: SocketAddr,
    /// The trunk's address in callgate's plan (the UAS binds it).
    #[arg(long, default_value = "127.0.0.1:22254")]
    trunk: SocketAddr,
    #[arg(long, default_value_t = 300)]
    calls: usize,
    /// Measurement window, seconds.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Media before the window, seconds.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Longest the set-up may take, seconds.
    #[arg(long, default_value_t = 60)]
    setup_secs: u64,
    /// The gateway's pid (CPU time from /proc/PID/stat).
    #[arg(long)]
    pid: u32,
    /// Clock ticks per second (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
}

/// Where one call's caller and callee send.
pub struct Legs {
    /// The gateway's port for the caller's leg.
    pub a_dst: SocketAddr,
    /// The gateway's port for the callee's leg.
    pub b_dst: SocketAddr,
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// `Threads:` and `Cpus_allowed_list:` of a process.
fn threads_and_cpus(pid: u32) -> (String, String) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .map_or("NA".to_string(), |v| v.trim().to_string())
    };
    (get("Threads:"), get("Cpus_allowed_list:"))
}

fn fail(target: &str, e: &str) -> ! {
    println!(
        "media_bench_wire: target={target} error=\"{}\"",
        e.replace('"', "'")
    );
    std::process::exit(1);
}

enum Control {
    Sip(sip::Agent),
    Ng(ng::Ng),
}

fn main() {
    let a = Args::parse();
    let t = a.target.as_str();
    let n = a.calls;
    let bind = || UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| fail(t, &format!("bind: {e}")));
    let socks: Vec<(UdpSocket, UdpSocket)> = (0..n).map(|_| (bind(), bind())).collect();
    let port = |s: &UdpSocket| s.local_addr().map_or(0, |a| a.port());
    let ports: Vec<(u16, u16)> = socks.iter().map(|(x, y)| (port(x), port(y))).collect();
    let setup_started = Instant::now();
    let (mut control, legs) = match t {
        "callgate" => {
            let mut agent = sip::Agent::new(a.sip, a.trunk)
                .unwrap_or_else(|e| fail(t, &format!("SIP sockets (trunk {}): {e}", a.trunk)));
            let legs = agent
                .setup(&ports, Duration::from_secs(a.setup_secs))
                .unwrap_or_else(|e| {
                    agent.teardown(Duration::from_secs(5));
                    fail(t, &e)
                });
            (Control::Sip(agent), legs)
        }
        "rtpengine" => {
            let mut c = ng::Ng::new(a.ng).unwrap_or_else(|e| fail(t, &format!("ng socket: {e}")));
            if let Err(e) = c.call(vec![("command", ng::Ben::s("ping"))]) {
                fail(t, &e);
            }
            let mut legs = Vec::with_capacity(n);
            for (i, &(pa, pb)) in ports.iter().enumerate() {
                match ng::setup_call(&mut c, i, pa, pb) {
                    Ok(l) => legs.push(l),
                    Err(e) => {
                        ng::teardown(&mut c, i + 1);
                        fail(t, &format!("call {i}: {e}"));
                    }
                }
            }
            (Control::Ng(c), legs)
        }
        _ => fail(t, "--target must be callgate or rtpengine"),
    };
    eprintln!(
        "media_bench_wire: {n} calls set up through {t} in {:.2} s",
        setup_started.elapsed().as_secs_f64()
    );
    // Let the gateway finish binding what it announced.
    std::thread::sleep(Duration::from_millis(300));
    let calls = socks
        .into_iter()
        .zip(&legs)
        .map(|((caller, callee), l)| CallMedia {
            caller,
            callee,
            to_a: l.a_dst,
            to_b: l.b_dst,
        })
        .collect();
    let run = Load::start(calls);
    let kernel_ts = run.kernel_timestamps;
    std::thread::sleep(Duration::from_secs(a.warmup));
    let me = std::process::id();
    let (cpu0, own0) = (cpu_ticks(a.pid), cpu_ticks(me));
    let (w0, t0) = (now_ns(), Instant::now());
    std::thread::sleep(Duration::from_secs(a.secs));
    let (cpu1, own1) = (cpu_ticks(a.pid), cpu_ticks(me));
    let (w1, window) = (now_ns(), t0.elapsed().as_secs_f64());
    let (threads, cpus) = threads_and_cpus(a.pid);
    let (sent, got) = run.finish();
    let teardown_failed = match &mut control {
        Control::Sip(agent) => agent.teardown(Duration::from_secs(10)),
        Control::Ng(c) => ng::teardown(c, n),
    };

    if std::env::var_os("MBW_DEBUG").is_some() {
        // The first packets call 0's caller and callee got, against the
        // send time of the first input toward each.
        for (k, (who, rx)) in ["caller", "callee"].iter().zip(&got).enumerate() {
            let first_in = sent.times.get(k ^ 1).and_then(|v| v.first()).copied();
            for r in rx.iter().take(8) {
                eprintln!(
                    "debug: call 0's {who} got seq {} ts {} pt {} len {} at +{:.2} ms after the first input toward it",
                    r.seq,
                    r.ts,
                    r.pt,
                    r.len,
                    first_in.map_or(f64::NAN, |s| (r.at as f64 - s as f64) / 1e6),
                );
            }
        }
    }
    let win = |v: &[u64]| v.iter().filter(|&&s| s >= w0 && s <= w1).count() as u64;
    let win_sent: u64 = sent.times.iter().map(|v| win(v)).sum();
    let (no_rx, no_tx) = (Vec::new(), Vec::new());
    let (mut a2b, mut b2a) = (Dir::default(), Dir::default());
    let pcmu = Expect {
        pt: 0,
        len: Some(160),
        step: 160,
    };
    let opus = Expect {
        pt: sdp::OPUS_PT,
        len: None,
        step: 960,
    };
    for i in 0..n {
        let rx = |k: usize| got.get(k).unwrap_or(&no_rx);
        let tx = |k: usize| sent.times.get(k).unwrap_or(&no_tx);
        // Stream 2i is call i's caller, 2i+1 its callee.
        a2b.add(rx(2 * i + 1), tx(2 * i), &pcmu, (w0, w1));
        b2a.add(rx(2 * i), tx(2 * i + 1), &opus, (w0, w1));
    }
    let transcoded = a2b.expected > 0
        && a2b.expected == a2b.packets
        && b2a.expected > 0
        && b2a.expected == b2a.packets;
    let (cpu_s, us, cores) = match (cpu0, cpu1) {
        (Some(x), Some(y)) => {
            let cpu = (y - x) as f64 / a.clk_tck as f64;
            (
                format!("{cpu:.2}"),
                format!("{:.1}", cpu * 1e6 / (n as f64 * window)),
                format!("{:.2}", cpu / window),
            )
        }
        _ => ("NA".into(), "NA".into(), "NA".into()),
    };
    println!(
        "  {t}: {cpu_s} s CPU over {window:.2} s ({cores} cores used; {threads} threads, allowed CPUs {cpus}): {us} us per call-second"
    );
    if let (Some(x), Some(y)) = (own0, own1) {
        println!(
            "  this load generator: {:.2} s CPU over the window ({:.2} cores)",
            (y - x) as f64 / a.clk_tck as f64,
            (y - x) as f64 / a.clk_tck as f64 / window
        );
    }
    println!(
        "  sender: {} ticks, {} started > 2 ms late, max lag {:.2} ms, {} send errors; receive times from {}",
        sent.ticks,
        sent.ticks_late_2ms,
        sent.max_tick_lag.as_secs_f64() * 1e3,
        sent.send_errors,
        if kernel_ts {
            "the kernel (SO_TIMESTAMPNS)"
        } else {
            "the receiver (no kernel timestamps)"
        }
    );
    println!("  {}", a2b.line("caller->callee Opus->PCMU"));
    println!("  {}", b2a.line("callee->caller PCMU->Opus"));
    let (a2b_n, a2b_ok, b2a_n, b2a_ok) = (a2b.packets, a2b.expected, b2a.packets, b2a.expected);
    let mut all = a2b.merge(&b2a);
    all.sort();
    println!(
        "media_bench_wire: target={t} calls={n} window_s={window:.2} cpu_s={cpu_s} us_per_call_second={us} \
         cores_used={cores} threads={threads} cpus={cpus} win_sent={win_sent} win_a2b={a2b_n} \
         win_a2b_pcmu160={a2b_ok} win_b2a={b2a_n} win_b2a_opus={b2a_ok} transcoded={} \
         frames={} late={} lat_p50_ms={:.3} lat_p99_ms={:.3} lat_p999_ms={:.3} lat_max_ms={:.3} \
         unmatched={} neg={} gaps30={} max_gap_ms={:.1} seq_breaks={} ts_breaks={} kernel_ts={} \
         sender_late_ticks={} sender_max_lag_ms={:.2} send_errors={} teardown_failed={teardown_failed}",
        if transcoded { "yes" } else { "no" },
        all.lat.len(),
        all.late,
        all.pct_ms(0.5),
        all.pct_ms(0.99),
        all.pct_ms(0.999),
        all.pct_ms(1.0),
        all.unmatched,
        all.neg,
        all.gaps_over_30,
        all.max_gap as f64 / 1e6,
        all.seq_breaks,
        all.ts_breaks,
        if kernel_ts { "yes" } else { "no" },
        sent.ticks_late_2ms,
        sent.max_tick_lag.as_secs_f64() * 1e3,
        sent.send_errors,
    );
}
