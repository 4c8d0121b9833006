//! RFC 3261 §18.2 server transport rules and RFC 3581 `rport`: stamping the
//! top Via of a received request and choosing where its responses go.

use std::net::{IpAddr, SocketAddr};

use super::Flow;
use crate::sip::message::{Header, HeaderName, Message, ViaRef};
use crate::sip::message::{scan, text};

/// Default SIP port for `sip:` over UDP/TCP (RFC 3261 §19.1.2).
const DEFAULT_PORT: u16 = 5060;

/// Parse a Via host (`192.0.2.1`, `[2001:db8::1]`) as an IP literal.
fn host_ip(host: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(host).ok()?;
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// Parse a `received`/`maddr` parameter value (brackets tolerated).
fn param_ip(v: &[u8]) -> Option<IpAddr> {
    host_ip(v)
}

/// Stamp the top Via of a request received from `source`
/// (modifies the first Via value only; other values on the line are kept
/// byte-for-byte):
///
/// - RFC 3261 §18.2.1: add `received=<source ip>` when the sent-by host is a
///   domain name or an IP address different from the source address;
/// - RFC 3581 §4: when `rport` is present without a value, fill in the source
///   port, and add `received` even when the address is the same.
///
/// An existing `received` value is replaced, so calling this twice is harmless.
pub fn add_received_rport(msg: &mut Message, source: SocketAddr) {
    let Some(idx) = msg.headers.iter().position(|h| h.name == HeaderName::Via) else {
        return;
    };
    let owner = msg.headers[idx].value_bytes();
    let Some(Ok(first)) = scan::list_items(&owner).next() else {
        return;
    };
    let Ok(via) = ViaRef::parse(first) else {
        return;
    };
    // The first `rport` (when it has no value) and the first `received`.
    let (mut rport, mut rport_empty_end, mut received) = (false, None, None);
    for p in scan::params(via.params).map_while(Result::ok) {
        if !rport && p.name.eq_ignore_ascii_case(b"rport") {
            rport = true;
            if p.value.is_none() {
                rport_empty_end = Some(scan::range_in(&owner, p.name).1);
            }
        } else if received.is_none() && p.name.eq_ignore_ascii_case(b"received") {
            let (_, name_end) = scan::range_in(&owner, p.name);
            let end = p.value.map_or(name_end, |v| scan::range_in(&owner, v).1);
            received = Some((name_end, end));
        }
    }
    let same_ip = host_ip(via.host) == Some(source.ip());
    if same_ip && rport_empty_end.is_none() {
        return;
    }
    /// What goes at an edit position.
    #[derive(Clone, Copy)]
    enum Edit {
        /// `=<source port>` after a bare `rport`.
        RportValue,
        /// `=<source ip>` for an existing `received` (its old value replaced).
        ReceivedValue,
        /// `;received=<source ip>` at the end of the Via element.
        ReceivedParam,
    }
    // Edits as (start, end, what) byte ranges of `owner`, in order.
    let mut edits = [(0, 0, Edit::RportValue); 2];
    let mut n = 0;
    if let Some(end) = rport_empty_end {
        edits[n] = (end, end, Edit::RportValue);
        n += 1;
    }
    edits[n] = match received {
        Some((at, until)) => (at, until, Edit::ReceivedValue),
        None => {
            let (_, end) = scan::range_in(&owner, first);
            (end, end, Edit::ReceivedParam)
        }
    };
    n += 1;
    let edits = &mut edits[..n];
    edits.sort_by_key(|e| e.0);
    let mut value = Vec::with_capacity(owner.len() + 48);
    let mut pos = 0;
    for &(a, b, what) in edits.iter() {
        value.extend_from_slice(&owner[pos..a]);
        match what {
            Edit::RportValue => {
                value.push(b'=');
                text::push_dec(&mut value, u64::from(source.port()));
            }
            Edit::ReceivedValue | Edit::ReceivedParam => {
                if matches!(what, Edit::ReceivedParam) {
                    value.extend_from_slice(b";received");
                }
                value.push(b'=');
                text::push_ip(&mut value, source.ip());
            }
        }
        pos = b;
    }
    value.extend_from_slice(&owner[pos..]);
    msg.headers[idx] = Header::with_name_bytes(msg.headers[idx].raw_name(), value);
}

/// Where a response to the request `msg` (received on `flow`) is sent,
/// RFC 3261 §18.2.2 and RFC 3581 §4:
///
/// - `symmetric` (an SBC behind NAT) or a reliable transport: back to the
///   request's source on the same flow (the same connection for TCP);
/// - `maddr` (an IP literal): that address, sent-by port or 5060;
/// - `rport` present: the source address and port of the request;
/// - `received`: that address, sent-by port or 5060;
/// - otherwise the sent-by address (an IP literal), sent-by port or 5060;
///   a sent-by domain name cannot be resolved here, so the source IP is used
///   with the sent-by port.
pub fn response_target(msg: &Message, flow: Flow, symmetric: bool) -> Flow {
    if symmetric || flow.transport.is_reliable() {
        return flow;
    }
    let Some(via) = msg.top_via_ref() else {
        return flow;
    };
    let port = via.port.unwrap_or(DEFAULT_PORT);
    let addr = if let Some(ip) = via.param("maddr").flatten().and_then(param_ip) {
        SocketAddr::new(ip, port)
    } else if via.param("rport").is_some() {
        flow.remote
    } else if let Some(ip) = via.param("received").flatten().and_then(param_ip) {
        SocketAddr::new(ip, port)
    } else if let Some(ip) = host_ip(via.host) {
        SocketAddr::new(ip, port)
    } else {
        SocketAddr::new(flow.remote.ip(), port)
    };
    if addr == flow.remote {
        flow
    } else {
        Flow {
            remote: addr,
            conn: None,
            ..flow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Transport;
    use super::*;
    use crate::sip::message::{Limits, parse_datagram};
    use bytes::Bytes;

    fn req(via: &str) -> Message {
        let s = format!(
            "OPTIONS sip:x@y SIP/2.0\r\nVia: {via}\r\nTo: <sip:x@y>\r\nFrom: <sip:a@b>;tag=1\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        parse_datagram(Bytes::from(s), &Limits::default()).unwrap()
    }

    fn src() -> SocketAddr {
        "198.51.100.7:40001".parse().unwrap()
    }

    fn flow(t: Transport) -> Flow {
        Flow {
            listener: 2,
            transport: t,
            remote: src(),
            conn: if t.is_reliable() { Some(9) } else { None },
        }
    }

    fn top_line(m: &Message) -> String {
        String::from_utf8(m.headers[0].raw_line().to_vec()).unwrap()
    }

    #[test]
    fn received_added_when_address_differs() {
        let mut m = req("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa");
        add_received_rport(&mut m, src());
        assert_eq!(
            top_line(&m),
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;received=198.51.100.7"
        );
        let mut m = req("SIP/2.0/UDP pc.example.com;branch=z9hG4bKa");
        add_received_rport(&mut m, src());
        assert_eq!(
            m.top_via().unwrap().param("received"),
            Some(Some(&b"198.51.100.7"[..]))
        );
    }

    #[test]
    fn nothing_added_when_address_matches_without_rport() {
        let mut m = req("SIP/2.0/UDP 198.51.100.7:40001;branch=z9hG4bKa");
        add_received_rport(&mut m, src());
        assert_eq!(
            top_line(&m),
            "Via: SIP/2.0/UDP 198.51.100.7:40001;branch=z9hG4bKa"
        );
    }

    #[test]
    fn rport_filled_and_received_forced() {
        let mut m = req("SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bKa, SIP/2.0/UDP b;rport");
        add_received_rport(&mut m, src());
        assert_eq!(
            top_line(&m),
            "Via: SIP/2.0/UDP 198.51.100.7:5060;rport=40001;branch=z9hG4bKa;received=198.51.100.7, SIP/2.0/UDP b;rport"
        );
        // Idempotent: a second pass changes nothing.
        let before = top_line(&m);
        add_received_rport(&mut m, src());
        assert_eq!(top_line(&m), before);
    }

    #[test]
    fn existing_received_replaced_and_ipv6() {
        let mut m = req("SIP/2.0/UDP h;received=1.2.3.4;branch=z9hG4bKa");
        let v6: SocketAddr = "[2001:db8::5]:5070".parse().unwrap();
        add_received_rport(&mut m, v6);
        assert_eq!(
            top_line(&m),
            "Via: SIP/2.0/UDP h;received=2001:db8::5;branch=z9hG4bKa"
        );
    }

    #[test]
    fn targets() {
        let udp = flow(Transport::Udp);
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        // symmetric and reliable: the request's flow, untouched.
        let m = req("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKa");
        assert_eq!(response_target(&m, udp, true), udp);
        assert_eq!(
            response_target(&m, flow(Transport::Tcp), false),
            flow(Transport::Tcp)
        );
        // sent-by IP and port.
        assert_eq!(response_target(&m, udp, false).remote, sa("10.0.0.1:5062"));
        assert_eq!(response_target(&m, udp, false).listener, 2);
        // received + sent-by port (default 5060).
        let mut m = req("SIP/2.0/UDP pc.example.com;branch=z9hG4bKa");
        add_received_rport(&mut m, src());
        assert_eq!(
            response_target(&m, udp, false).remote,
            sa("198.51.100.7:5060")
        );
        // rport: source address and port.
        let mut m = req("SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bKa");
        add_received_rport(&mut m, src());
        assert_eq!(response_target(&m, udp, false), udp);
        // maddr wins.
        let m = req("SIP/2.0/UDP 10.0.0.1:5070;maddr=239.1.1.1;branch=z9hG4bKa");
        assert_eq!(response_target(&m, udp, false).remote, sa("239.1.1.1:5070"));
        // Domain name without received: source IP, sent-by port.
        let m = req("SIP/2.0/UDP pc.example.com:5080;branch=z9hG4bKa");
        assert_eq!(
            response_target(&m, udp, false).remote,
            sa("198.51.100.7:5080")
        );
    }
}
