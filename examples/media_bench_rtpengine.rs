//! Transcoding benchmark client for rtpengine (run by `bench/media.sh`,
//! `make bench-media`).
//!
//! Sets up N calls through rtpengine's ng control protocol (bencode over UDP,
//! `--ng`): `offer` with an Opus-only SDP from the caller plus the
//! `codec: { transcode: [PCMU] }` option (so rtpengine offers PCMU to the
//! callee), then `answer` with a PCMU-only SDP from the callee, so rtpengine
//! must transcode Opus ↔ PCMU both ways. Then sends real 20 ms RTP from
//! sockets on 127.0.0.1: Opus (PT 111, encoded by callgate's Opus encoder at
//! 48 kHz) from every caller, PCMU (PT 0, 160 bytes) from every callee, 50
//! packets/s per direction per call, spread evenly over each 20 ms. Counts
//! what comes back and checks it is transcoded (callee side: PT 0 with a
//! 160-byte payload; caller side: PT 111), and reads rtpengine's CPU time
//! (utime+stime from /proc/PID/stat) over `--secs` after `--warmup`. Prints
//! one machine-readable `media_bench_rtpengine:` line.
//!
//! `cargo run --release --example media_bench_rtpengine -- --calls 100 --pid $(pgrep -n rtpengine)`
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a benchmark reads the clock

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use callgate::media::codec::{AnyCodec, AudioCodec, CodecKind};
use clap::Parser;

#[derive(Parser, Debug)]
struct Args {
    /// rtpengine's ng control socket.
    #[arg(long, default_value = "127.0.0.1:22240")]
    ng: SocketAddr,
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Measurement window, seconds.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Media before the window, seconds.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// rtpengine's pid (CPU time read from /proc/PID/stat).
    #[arg(long)]
    pid: u32,
    /// Clock ticks per second (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
}

const OPUS_PT: u8 = 111;
const LOOP_FRAMES: usize = 50;

fn caller_sdp(id: usize, port: u16) -> String {
    format!(
        "v=0\r\no=caller {id} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {OPUS_PT}\r\na=rtpmap:{OPUS_PT} opus/48000/2\r\n\
         a=fmtp:{OPUS_PT} minptime=10;useinbandfec=1\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

fn callee_sdp(id: usize, port: u16) -> String {
    format!(
        "v=0\r\no=callee {id} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// The media address of an SDP body and the payload types of its `m=audio`.
fn sdp_media(body: &str) -> Option<(SocketAddr, String)> {
    let mut ip: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    let mut fmts = String::new();
    for line in body.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            ip = c.trim().parse().ok().or(ip);
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            let mut it = m.split_whitespace();
            port = it.next().and_then(|p| p.parse().ok());
            fmts = it.skip(1).collect::<Vec<_>>().join(" ");
        }
    }
    Some((SocketAddr::new(ip?, port?), fmts))
}

// -------------------------------------------------------- rtpengine ng ---

/// A bencode value (only what the ng protocol uses).
#[derive(Debug, Clone)]
enum Ben {
    Str(Vec<u8>),
    Int(i64),
    List(Vec<Ben>),
    Dict(Vec<(Vec<u8>, Ben)>),
}

impl Ben {
    fn s(v: &str) -> Ben {
        Ben::Str(v.as_bytes().to_vec())
    }

    fn dict(fields: Vec<(&str, Ben)>) -> Ben {
        Ben::Dict(
            fields
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ben::Str(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Ben::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Ben::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Ben::Dict(d) => {
                out.push(b'd');
                let mut d = d.clone();
                d.sort_by(|a, b| a.0.cmp(&b.0));
                for (k, v) in &d {
                    Ben::Str(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    fn decode(b: &[u8]) -> Option<(Ben, &[u8])> {
        match *b.first()? {
            b'i' => {
                let end = b.iter().position(|&c| c == b'e')?;
                let v = std::str::from_utf8(&b[1..end]).ok()?.parse().ok()?;
                Some((Ben::Int(v), &b[end + 1..]))
            }
            b'l' => {
                let mut rest = &b[1..];
                let mut l = Vec::new();
                while *rest.first()? != b'e' {
                    let (v, r) = Ben::decode(rest)?;
                    l.push(v);
                    rest = r;
                }
                Some((Ben::List(l), &rest[1..]))
            }
            b'd' => {
                let mut rest = &b[1..];
                let mut d = Vec::new();
                while *rest.first()? != b'e' {
                    let (Ben::Str(k), r) = Ben::decode(rest)? else {
                        return None;
                    };
                    let (v, r) = Ben::decode(r)?;
                    d.push((k, v));
                    rest = r;
                }
                Some((Ben::Dict(d), &rest[1..]))
            }
            b'0'..=b'9' => {
                let colon = b.iter().position(|&c| c == b':')?;
                let n: usize = std::str::from_utf8(&b[..colon]).ok()?.parse().ok()?;
                let s = b.get(colon + 1..colon + 1 + n)?;
                Some((Ben::Str(s.to_vec()), &b[colon + 1 + n..]))
            }
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&Ben> {
        match self {
            Ben::Dict(d) => d.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<String> {
        match self {
            Ben::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

struct Ng {
    sock: UdpSocket,
    to: SocketAddr,
    cookie: u64,
}

impl Ng {
    fn new(to: SocketAddr) -> std::io::Result<Ng> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(1000)))?;
        Ok(Ng {
            sock,
            to,
            cookie: u64::from(std::process::id()) << 32,
        })
    }

    /// One command; retried on silence (rtpengine answers a repeated cookie
    /// from its cache).
    fn call(&mut self, fields: Vec<(&str, Ben)>) -> Result<Ben, String> {
        self.cookie += 1;
        let mut msg = format!("{:x} ", self.cookie).into_bytes();
        Ben::dict(fields).encode(&mut msg);
        let mut buf = vec![0u8; 65536];
        for _ in 0..3 {
            self.sock
                .send_to(&msg, self.to)
                .map_err(|e| format!("ng send: {e}"))?;
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            let reply = &buf[..n];
            let sp = reply
                .iter()
                .position(|&c| c == b' ')
                .ok_or("ng: no cookie")?;
            if reply[..sp] != *format!("{:x}", self.cookie).as_bytes() {
                continue;
            }
            let (v, _) = Ben::decode(&reply[sp + 1..]).ok_or("ng: bad bencode")?;
            return match v.get("result").and_then(Ben::str).as_deref() {
                Some("ok") | Some("pong") => Ok(v),
                r => Err(format!(
                    "ng: result {:?} {:?}",
                    r,
                    v.get("error-reason").and_then(Ben::str)
                )),
            };
        }
        Err(format!("ng: no answer from {}", self.to))
    }
}

fn call_id(i: usize) -> String {
    format!("media-bench-{i}-{}", std::process::id())
}

/// One call: (where the caller sends, where the callee sends).
fn setup_call(ng: &mut Ng, i: usize, a_port: u16, b_port: u16) -> Result<Legs, String> {
    let offer = ng.call(vec![
        ("command", Ben::s("offer")),
        ("call-id", Ben::s(&call_id(i))),
        ("from-tag", Ben::s(&format!("a{i}"))),
        ("sdp", Ben::s(&caller_sdp(i, a_port))),
        (
            "replace",
            Ben::List(vec![Ben::s("origin"), Ben::s("session-connection")]),
        ),
        (
            "codec",
            Ben::dict(vec![("transcode", Ben::List(vec![Ben::s("PCMU")]))]),
        ),
    ])?;
    let (b_dst, b_fmts) = offer
        .get("sdp")
        .and_then(Ben::str)
        .and_then(|s| sdp_media(&s))
        .ok_or("offer: no media in rtpengine's SDP")?;
    if !b_fmts.split(' ').any(|f| f == "0") {
        return Err(format!(
            "offer: rtpengine did not add PCMU to the offer (m=audio formats: {b_fmts}); \
             no transcoding support?"
        ));
    }
    let answer = ng.call(vec![
        ("command", Ben::s("answer")),
        ("call-id", Ben::s(&call_id(i))),
        ("from-tag", Ben::s(&format!("a{i}"))),
        ("to-tag", Ben::s(&format!("b{i}"))),
        ("sdp", Ben::s(&callee_sdp(i, b_port))),
        (
            "replace",
            Ben::List(vec![Ben::s("origin"), Ben::s("session-connection")]),
        ),
    ])?;
    let (a_dst, a_fmts) = answer
        .get("sdp")
        .and_then(Ben::str)
        .and_then(|s| sdp_media(&s))
        .ok_or("answer: no media in rtpengine's SDP")?;
    if !a_fmts.split(' ').any(|f| f == OPUS_PT.to_string()) {
        return Err(format!(
            "answer: rtpengine's answer to the caller lacks Opus (m=audio formats: {a_fmts})"
        ));
    }
    Ok(Legs { a_dst, b_dst })
}

struct Legs {
    /// Where the caller sends (rtpengine's port for leg A).
    a_dst: SocketAddr,
    /// Where the callee sends.
    b_dst: SocketAddr,
}

// ---------------------------------------------------------------- media ---

/// One second of speech-band audio (as examples/media_bench.rs).
fn signal(rate: u32) -> Vec<i16> {
    let parts = [
        (313.0, 4000.0, 2.3),
        (727.0, 3000.0, 3.1),
        (1093.0, 2000.0, 4.7),
        (2441.0, 1000.0, 5.3),
        (3137.0, 500.0, 6.1),
    ];
    (0..rate as usize)
        .map(|i| {
            let t = i as f64 / rate as f64;
            parts
                .iter()
                .map(|&(f, a, m): &(f64, f64, f64)| {
                    a * (0.6 + 0.4 * (std::f64::consts::TAU * m * t).sin())
                        * (std::f64::consts::TAU * f * t).sin()
                })
                .sum::<f64>() as i16
        })
        .collect()
}

/// `LOOP_FRAMES` RTP payloads of 20 ms of `signal` in `kind` at `rate`.
fn payloads(kind: CodecKind, rate: u32) -> Vec<Vec<u8>> {
    let mut c = AnyCodec::new(kind, rate, "useinbandfec=1").expect("codec");
    signal(rate)
        .chunks_exact(rate as usize / 50)
        .take(LOOP_FRAMES)
        .map(|f| {
            let mut p = Vec::new();
            c.encode(f, &mut p).expect("encode");
            p
        })
        .collect()
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    send_errors: AtomicU64,
    /// Received by callees (caller → callee), and of those PT 0 with 160 bytes.
    a2b: AtomicU64,
    a2b_pcmu: AtomicU64,
    /// Received by callers, and of those PT 111.
    b2a: AtomicU64,
    b2a_opus: AtomicU64,
    stop: AtomicBool,
}

struct Sender {
    sock: UdpSocket,
    to: SocketAddr,
    opus: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

/// Every stream sends 50 packets/s, spread evenly over 20 slots of 1 ms,
/// until `stop`.
fn sender(mut socks: Vec<Sender>, c: Arc<Counters>) {
    const SLOT: Duration = Duration::from_millis(1);
    const SLOTS: usize = 20;
    let opus = payloads(CodecKind::Opus, 48000);
    let pcmu = payloads(CodecKind::Pcmu, 8000);
    let start = Instant::now();
    let mut tick: u64 = 0;
    let mut pkt = Vec::with_capacity(1500);
    while !c.stop.load(Ordering::Relaxed) {
        let due = start + SLOT * tick as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let slot = (tick % SLOTS as u64) as usize;
        let frame = (tick / SLOTS as u64) as usize % LOOP_FRAMES;
        let (mut sent, mut errs) = (0, 0);
        for s in socks.iter_mut().skip(slot).step_by(SLOTS) {
            s.seq = s.seq.wrapping_add(1);
            pkt.clear();
            pkt.push(0x80);
            pkt.push(if s.opus { OPUS_PT } else { 0 });
            pkt.extend_from_slice(&s.seq.to_be_bytes());
            pkt.extend_from_slice(&s.ts.to_be_bytes());
            pkt.extend_from_slice(&s.ssrc.to_be_bytes());
            if s.opus {
                pkt.extend_from_slice(&opus[frame]);
                s.ts = s.ts.wrapping_add(960);
            } else {
                pkt.extend_from_slice(&pcmu[frame]);
                s.ts = s.ts.wrapping_add(160);
            }
            match s.sock.send_to(&pkt, s.to) {
                Ok(_) => sent += 1,
                Err(_) => errs += 1,
            }
        }
        c.sent.fetch_add(sent, Ordering::Relaxed);
        c.send_errors.fetch_add(errs, Ordering::Relaxed);
        tick += 1;
    }
}

/// One tokio task per socket counting what arrives, until `stop`.
fn receivers(socks: Vec<(UdpSocket, bool)>, c: Arc<Counters>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for (sock, is_callee) in socks {
                sock.set_nonblocking(true).expect("nonblocking");
                let sock = tokio::net::UdpSocket::from_std(sock).expect("tokio socket");
                let c = c.clone();
                tasks.push(tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    while let Ok(n) = sock.recv(&mut buf).await {
                        if n < 12 {
                            continue;
                        }
                        let pt = buf[1] & 0x7f;
                        if is_callee {
                            c.a2b.fetch_add(1, Ordering::Relaxed);
                            if pt == 0 && n == 12 + 160 {
                                c.a2b_pcmu.fetch_add(1, Ordering::Relaxed);
                            }
                        } else {
                            c.b2a.fetch_add(1, Ordering::Relaxed);
                            if pt == OPUS_PT {
                                c.b2a_opus.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }));
            }
            while !c.stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for t in tasks {
                t.abort();
            }
        });
    })
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn main() {
    let args = Args::parse();
    let n = args.calls;
    let mut ng = match Ng::new(args.ng) {
        Ok(ng) => ng,
        Err(e) => {
            println!("media_bench_rtpengine: error=ng_socket:{e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = ng.call(vec![("command", Ben::s("ping"))]) {
        println!("media_bench_rtpengine: error=\"{e}\"");
        std::process::exit(1);
    }
    let mut senders = Vec::with_capacity(2 * n);
    let mut recv = Vec::with_capacity(2 * n);
    let mut up = 0;
    for i in 0..n {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let (ap, bp) = (
            a.local_addr().expect("addr").port(),
            b.local_addr().expect("addr").port(),
        );
        let legs = match setup_call(&mut ng, i, ap, bp) {
            Ok(l) => l,
            Err(e) => {
                // The first failure says why; nothing is measured.
                println!("media_bench_rtpengine: error=\"call {i}: {e}\"");
                teardown(&mut ng, i + 1);
                std::process::exit(1);
            }
        };
        up += 1;
        senders.push(Sender {
            sock: a.try_clone().expect("clone"),
            to: legs.a_dst,
            opus: true,
            seq: 0,
            ts: 0,
            ssrc: 0xA000_0000 + i as u32,
        });
        senders.push(Sender {
            sock: b.try_clone().expect("clone"),
            to: legs.b_dst,
            opus: false,
            seq: 0,
            ts: 0,
            ssrc: 0xB000_0000 + i as u32,
        });
        recv.push((a, false));
        recv.push((b, true));
    }
    eprintln!("media_bench_rtpengine: {up} calls set up");
    let c = Arc::new(Counters::default());
    let rx = receivers(recv, c.clone());
    let tx = {
        let c = c.clone();
        std::thread::spawn(move || sender(senders, c))
    };
    std::thread::sleep(Duration::from_secs(args.warmup));
    let snap = |c: &Counters| {
        (
            c.sent.load(Ordering::Relaxed),
            c.a2b.load(Ordering::Relaxed),
            c.a2b_pcmu.load(Ordering::Relaxed),
            c.b2a.load(Ordering::Relaxed),
            c.b2a_opus.load(Ordering::Relaxed),
        )
    };
    let cpu0 = cpu_ticks(args.pid);
    let t0 = Instant::now();
    let s0 = snap(&c);
    std::thread::sleep(Duration::from_secs(args.secs));
    let cpu1 = cpu_ticks(args.pid);
    let window = t0.elapsed().as_secs_f64();
    let s1 = snap(&c);
    c.stop.store(true, Ordering::Relaxed);
    let _ = tx.join();
    std::thread::sleep(Duration::from_millis(100));
    let _ = rx.join();
    let teardown_failed = teardown(&mut ng, n);

    let (cpu_s, us) = match (cpu0, cpu1) {
        (Some(a), Some(b)) => {
            let cpu = (b - a) as f64 / args.clk_tck as f64;
            (
                format!("{cpu:.2}"),
                format!("{:.1}", cpu * 1e6 / (n as f64 * window)),
            )
        }
        _ => ("NA".into(), "NA".into()),
    };
    let sent = s1.0 - s0.0;
    let (a2b, a2b_pcmu, b2a, b2a_opus) = (s1.1 - s0.1, s1.2 - s0.2, s1.3 - s0.3, s1.4 - s0.4);
    let transcoded = a2b_pcmu > 0 && a2b_pcmu == a2b && b2a_opus > 0 && b2a_opus == b2a;
    println!(
        "media_bench_rtpengine: calls={up} window_s={window:.2} cpu_s={cpu_s} us_per_call_second={us} \
         win_sent={sent} win_a2b={a2b} win_a2b_pcmu160={a2b_pcmu} win_b2a={b2a} win_b2a_opus={b2a_opus} \
         total_sent={} total_received={} send_errors={} transcoded={} teardown_failed={teardown_failed}",
        s1.0,
        s1.1 + s1.3,
        c.send_errors.load(Ordering::Relaxed),
        if transcoded { "yes" } else { "no" },
    );
}

fn teardown(ng: &mut Ng, calls: usize) -> usize {
    (0..calls)
        .filter(|&i| {
            ng.call(vec![
                ("command", Ben::s("delete")),
                ("call-id", Ben::s(&call_id(i))),
                ("from-tag", Ben::s(&format!("a{i}"))),
            ])
            .is_err()
        })
        .count()
}
