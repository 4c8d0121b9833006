//! Every DTMF pairing end to end: each of 0123456789*#ABCD arrives exactly
//! once, in order, at 40 ms on / 40 ms off and at 100 ms on.

use super::bridge::{EventsToInband, InbandToEvents};
use super::testsig::digit_sequence;
use super::*;

const ALL: &str = "0123456789*#ABCD";

/// Collects the digits a telephone-event stream carries, checking each
/// begins once and ends (three end packets are one end).
fn digits_of(packets: &[EventPacket], rate: u32) -> String {
    let mut rx = EventReceiver::new(rate, rate);
    let mut s = String::new();
    let mut ends = 0;
    for p in packets {
        for ev in rx.handle(p.timestamp, &p.payload.to_bytes()) {
            match ev {
                ReceivedEvent::Began { digit, .. } => s.push(digit.to_char()),
                ReceivedEvent::Ended { .. } => ends += 1,
                ReceivedEvent::Continued { .. } => {}
            }
        }
    }
    assert_eq!(ends, s.len(), "every digit ends once");
    s
}

/// In-band PCM through [`InbandToEvents`] in 20 ms frames.
fn inband_to_events(pcm_rate: u32, clock: u32, pcm: &[i16]) -> Vec<EventPacket> {
    let mut bridge = InbandToEvents::new(pcm_rate, clock);
    let frame = pcm_rate as usize / 50;
    let mut out = Vec::new();
    let mut padded = pcm.to_vec();
    padded.resize(pcm.len() + 10 * frame, 0);
    for (i, f) in padded.chunks(frame).enumerate() {
        out.extend(bridge.push_frame(f, 5000 + i as u32 * clock / 50));
    }
    out
}

/// Packets of `digits` as a sender would emit them, 20 ms apart.
fn event_stream(rate: u32, digits: &str, on_ms: u32, off_ms: u32) -> Vec<(u64, EventPacket)> {
    let mut tx = EventSender::new(10);
    let step = rate / 50;
    let (on, off) = (rate * on_ms / 1000, rate * off_ms / 1000);
    let mut t = 0u32;
    let mut v = Vec::new();
    for c in digits.chars() {
        let d = Digit::from_char(c).unwrap();
        let start = t;
        let mut dur = step.min(on);
        v.extend(
            tx.start(d, start, dur)
                .into_iter()
                .map(|p| ((start + dur) as u64, p)),
        );
        while dur < on {
            dur = (dur + step).min(on);
            let ps = if dur == on {
                tx.end(dur)
            } else {
                tx.update(dur)
            };
            v.extend(ps.into_iter().map(|p| ((start + dur) as u64, p)));
        }
        t += on + off;
    }
    v
}

/// Plays an event stream (each packet at its send time) through
/// [`EventsToInband`] into PCM at `pcm_rate`.
fn events_to_inband(stream: &[(u64, EventPacket)], clock: u32, pcm_rate: u32) -> Vec<i16> {
    let mut bridge = EventsToInband::new(clock, pcm_rate);
    let frame = pcm_rate as usize / 50;
    let last = stream.last().map_or(0, |p| p.0) * pcm_rate as u64 / clock as u64;
    let mut pcm = Vec::new();
    let mut next = 0;
    let mut pos = 0u64;
    while pos < last + 2 * pcm_rate as u64 {
        while next < stream.len() && stream[next].0 * (pcm_rate as u64) / clock as u64 <= pos {
            let p = &stream[next].1;
            bridge.handle_packet(p.timestamp, &p.payload.to_bytes());
            next += 1;
        }
        let mut f = vec![0i16; frame];
        bridge.fill(&mut f);
        pcm.extend(f);
        pos += frame as u64;
    }
    pcm
}

fn detect_all(rate: u32, pcm: &[i16]) -> String {
    let mut det = Detector::new(DetectorConfig {
        sample_rate: rate,
        ..DetectorConfig::default()
    });
    det.push(pcm);
    det.push(&vec![0; rate as usize / 10]);
    let mut s = String::new();
    while let Some(ev) = det.poll_event() {
        if let DtmfEvent::Began { digit, .. } = ev {
            s.push(digit.to_char());
        }
    }
    s
}

#[test]
fn inband_to_rfc4733() {
    for (pcm_rate, clock) in [(8000, 8000), (16000, 8000), (8000, 48000)] {
        for (on, off) in [(40, 40), (100, 100)] {
            let pcm = digit_sequence(pcm_rate, ALL, on, off, 40);
            let packets = inband_to_events(pcm_rate, clock, &pcm);
            assert_eq!(
                digits_of(&packets, clock),
                ALL,
                "{pcm_rate}->{clock} {on}/{off}"
            );
            // End packets: three per digit, and durations near the tone's.
            let ends: Vec<&EventPacket> = packets.iter().filter(|p| p.payload.end).collect();
            assert_eq!(ends.len(), 3 * ALL.len());
            for e in ends {
                let ms = e.payload.duration as u32 * 1000 / clock;
                assert!(ms.abs_diff(on) <= 26, "{ms} ms for {on}");
            }
        }
    }
}

#[test]
fn rfc4733_to_inband() {
    for (clock, pcm_rate) in [(8000, 8000), (48000, 8000), (8000, 16000), (48000, 16000)] {
        for (on, off) in [(40, 40), (100, 100), (100, 40)] {
            let stream = event_stream(clock, ALL, on, off);
            let pcm = events_to_inband(&stream, clock, pcm_rate);
            assert_eq!(
                detect_all(pcm_rate, &pcm),
                ALL,
                "{clock}->{pcm_rate} Hz {on}/{off}"
            );
        }
    }
}

#[test]
fn rfc4733_to_inband_keeps_digits_apart_when_events_bunch_up() {
    // All sixteen events arrive at once (jitter): tones still play one by one.
    let stream: Vec<(u64, EventPacket)> = event_stream(8000, ALL, 40, 40)
        .into_iter()
        .map(|(_, p)| (0, p))
        .collect();
    let pcm = events_to_inband(&stream, 8000, 8000);
    assert_eq!(detect_all(8000, &pcm), ALL);
}

#[test]
fn rfc4733_to_info_and_back() {
    for (clock, on) in [(8000, 40), (48000, 100)] {
        let stream = event_stream(clock, ALL, on, 40);
        // Leg A: telephone-events to INFO bodies, one per digit, at its end.
        let mut rx = EventReceiver::new(clock, 1000); // durations in ms
        let mut bodies = Vec::new();
        for (_, p) in &stream {
            for ev in rx.handle(p.timestamp, &p.payload.to_bytes()) {
                if let ReceivedEvent::Ended { digit, duration } = ev {
                    bodies.push(info::build_relay(digit, duration));
                }
            }
        }
        assert_eq!(bodies.len(), ALL.len());
        assert_eq!(bodies[5], format!("Signal=5\r\nDuration={on}\r\n"));
        // Leg B: INFO bodies to telephone-events at 8000 Hz.
        let mut tx = EventSender::new(10);
        let mut out = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            let info = info::parse(info::DTMF_RELAY, b.as_bytes()).unwrap();
            let ticks = info.duration_ms.unwrap_or(info::DEFAULT_DURATION_MS) * 8;
            out.extend(tx.start(info.digit, i as u32 * 2000, 0));
            out.extend(tx.end(ticks));
        }
        assert_eq!(digits_of(&out, 8000), ALL);
    }
}

#[test]
fn inband_to_info() {
    let pcm = digit_sequence(8000, ALL, 40, 40, 0);
    let mut det = Detector::new(DetectorConfig::default());
    det.push(&pcm);
    det.push(&[0; 800]);
    let mut got = String::new();
    while let Some(ev) = det.poll_event() {
        if let DtmfEvent::Ended { digit, .. } = ev {
            let body = info::build_dtmf(digit);
            got.push(
                info::parse(info::DTMF, body.as_bytes())
                    .unwrap()
                    .digit
                    .to_char(),
            );
        }
    }
    assert_eq!(got, ALL);
}
