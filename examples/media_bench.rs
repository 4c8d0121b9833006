//! bench-media: N concurrent Opus ↔ PCMU calls transcoded both ways at 20 ms
//! in one thread, through one `MediaHost` (one shard), packets fed in their
//! simulated time order.
//!
//! ```sh
//! cargo run --release --example media_bench -- 300          # 300 calls, 10 s at real-time pace
//! cargo run --release --example media_bench -- 300 20       # ... for 20 s
//! cargo run --release --example media_bench -- 300 10 --fast  # as fast as possible (CPU cost only)
//! cargo run --release --example media_bench -- 300 10 --fast --reported-loss=5
//! ```
//!
//! `--reported-loss=P`: before the media starts, each caller sends one RTCP
//! receiver report saying P % of the gateway's Opus stream is lost, so the
//! encoders toward the callers add in-band FEC (SILK frames) as they would
//! on a lossy path; without it they encode CELT (nothing reported lost).
//!
//! Leg A of each call is a WebRTC-like Opus leg (PT 111, 48 kHz clock, FEC,
//! telephone-event/48000), leg B a carrier PCMU leg (telephone-event/8000):
//! every 20 ms each call gets one Opus packet from A (pre-encoded at 48 kHz,
//! decoded by the gateway at 8 kHz and re-encoded as PCMU) and one PCMU
//! packet from B (decoded and encoded as Opus at 8 kHz). The calls' packet
//! times are spread evenly over the 20 ms.
//!
//! Reported: the thread's CPU time (from `/proc/thread-self/schedstat`, else
//! `/proc/thread-self/stat`) per call-second of media (both directions) and
//! the calls one core could carry at that cost (`--fast`: nothing but the
//! media work runs on the thread); paced at real time, the time spent relaying
//! per call-second instead (the thread also waits for each packet's time) and
//! how late packets were handled: a frame is late when the gateway finishes
//! relaying it more than one packet time (20 ms) after it was due. The
//! machine's load average is printed too: on a shared machine the thread may
//! not get the core it needs.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a benchmark reads the clock

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callgate::media::codec::CodecKind;
use callgate::media::rtp::write_rtp_header;
use callgate::media::{Codec, Leg, LegConfig, MediaCommand, MediaHost, PortPair, RelayConfig};

#[path = "support/speech.rs"]
mod speech;
use speech::{LOOP_FRAMES, payloads};

const PTIME: Duration = Duration::from_millis(20);

/// Thread CPU time so far.
fn thread_cpu() -> Duration {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat")
        && let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
    {
        return Duration::from_nanos(ns);
    }
    // utime + stime in clock ticks (fields 14 and 15), 100 Hz on Linux.
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |s| s.1);
    let f: Vec<u64> = after
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let ticks = f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0);
    Duration::from_millis(ticks * 10)
}

struct Stream {
    port: u16,
    from: SocketAddr,
    pt: u8,
    ssrc: u32,
    step: u32,
    seq: u16,
    ts: u32,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fast = args.iter().any(|a| a == "--fast");
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let calls = nums.first().copied().unwrap_or(300) as usize;
    let secs = nums.get(1).copied().unwrap_or(10);
    let reported_loss: Option<u32> = args
        .iter()
        .find_map(|a| a.strip_prefix("--reported-loss="))
        .and_then(|v| v.parse().ok());

    let opus = payloads(CodecKind::Opus, 48000);
    let pcmu = payloads(CodecKind::Pcmu, 8000);
    let mut host = MediaHost::new();
    let t0 = Instant::now();
    let mut streams = Vec::with_capacity(2 * calls);
    for i in 0..calls {
        let base = 20000 + 4 * i as u16;
        let ip = |leg: u8| -> SocketAddr {
            format!("10.{}.{}.{}:4000", leg, i / 250, i % 250 + 1)
                .parse()
                .unwrap()
        };
        let leg = |port, remote, codecs| LegConfig {
            ports: PortPair {
                rtp: port,
                rtcp: None,
            },
            remote_rtp: Some(remote),
            remote_rtcp: None,
            codecs,
        };
        let a = leg(
            base,
            ip(1),
            vec![
                Codec::new(111, "opus", 48000).with_fmtp("minptime=10;useinbandfec=1"),
                Codec::new(110, "telephone-event", 48000),
            ],
        );
        let b = leg(
            base + 2,
            ip(2),
            vec![
                Codec::new(0, "PCMU", 8000),
                Codec::new(101, "telephone-event", 8000),
            ],
        );
        host.apply(
            t0,
            MediaCommand::Open {
                session: i as u64,
                a,
                b,
                ssrc_seed: i as u64,
                config: RelayConfig::default(),
            },
        )
        .unwrap();
        streams.push(Stream {
            port: base,
            from: ip(1),
            pt: 111,
            ssrc: 0xA000 + i as u32,
            step: 960,
            seq: 1,
            ts: 0,
        });
        streams.push(Stream {
            port: base + 2,
            from: ip(2),
            pt: 0,
            ssrc: 0xB000 + i as u32,
            step: 160,
            seq: 1,
            ts: 0,
        });
    }
    while host.poll_port_change().is_some() {}
    if let Some(percent) = reported_loss {
        let fraction = (percent.min(100) * 256 / 100).min(255) as u8;
        for i in 0..calls {
            let Some(session) = host.session(i as u64) else {
                continue;
            };
            // RFC 3550 §6.4.2 RR from the caller, one block about our stream.
            let mut rr = vec![0x81, 201, 0, 7];
            rr.extend_from_slice(&(0xA000 + i as u32).to_be_bytes());
            rr.extend_from_slice(&session.outgoing_ssrc(Leg::B).to_be_bytes());
            rr.push(fraction);
            rr.extend_from_slice(&[0; 19]);
            if let Err(e) = host.handle_packet(t0, streams[2 * i].port, streams[2 * i].from, &rr) {
                eprintln!("rr: {e:?}");
            }
        }
        while host.poll_transmit().is_some() {}
        println!(
            "  every caller reported {percent} % loss (RTCP RR): Opus toward them carries FEC"
        );
    }

    // Every stream sends every 20 ms; stream k at offset k/(2N) of the period.
    let n = streams.len();
    let total_slots = secs as usize * 50;
    let offset = |k: usize| PTIME * k as u32 / n as u32;
    let start = Instant::now() + Duration::from_millis(50);
    let cpu0 = thread_cpu();
    let (mut late, mut max_lag, mut sent, mut lag_sum) =
        (0u64, Duration::ZERO, 0u64, Duration::ZERO);
    let mut busy = Duration::ZERO;
    let mut buf = Vec::with_capacity(1500);
    for slot in 0..total_slots {
        for (k, s) in streams.iter_mut().enumerate() {
            let due_virtual = t0 + PTIME * slot as u32 + offset(k);
            let due_real = start + PTIME * slot as u32 + offset(k);
            if !fast {
                let now = Instant::now();
                if due_real > now + Duration::from_micros(200) {
                    std::thread::sleep(due_real - now - Duration::from_micros(100));
                }
                while Instant::now() < due_real {
                    std::hint::spin_loop();
                }
            }
            let began = Instant::now();
            let payload = if s.pt == 111 {
                &opus[slot % LOOP_FRAMES]
            } else {
                &pcmu[slot % LOOP_FRAMES]
            };
            buf.clear();
            buf.resize(12, 0x80);
            write_rtp_header(&mut buf, s.pt, s.seq, s.ts, s.ssrc);
            buf.extend_from_slice(payload);
            s.seq = s.seq.wrapping_add(1);
            s.ts = s.ts.wrapping_add(s.step);
            if host.poll_timeout().is_some_and(|t| t <= due_virtual) {
                host.handle_timeout(due_virtual);
            }
            let _ = host.handle_packet(due_virtual, s.port, s.from, &buf);
            while host.poll_transmit().is_some() {
                sent += 1;
            }
            let done = Instant::now();
            busy += done - began;
            if !fast {
                let lag = done.saturating_duration_since(due_real);
                lag_sum += lag;
                max_lag = max_lag.max(lag);
                if lag > PTIME {
                    late += 1;
                }
            }
        }
    }
    let cpu = thread_cpu() - cpu0;
    let wall = start.elapsed();
    let frames = (n * total_slots) as u64;
    let call_secs = (calls as u64 * secs) as f64;
    let per_call_sec = cpu.as_secs_f64() * 1e6 / call_secs;
    let totals = host.totals();
    println!(
        "media_bench: {calls} Opus<->PCMU calls, {secs} s of media each way{}",
        if fast {
            " (as fast as possible)"
        } else {
            " at real-time pace"
        }
    );
    println!(
        "  packets in {frames}, out {sent} (transcoded {}, dropped late {}, concealed {})",
        totals.transcoded_packets, totals.dropped_late, totals.concealed_packets
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("  machine: {cores} cores, load average {load}");
    if fast {
        println!(
            "  CPU {:.3} s over {:.3} s wall: {per_call_sec:.0} us per call-second, {:.1} us per packet",
            cpu.as_secs_f64(),
            wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / frames as f64
        );
        println!(
            "  one core carries {:.0} such calls ({:.0}% of a core used by {calls})",
            1e6 / per_call_sec,
            per_call_sec * calls as f64 / 1e4
        );
    } else {
        let busy_per = busy.as_secs_f64() * 1e6 / call_secs;
        println!(
            "  relaying took {:.3} s of {:.3} s wall: {busy_per:.0} us per call-second ({:.0}% of the thread's time)",
            busy.as_secs_f64(),
            wall.as_secs_f64(),
            100.0 * busy.as_secs_f64() / wall.as_secs_f64()
        );
        println!(
            "  lateness: mean {:.0} us, max {:.2} ms; late frames (> 20 ms): {late} of {frames}",
            lag_sum.as_secs_f64() * 1e6 / frames as f64,
            max_lag.as_secs_f64() * 1e3
        );
        println!(
            "  {}",
            if late == 0 {
                "no late frame"
            } else {
                "LATE FRAMES"
            }
        );
    }
    if sent != frames {
        eprintln!("warning: {} packets in, {sent} out", frames);
    }
}
