//! One leg's dialog (RFC 3261 §12) and the messages the gateway writes on it.
//!
//! Leg A is a UAS dialog (built from the caller's INVITE, §12.1.1), leg B a
//! UAC dialog (completed from the callee's 1xx/2xx, §12.1.2). Each keeps its
//! own Call-ID, tags, CSeq space, remote target and route set, so nothing of
//! one leg appears on the other.

use bytes::Bytes;

use crate::sip::message::{self, Header, HeaderName, Message, Method, StartLine, Uri};
use crate::sip::transport::{Flow, Transport};

/// What the gateway says about itself on a leg: Via sent-by and Contact.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    /// `host:port` (or FQDN) of the listener this leg uses (shared with
    /// the B2BUA's configuration: no copy per leg).
    pub sent_by: std::sync::Arc<str>,
    /// Transport of the leg.
    pub transport: Transport,
}

impl Local {
    /// The `Contact` header for this leg (RFC 3261 §8.1.1.8), written in
    /// one buffer.
    pub fn contact_header(&self) -> Header {
        Header::build(HeaderName::Contact, |v| self.write_contact(v))
    }

    /// Append the `Contact` value of [`Local::contact_header`] to `v`.
    pub fn write_contact(&self, v: &mut Vec<u8>) {
        v.extend_from_slice(b"<sip:");
        v.extend_from_slice(self.sent_by.as_bytes());
        if self.transport == Transport::Tcp {
            v.extend_from_slice(b";transport=tcp");
        }
        v.push(b'>');
    }

    /// Append a Via value with `branch` to `v` (RFC 3261 §8.1.1.7, RFC 3581
    /// `rport`).
    pub fn write_via(&self, v: &mut Vec<u8>, branch: &str) {
        v.extend_from_slice(b"SIP/2.0/");
        v.extend_from_slice(self.transport.via_token().as_bytes());
        v.push(b' ');
        v.extend_from_slice(self.sent_by.as_bytes());
        v.extend_from_slice(b";branch=");
        v.extend_from_slice(branch.as_bytes());
        v.extend_from_slice(b";rport");
    }
}

/// One leg's dialog state.
#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    /// This leg's Call-ID.
    pub call_id: Bytes,
    /// Our tag (From on leg B, To on leg A).
    pub local_tag: String,
    /// Our URI as a header value without tag (`<sip:...>` or with display name).
    pub local_uri: Bytes,
    /// The peer's From/To value as it must appear in our requests, tag included
    /// once known.
    pub remote_hdr: Bytes,
    /// The peer's tag, once known.
    pub remote_tag: Option<Bytes>,
    /// Next CSeq number for requests we send.
    pub local_cseq: u32,
    /// Highest CSeq number seen from the peer.
    pub remote_cseq: u32,
    /// Request-URI of our in-dialog requests: the peer's Contact.
    pub remote_target: Uri,
    /// The Contact header value `remote_target` was last learned from, when
    /// it was the response's only Contact header: an unchanged one (the 180
    /// then the 200 of one call) is not parsed again.
    pub remote_contact: Bytes,
    /// Route values for our in-dialog requests, in order (§12.1.1/§12.1.2).
    pub route_set: Vec<Bytes>,
    /// Where our requests go (the peer's source address or the trunk).
    pub flow: Flow,
    /// Our Via/Contact on this leg.
    pub local: Local,
}

impl Dialog {
    /// Leg A from the caller's INVITE (§12.1.1): route set = Record-Route as
    /// received, remote target = Contact, requests go back where it came from.
    pub fn uas(invite: &Message, flow: Flow, local: Local, local_tag: String) -> Option<Dialog> {
        let from = invite.header(HeaderName::From)?.value_bytes();
        let to = invite.header(HeaderName::To)?.value_bytes();
        let target = invite
            .first_contact()
            .map(|c| c.uri)
            .or_else(|| invite.uri().cloned())?;
        Some(Dialog {
            call_id: Bytes::copy_from_slice(invite.call_id()),
            local_tag,
            local_uri: to,
            remote_hdr: from,
            remote_tag: invite.from_tag(),
            local_cseq: 1,
            remote_cseq: invite.cseq().map_or(0, |c| c.seq),
            remote_target: target,
            remote_contact: Bytes::new(),
            route_set: values(invite, HeaderName::RecordRoute),
            flow,
            local,
        })
    }

    /// Append the `From` (leg B) or `To` (leg A) value we write to `v`: our
    /// URI bytes as received or configured, then our tag.
    fn write_local_hdr(&self, v: &mut Vec<u8>) {
        v.extend_from_slice(&self.local_uri);
        v.extend_from_slice(b";tag=");
        v.extend_from_slice(self.local_tag.as_bytes());
    }

    /// Completes a UAC dialog from a 1xx/2xx with a To tag (§12.1.2): tag,
    /// remote target (Contact), route set (Record-Route reversed).
    pub fn learn_from_response(&mut self, resp: &Message) {
        if let Some(tag) = resp.to_tag()
            && self.remote_tag.as_ref() != Some(&tag)
        {
            if let Some(to) = resp.header(HeaderName::To) {
                self.remote_hdr = to.value_bytes();
            }
            self.remote_tag = Some(tag);
        }
        let mut contacts = resp.headers_of(HeaderName::Contact);
        let only = match (contacts.next(), contacts.next()) {
            (Some(h), None) => Some(h),
            _ => None,
        };
        let unchanged = only.is_some_and(|h| {
            !self.remote_contact.is_empty() && h.value() == &self.remote_contact[..]
        });
        if !unchanged && let Some(c) = resp.first_contact() {
            self.remote_target = c.uri;
            self.remote_contact = only.map(|h| h.value_bytes()).unwrap_or_default();
        }
        let mut rr = values(resp, HeaderName::RecordRoute);
        if !rr.is_empty() {
            rr.reverse();
            self.route_set = rr;
        }
    }

    /// An in-dialog request (§12.2.1.1) with the next CSeq (ACK and CANCEL
    /// are built elsewhere: they reuse their INVITE's CSeq).
    pub fn request(
        &mut self,
        method: Method,
        branch: &str,
        extra: Vec<Header>,
        body: Option<(Bytes, &str)>,
    ) -> Message {
        let seq = self.local_cseq;
        self.local_cseq = self.local_cseq.wrapping_add(1);
        self.request_with_cseq(method, seq, branch, extra, body)
    }

    /// An in-dialog request with an explicit CSeq number (ACK for a 2xx).
    pub fn request_with_cseq(
        &self,
        method: Method,
        seq: u32,
        branch: &str,
        extra: Vec<Header>,
        body: Option<(Bytes, &str)>,
    ) -> Message {
        let mut headers = Vec::with_capacity(10 + self.route_set.len() + extra.len());
        // One buffer for every line we write (one allocation, not ten).
        let mut batch = message::HeaderBatch::with_capacity(7 + self.route_set.len());
        batch.add(HeaderName::Via, |v| self.local.write_via(v, branch));
        batch.add_value(HeaderName::MaxForwards, b"70");
        batch.add(HeaderName::From, |v| self.write_local_hdr(v));
        batch.add_value(HeaderName::To, &self.remote_hdr);
        batch.add_value(HeaderName::CallId, &self.call_id);
        batch.add(HeaderName::CSeq, |v| {
            message::text::push_dec(v, u64::from(seq));
            v.push(b' ');
            v.extend_from_slice(method.as_bytes());
        });
        for r in &self.route_set {
            batch.add_value(HeaderName::Route, r);
        }
        if matches!(
            method,
            Method::Invite | Method::Update | Method::Refer | Method::Subscribe | Method::Notify
        ) {
            batch.add(HeaderName::Contact, |v| self.local.write_contact(v));
        }
        batch.finish_into(&mut headers);
        headers.extend(extra);
        let mut msg = Message {
            start: StartLine::Request {
                method,
                uri: self.remote_target.clone(),
            },
            headers,
            body: Bytes::new(),
        };
        match body {
            Some((b, ct)) => msg.set_body(b, Some(ct)),
            None => msg.set_body(Bytes::new(), None),
        }
        msg
    }

    /// Whether `msg` (a request from the peer) belongs to this dialog by tags.
    pub fn matches_request(&self, msg: &Message) -> bool {
        msg.to_tag().as_deref() == Some(self.local_tag.as_bytes())
            && (self.remote_tag.is_none() || msg.from_tag() == self.remote_tag)
    }
}

/// Every value of a list header, in order (one per comma-separated element).
fn values(msg: &Message, name: HeaderName) -> Vec<Bytes> {
    msg.list_values(name)
        .into_iter()
        .map(|(owner, range)| owner.slice(range))
        .collect()
}

/// A response the gateway writes to `req` (§8.2.6): Via, From, Call-ID, CSeq
/// copied; To copied with `to_tag` added when it has none (not on 100); the
/// body, if any, with its Content-Type.
pub(crate) fn response(
    req: &Message,
    code: u16,
    reason: &str,
    to_tag: &str,
    extra: Vec<Header>,
    body: Option<(Bytes, &str)>,
) -> Message {
    let mut msg = message::response_with_tag(req, code, reason, to_tag, extra);
    if let Some((b, ct)) = body {
        msg.set_body(b, Some(ct));
    }
    msg
}

/// A CANCEL for a client INVITE we sent (§9.1): same Request-URI, Call-ID,
/// From, To, CSeq number and top Via as the INVITE.
pub(crate) fn cancel_for(invite: &Message) -> Option<Message> {
    let mut headers = Vec::with_capacity(7);
    headers.push(invite.header(HeaderName::Via)?.clone());
    headers.push(Header::new(HeaderName::MaxForwards, "70"));
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        headers.push(invite.header(name)?.clone());
    }
    let seq = invite.cseq()?.seq;
    headers.push(Header::new(HeaderName::CSeq, format!("{seq} CANCEL")));
    for r in invite.headers_of(HeaderName::Route) {
        headers.push(r.clone());
    }
    headers.push(Header::new(HeaderName::ContentLength, "0"));
    Some(Message {
        start: StartLine::Request {
            method: Method::Cancel,
            uri: invite.uri()?.clone(),
        },
        headers,
        body: Bytes::new(),
    })
}
