//! Unit tests of [`super::StreamRewriter`]: numbering, source switches,
//! returning sources and telephone-event extents.

use std::time::Duration;

use super::*;

const PCMU: [PtMapping; 1] = [PtMapping {
    from: 0,
    to: 0,
    clock_rate: 8000,
}];

#[test]
fn first_source_keeps_numbering_and_gets_our_ssrc() {
    let t0 = super::super::test_epoch();
    let mut rw = StreamRewriter::new(0xabcd, &PCMU);
    let r = rw.rewrite(t0, 0, 100, 5000, 1).unwrap();
    assert_eq!(
        (r.sequence, r.timestamp, r.ssrc, r.source_changed),
        (100, 5000, 0xabcd, true)
    );
    let r = rw.rewrite(t0, 0, 101, 5160, 1).unwrap();
    assert_eq!(
        (r.sequence, r.timestamp, r.source_changed),
        (101, 5160, false)
    );
    assert_eq!(rw.rewrite(t0, 8, 102, 5320, 1), None, "PT 8 not negotiated");
}

#[test]
fn source_switch_continues_seq_and_ts_with_wrapping() {
    let t0 = super::super::test_epoch();
    let mut rw = StreamRewriter::new(7, &PCMU);
    rw.rewrite(t0, 0, 65535, u32::MAX - 10, 1).unwrap();
    let t1 = t0 + Duration::from_millis(60);
    let r = rw.rewrite(t1, 0, 3, 12345, 2).unwrap();
    assert!(r.source_changed);
    assert_eq!(r.sequence, 0);
    assert_eq!(r.timestamp, (u32::MAX - 10).wrapping_add(480));
    assert_eq!(rw.source_ssrc(), Some(2));
    let r = rw
        .rewrite(t1 + Duration::from_millis(20), 0, 4, 12345 + 160, 2)
        .unwrap();
    assert_eq!(
        (r.sequence, r.timestamp),
        (1, (u32::MAX - 10).wrapping_add(640))
    );
}

#[test]
fn same_ssrc_restart_is_detected_but_reordering_is_not() {
    let t0 = super::super::test_epoch();
    let mut rw = StreamRewriter::new(7, &PCMU);
    rw.rewrite(t0, 0, 1000, 0, 1).unwrap();
    rw.rewrite(t0, 0, 1001, 160, 1).unwrap();
    let late = rw.rewrite(t0, 0, 999, 0, 1).unwrap();
    assert_eq!((late.sequence, late.source_changed), (999, false));
    let t1 = t0 + Duration::from_millis(20);
    let r = rw.rewrite(t1, 0, 40000, 99, 1).unwrap();
    assert!(r.source_changed);
    assert_eq!((r.sequence, r.timestamp), (1002, 160 + 160));
}

/// An own packet of internal source `id` at `pos`, ending at `end`.
fn own(id: u32, seq: u16, ts: u32, pos: u32, end: Option<u32>) -> OwnPacket {
    OwnPacket {
        payload_type: 0,
        clock: 8000,
        source: id,
        sequence: seq,
        timestamp: ts,
        position: pos,
        end,
        timeline: None,
    }
}

#[test]
fn a_switch_lands_on_whole_packets() {
    let t0 = super::super::test_epoch();
    let mut rw = StreamRewriter::new(7, &PCMU);
    rw.rewrite(t0, 0, 10, 0, 1).unwrap();
    rw.rewrite(t0 + Duration::from_millis(20), 0, 11, 160, 1)
        .unwrap();
    // 27 ms later (a late timer): the next slot, not 216 ticks on.
    let r = rw
        .rewrite(t0 + Duration::from_millis(47), 0, 500, 9000, 2)
        .unwrap();
    assert_eq!((r.sequence, r.timestamp), (12, 320));
}

#[test]
fn a_source_back_after_injected_packets_keeps_its_timeline() {
    let ms = |n: u64| super::super::test_epoch() + Duration::from_millis(n);
    let mut rw = StreamRewriter::new(7, &PCMU);
    for i in 0..3u16 {
        rw.rewrite(
            ms(20 * u64::from(i)),
            0,
            100 + i,
            5000 + 160 * u32::from(i),
            1,
        )
        .unwrap();
    }
    // Two tone packets in its place (slots of ts 5480 and 5640)...
    let r = rw.rewrite_own(ms(60), &OwnPacket::audio(0, 8000, 99, 7, 70));
    assert_eq!((r.sequence, r.timestamp), (103, 5480));
    rw.rewrite_own(ms(80), &OwnPacket::audio(0, 8000, 99, 8, 230));
    // ... then the source again, 3 ms late: its own timestamp.
    let r = rw.rewrite(ms(103), 0, 105, 5800, 1).unwrap();
    assert_eq!(
        (r.sequence, r.timestamp, r.source_changed),
        (105, 5800, true)
    );
    // Back on a timestamp overlapping the injected packets: after them.
    rw.rewrite_own(ms(120), &OwnPacket::audio(0, 8000, 99, 9, 390));
    let r = rw.rewrite(ms(140), 0, 107, 6000, 1).unwrap();
    assert_eq!((r.sequence, r.timestamp), (107, 5960 + 160));
}

#[test]
fn what_follows_a_telephone_event_starts_after_it() {
    let ms = |n: u64| super::super::test_epoch() + Duration::from_millis(n);
    let mut rw = StreamRewriter::new(7, &PCMU);
    rw.rewrite(ms(0), 0, 1, 0, 1).unwrap();
    rw.rewrite(ms(20), 0, 2, 160, 1).unwrap();
    // An event from ts 320: its packets keep the timestamp while the
    // run's position moves on; the last says it lasted 1000 ticks.
    for (i, d) in [160u32, 320, 480, 640, 800, 1000].into_iter().enumerate() {
        let pos = 320 + 160 * i as u32;
        let r = rw.rewrite_own(
            ms(40 + 20 * i as u64),
            &own(99, i as u16, 320, pos, Some(320 + d)),
        );
        assert_eq!(r.timestamp, 320);
    }
    // A new source right after the end packet: at the event's end, not
    // one packet after the event's start.
    let r = rw.rewrite(ms(145), 0, 77, 42, 3).unwrap();
    assert_eq!(r.timestamp, 1320);
    // An event that ended where the run stands: what follows may take
    // the run's position at once (one step would be ahead of time).
    let mut rw = StreamRewriter::new(7, &PCMU);
    rw.rewrite(ms(0), 0, 1, 0, 1).unwrap();
    rw.rewrite(ms(20), 0, 2, 160, 1).unwrap();
    rw.rewrite_own(ms(40), &own(99, 0, 320, 320, Some(480)));
    rw.rewrite_own(ms(60), &own(99, 1, 320, 480, Some(480)));
    let r = rw.rewrite(ms(62), 0, 78, 42, 3).unwrap();
    assert_eq!(r.timestamp, 480);
}

#[test]
fn pt_mapping_from_codecs() {
    let a = [
        Codec::new(111, "opus", 48000),
        Codec::new(0, "PCMU", 8000),
        Codec::new(126, "telephone-event", 48000),
        Codec::new(101, "telephone-event", 8000),
    ];
    let b = [
        Codec::new(0, "pcmu", 8000),
        Codec::new(96, "telephone-event", 8000),
    ];
    let m = map_codecs(&a, &b);
    assert_eq!(
        m,
        vec![
            PtMapping {
                from: 0,
                to: 0,
                clock_rate: 8000
            },
            PtMapping {
                from: 101,
                to: 96,
                clock_rate: 8000
            }
        ]
    );
    let mut rw = StreamRewriter::new(1, &m);
    assert_eq!(
        rw.rewrite(super::super::test_epoch(), 101, 1, 1, 1)
            .unwrap()
            .payload_type,
        96
    );
    assert_eq!(rw.mapping(111), None);
    rw.set_mappings(&[PtMapping {
        from: 111,
        to: 0,
        clock_rate: 8000,
    }]);
    assert_eq!(rw.mapping(111), Some((0, 8000)));
}

#[test]
fn packets_on_a_sources_timeline_take_its_offset() {
    let ms = |n: u64| super::super::test_epoch() + Duration::from_millis(n);
    let mut rw = StreamRewriter::new(7, &PCMU);
    rw.rewrite(ms(0), 0, 1, 0, 1).unwrap();
    let mut rw2 = rw;
    // A run on source 1's numbering (its slot at 40 ms: 320) keeps its offset.
    rw2.rewrite(ms(20), 0, 2, 160, 1).unwrap();
    assert_eq!(rw2.position_at(ms(39), 1, 8000), Some(320));
    let run = OwnPacket {
        timeline: Some(1),
        ..OwnPacket::audio(0, 8000, 99, 7, 320)
    };
    let r = rw2.rewrite_own(ms(39), &run);
    assert_eq!((r.sequence, r.timestamp, r.source_changed), (3, 320, true));
    // Source 1 after the run: on its own numbering, same offset.
    let r = rw2.rewrite(ms(60), 0, 4, 480, 1).unwrap();
    assert_eq!((r.sequence, r.timestamp), (4, 480));
}
