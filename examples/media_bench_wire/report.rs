//! What came back, per direction: is it transcoded, how long the gateway
//! held each frame, and how regularly the frames left.
//!
//! Matching a transcoded packet to its input: one 20 ms input frame makes
//! one 20 ms output frame, and the first packet a socket receives is the
//! output of the first input sent toward it. From there a packet's input is
//! counted two ways: by its RTP timestamp (`(ts - first_ts) / step`) and by
//! its sequence number (`seq - first_seq`). They differ when a frame went
//! missing: callgate numbers and stamps its own output (both counters count
//! output frames; lost input is concealed, keeping both in step), rtpengine
//! keeps the input's sequence numbers but counts its own timestamps, so when
//! it drops a frame its timestamp falls one frame behind the input (seen:
//! seq 15, 17 with ts +160 between them). A counter can fall behind the
//! input index but not run ahead of it unless the gateway makes frames up,
//! so the larger of the two is taken unless that input was sent after the
//! packet arrived (then the smaller; if both are, the packet counts as
//! `neg`: the matching failed). `idx_disagree` counts the packets where the
//! two differ.

use crate::load::Rx;

/// One frame period.
pub const FRAME_NS: u64 = 20_000_000;
/// A gap this long between two packets of a stream is reported.
const GAP_NS: u64 = 30_000_000;

/// One direction of every call over the window.
#[derive(Default)]
pub struct Dir {
    pub packets: u64,
    /// Packets of the expected kind (PT and payload size).
    pub expected: u64,
    /// Send-to-receive times, ns, of the matched packets.
    pub lat: Vec<u64>,
    pub neg: u64,
    pub unmatched: u64,
    pub late: u64,
    pub gaps: u64,
    pub gaps_over_30: u64,
    pub max_gap: u64,
    pub seq_breaks: u64,
    pub ts_breaks: u64,
    /// Packets whose frame count from the first packet differs by sequence
    /// number and by timestamp (a cross-check of the matching).
    pub idx_disagree: u64,
}

/// What a direction's packets must look like at the receiver.
pub struct Expect {
    pub pt: u8,
    /// Payload size, if fixed.
    pub len: Option<u16>,
    /// Timestamp units per 20 ms.
    pub step: u32,
}

impl Dir {
    /// Add one stream: `got` what its receiver recorded, `sent` the send
    /// times of the input it is the transcoding of; only packets received in
    /// `[w0, w1]` count.
    pub fn add(&mut self, got: &[Rx], sent: &[u64], e: &Expect, (w0, w1): (u64, u64)) {
        let Some(first) = got.first() else { return };
        let mut prev: Option<&Rx> = None;
        for r in got {
            if r.at < w0 || r.at > w1 {
                prev = None;
                continue;
            }
            self.packets += 1;
            if r.pt == e.pt && e.len.is_none_or(|l| l == r.len) {
                self.expected += 1;
            }
            let dts = r.ts.wrapping_sub(first.ts);
            let by_ts = (dts % e.step == 0).then_some((dts / e.step) as usize);
            // 65536 frames are 22 minutes: no wrap within a run.
            let by_seq = usize::from(r.seq.wrapping_sub(first.seq));
            if by_ts != Some(by_seq) {
                self.idx_disagree += 1;
            }
            let (hi, lo) = by_ts.map_or((by_seq, by_seq), |t| (t.max(by_seq), t.min(by_seq)));
            let input = [hi, lo]
                .into_iter()
                .find_map(|i| sent.get(i).copied().filter(|&s| s <= r.at));
            match input {
                Some(s) => {
                    let l = r.at - s;
                    self.lat.push(l);
                    if l > FRAME_NS {
                        self.late += 1;
                    }
                }
                None if sent.get(lo).is_some() => self.neg += 1,
                None => self.unmatched += 1,
            }
            if let Some(p) = prev {
                let gap = r.at.saturating_sub(p.at);
                self.gaps += 1;
                self.max_gap = self.max_gap.max(gap);
                if gap > GAP_NS {
                    self.gaps_over_30 += 1;
                }
                let dseq = r.seq.wrapping_sub(p.seq);
                if dseq != 1 {
                    self.seq_breaks += 1;
                }
                if r.ts.wrapping_sub(p.ts) != e.step.wrapping_mul(u32::from(dseq)) {
                    self.ts_breaks += 1;
                }
            }
            prev = Some(r);
        }
    }

    /// Sort the latencies (before [`Dir::pct_ms`]).
    pub fn sort(&mut self) {
        self.lat.sort_unstable();
    }

    /// The latency below which a fraction `q` of matched packets fall, ms
    /// (after [`Dir::sort`]).
    pub fn pct_ms(&self, q: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat.len() as f64 * q).ceil() as usize).clamp(1, self.lat.len()) - 1;
        self.lat[i] as f64 / 1e6
    }

    /// One human-readable line.
    pub fn line(&mut self, name: &str) -> String {
        self.sort();
        format!(
            "{name}: {} packets, {} as expected; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; \
             late (> 20 ms) {} ({:.4}%); unmatched {}, negative {}; gaps > 30 ms {} of {}, max gap {:.1} ms; \
             seq breaks {}, ts breaks {}; seq and ts disagree on the frame {}",
            self.packets,
            self.expected,
            self.pct_ms(0.5),
            self.pct_ms(0.99),
            self.pct_ms(0.999),
            self.pct_ms(1.0),
            self.late,
            100.0 * self.late as f64 / self.lat.len().max(1) as f64,
            self.unmatched,
            self.neg,
            self.gaps_over_30,
            self.gaps,
            self.max_gap as f64 / 1e6,
            self.seq_breaks,
            self.ts_breaks,
            self.idx_disagree,
        )
    }

    /// Both directions together.
    pub fn merge(mut self, o: &Dir) -> Dir {
        self.packets += o.packets;
        self.expected += o.expected;
        self.lat.extend_from_slice(&o.lat);
        self.neg += o.neg;
        self.unmatched += o.unmatched;
        self.late += o.late;
        self.gaps += o.gaps;
        self.gaps_over_30 += o.gaps_over_30;
        self.max_gap = self.max_gap.max(o.max_gap);
        self.seq_breaks += o.seq_breaks;
        self.ts_breaks += o.ts_breaks;
        self.idx_disagree += o.idx_disagree;
        self
    }
}
