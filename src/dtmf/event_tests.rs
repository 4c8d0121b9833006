//! Tests of the RFC 4733 sender, receiver and relay.

use super::*;

fn d(c: char) -> Digit {
    Digit::from_char(c).unwrap()
}

#[test]
fn payload_round_trips() {
    let p = EventPayload {
        event: 11,
        end: true,
        volume: 10,
        duration: 0x1234,
    };
    assert_eq!(p.to_bytes(), [11, 0x8A, 0x12, 0x34]);
    assert_eq!(EventPayload::parse(&p.to_bytes()), Some(p));
    // The R bit is ignored on input.
    assert_eq!(EventPayload::parse(&[11, 0xCA, 0x12, 0x34, 99]), Some(p));
    assert_eq!(EventPayload::parse(&[1, 2, 3]), None);
}

#[test]
fn sender_keeps_timestamp_marks_first_and_ends_three_times() {
    let mut tx = EventSender::new(10);
    let first = tx.start(d('5'), 1000, 0);
    assert_eq!(first.len(), 1);
    assert!(first[0].marker && !first[0].payload.end);
    assert_eq!((first[0].timestamp, first[0].payload.duration), (1000, 0));
    let mid = tx.update(160);
    assert_eq!(mid.len(), 1);
    assert!(!mid[0].marker);
    assert_eq!((mid[0].timestamp, mid[0].payload.duration), (1000, 160));
    let end = tx.end(800);
    assert_eq!(end.len(), 3);
    for p in &end {
        assert!(p.payload.end && !p.marker);
        assert_eq!(
            (p.timestamp, p.payload.duration, p.payload.event),
            (1000, 800, 5)
        );
    }
    assert_eq!(tx.active(), None);
    assert!(tx.end(900).is_empty() && tx.update(900).is_empty());
}

#[test]
fn long_events_are_segmented_and_reassembled() {
    // 5 s at 48 kHz = 240 000 ticks: three full segments and a rest.
    let mut tx = EventSender::new(0);
    let mut rx = EventReceiver::new(48000, 8000);
    let mut packets = tx.start(d('#'), 5, 0);
    let mut t = 0;
    while t < 240_000 {
        t += 960;
        packets.extend(tx.update(t));
    }
    packets.extend(tx.end(t));
    let timestamps: Vec<u32> = packets.iter().map(|p| p.timestamp).collect();
    assert!(timestamps.contains(&(5 + 3 * 0xFFFF)));
    assert!(packets.iter().all(|p| p.payload.duration as u32 <= 0xFFFF));
    let events: Vec<ReceivedEvent> = packets
        .iter()
        .flat_map(|p| rx.handle(p.timestamp, &p.payload.to_bytes()))
        .filter(|e| !matches!(e, ReceivedEvent::Continued { .. }))
        .collect();
    assert_eq!(
        events,
        vec![
            ReceivedEvent::Began {
                digit: d('#'),
                duration: 0
            },
            ReceivedEvent::Ended {
                digit: d('#'),
                duration: t / 6
            }
        ]
    );
}

/// Packets of one 100 ms digit at `rate`, 20 ms apart, end sent three times.
fn digit_packets(digit: Digit, ts: u32, rate: u32, ms: u32) -> Vec<EventPacket> {
    let step = rate / 50;
    let total = rate * ms / 1000;
    let mut tx = EventSender::new(10);
    let mut v = tx.start(digit, ts, step.min(total));
    let mut t = step;
    while t + step < total {
        t += step;
        v.extend(tx.update(t));
    }
    v.extend(tx.end(total));
    v
}

#[test]
fn relay_converts_48000_to_8000_and_back() {
    for (in_rate, out_rate) in [(48000, 8000), (8000, 48000)] {
        let mut relay = EventRelay::new(in_rate, out_rate, 10);
        let out: Vec<EventPacket> = digit_packets(d('7'), 123_456, in_rate, 100)
            .iter()
            .flat_map(|p| relay.handle(p.timestamp, &p.payload.to_bytes(), 777))
            .collect();
        assert!(out[0].marker);
        assert!(
            out.iter()
                .all(|p| p.timestamp == 777 && p.payload.event == 7)
        );
        let durations: Vec<u16> = out.iter().map(|p| p.payload.duration).collect();
        let step = out_rate as u16 / 50;
        let expect: Vec<u16> = (1..=5).map(|k| k * step).chain([5 * step; 2]).collect();
        assert_eq!(durations, expect, "{in_rate}->{out_rate}");
        // Exactly three end packets, at the end.
        assert_eq!(out.iter().filter(|p| p.payload.end).count(), 3);
        assert!(out[out.len() - 3..].iter().all(|p| p.payload.end));
    }
}

/// A lossy network: which of a digit's packets arrive, in what order.
#[derive(Debug, Clone, Copy)]
enum Net {
    Clean,
    LoseStart,
    LoseAllButOneEnd,
    LoseAllEnds,
    OnlyEnds,
    Duplicate,
    SwapLastTwo,
}

fn mangle(net: Net, v: Vec<EventPacket>) -> Vec<EventPacket> {
    let n = v.len();
    match net {
        Net::Clean => v,
        Net::LoseStart => v[2.min(n - 1)..].to_vec(),
        Net::LoseAllButOneEnd => v[..n - 2].to_vec(),
        Net::LoseAllEnds => v.into_iter().filter(|p| !p.payload.end).collect(),
        Net::OnlyEnds => v.into_iter().filter(|p| p.payload.end).collect(),
        Net::Duplicate => v.iter().flat_map(|p| [*p, *p]).collect(),
        Net::SwapLastTwo => {
            let mut v = v;
            v.swap(n - 4, n - 3);
            v
        }
    }
}

#[test]
fn every_digit_once_in_order_through_any_loss_pattern() {
    let digits: Vec<Digit> = "0123456789*#ABCD".chars().map(d).collect();
    for net in [
        Net::Clean,
        Net::LoseStart,
        Net::LoseAllButOneEnd,
        Net::LoseAllEnds,
        Net::OnlyEnds,
        Net::Duplicate,
        Net::SwapLastTwo,
    ] {
        for (in_rate, out_rate, ms) in [
            (48000, 8000, 40),
            (8000, 48000, 40),
            (8000, 8000, 100),
            (48000, 8000, 100),
        ] {
            let mut relay = EventRelay::new(in_rate, out_rate, 10);
            let mut far = EventReceiver::new(out_rate, out_rate);
            let mut got = Vec::new();
            let mut ends = 0;
            for (i, &digit) in digits.iter().enumerate() {
                let ts = 1_000_000 + i as u32 * in_rate / 5; // one digit per 200 ms
                for p in mangle(net, digit_packets(digit, ts, in_rate, ms)) {
                    for q in relay.handle(p.timestamp, &p.payload.to_bytes(), 40 * i as u32) {
                        ends += q.payload.end as usize;
                        for ev in far.handle(q.timestamp, &q.payload.to_bytes()) {
                            match ev {
                                ReceivedEvent::Began { digit, .. } => got.push(digit),
                                ReceivedEvent::Ended { digit, .. } => {
                                    assert_eq!(Some(&digit), got.last(), "{net:?}")
                                }
                                ReceivedEvent::Continued { .. } => {}
                            }
                        }
                    }
                }
            }
            for q in relay.timeout() {
                ends += q.payload.end as usize;
            }
            assert_eq!(got, digits, "{net:?} {in_rate}->{out_rate} {ms} ms");
            assert_eq!(ends, 3 * digits.len(), "{net:?}: three ends per digit");
        }
    }
}

#[test]
fn receiver_ignores_late_packets_and_times_out() {
    let mut rx = EventReceiver::new(8000, 8000);
    let a = digit_packets(d('1'), 1000, 8000, 100);
    let b = digit_packets(d('2'), 3000, 8000, 100);
    let mut events = Vec::new();
    for p in &a[..2] {
        events.extend(rx.handle(p.timestamp, &p.payload.to_bytes()));
    }
    events.extend(rx.handle(b[0].timestamp, &b[0].payload.to_bytes()));
    // A late end of digit 1 after digit 2 began.
    let late = a.last().unwrap();
    assert!(
        rx.handle(late.timestamp, &late.payload.to_bytes())
            .is_empty()
    );
    assert_eq!(rx.active(), Some(d('2')));
    events.extend(rx.timeout());
    assert_eq!(rx.timeout(), None);
    let kinds: Vec<(char, &str)> = events
        .iter()
        .map(|e| match e {
            ReceivedEvent::Began { digit, .. } => (digit.to_char(), "began"),
            ReceivedEvent::Continued { digit, .. } => (digit.to_char(), "cont"),
            ReceivedEvent::Ended { digit, .. } => (digit.to_char(), "ended"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ('1', "began"),
            ('1', "cont"),
            ('1', "ended"),
            ('2', "began"),
            ('2', "ended")
        ]
    );
    // Garbage and non-DTMF events are ignored.
    assert!(rx.handle(5000, &[1, 2]).is_empty());
    assert!(rx.handle(5000, &[36, 0, 0, 160]).is_empty());
}
