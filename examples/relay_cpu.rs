//! In-process CPU cost of the sans-IO media relay per packet (no sockets,
//! no kernel): N anchored PCMU calls, 20 ms RTP both ways, every packet
//! through one `MediaHost` as the io_uring driver feeds it (handle_packet,
//! then the transmits drained), the host's timers run when due, on a
//! simulated clock. Prints ns and heap allocations per relayed packet.
//! `cargo run --release --example relay_cpu -- [calls=300] [rounds=1000]`
//! (pin it, e.g. `taskset -c 1`, for steadier figures). What the kernel
//! costs per packet is in `make bench-relay`; this isolates our own code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use callgate::media::rtp::write_rtp_header;
use callgate::media::{Codec, LegConfig, MediaCommand, MediaHost, PortPair, RelayConfig};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, allocations};

/// Same allocator as the `callgate` binary, counting allocations.
#[global_allocator]
static GLOBAL: Counting = Counting;

const MEDIA_BASE: u16 = 20000;
const PEER_BASE: u16 = 40000;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn leg(rtp: u16, remote: u16) -> LegConfig {
    LegConfig {
        ports: PortPair {
            rtp,
            rtcp: Some(rtp + 1),
        },
        remote_rtp: Some(addr(remote)),
        remote_rtcp: None,
        codecs: vec![
            Codec::new(0, "PCMU", 8000),
            Codec::new(101, "telephone-event", 8000),
        ],
    }
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u32>().ok());
    let calls = args.next().flatten().unwrap_or(300).clamp(1, 5000);
    let rounds = args.next().flatten().unwrap_or(1000).max(1);
    let mut host = MediaHost::new();
    let start = Instant::now();
    for i in 0..calls {
        let (pa, pb) = (MEDIA_BASE + 4 * i as u16, MEDIA_BASE + 4 * i as u16 + 2);
        let (ra, rb) = (PEER_BASE + 4 * i as u16, PEER_BASE + 4 * i as u16 + 2);
        let open = MediaCommand::Open {
            session: u64::from(i) + 1,
            a: leg(pa, ra),
            b: leg(pb, rb),
            ssrc_seed: u64::from(i),
            config: RelayConfig::default(),
        };
        host.apply(start, open).expect("fresh session");
    }
    while host.poll_port_change().is_some() {}
    // RTP v2 (write_rtp_header fills the rest of the 12-byte header)
    let mut packet = vec![0xd5u8; 172];
    packet[..12].fill(0x80);
    let (mut relayed, mut sent, mut allocs) = (0u64, 0u64, 0u64);
    let mut spent = Duration::ZERO;
    for round in 0..rounds {
        let now = start + Duration::from_millis(20 * u64::from(round));
        let (seq, ts) = (round as u16, round.wrapping_mul(160));
        let before = (Instant::now(), allocations());
        for i in 0..calls {
            let i16 = i as u16;
            for (port, from, ssrc) in [
                (MEDIA_BASE + 4 * i16, PEER_BASE + 4 * i16, 2 * i),
                (MEDIA_BASE + 4 * i16 + 2, PEER_BASE + 4 * i16 + 2, 2 * i + 1),
            ] {
                write_rtp_header(&mut packet, 0, seq, ts, ssrc);
                let _ = host.handle_packet(now, port, addr(from), &packet);
                while let Some(t) = host.poll_transmit() {
                    sent += 1;
                    std::hint::black_box(t);
                }
                relayed += 1;
            }
        }
        if host.poll_timeout().is_some_and(|t| t <= now) {
            host.handle_timeout(now);
            while host.poll_transmit().is_some() {}
        }
        while host.poll_event().is_some() {}
        spent += before.0.elapsed();
        allocs += allocations() - before.1;
    }
    assert_eq!(sent, relayed, "every packet relayed");
    println!(
        "relay_cpu: calls={calls} packets={relayed} ns_per_packet={:.1} allocations_per_packet={:.2}",
        spent.as_nanos() as f64 / relayed as f64,
        allocs as f64 / relayed as f64
    );
}
