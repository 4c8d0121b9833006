//! rtpengine's ng control protocol (bencode over UDP): the N calls set up
//! as `offer` (Opus-only SDP from the caller plus `codec: { transcode:
//! [PCMU] }`, so rtpengine offers PCMU to the callee) and `answer` (PCMU-only
//! SDP from the callee), so rtpengine must transcode Opus <-> PCMU both ways;
//! `delete` at the end.

use crate::Legs;
pub use crate::ng_client::{Ben, Ng};
use crate::sdp::{OPUS_PT, callee_sdp, caller_sdp, sdp_media};

fn call_id(i: usize) -> String {
    format!("media-bench-{i}-{}", std::process::id())
}

/// One call through rtpengine: where the caller and the callee send.
pub fn setup_call(ng: &mut Ng, i: usize, a_port: u16, b_port: u16) -> Result<Legs, String> {
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

pub fn teardown(ng: &mut Ng, calls: usize) -> usize {
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
