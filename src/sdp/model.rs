//! The lossless SDP model: every line kept as raw bytes plus a typed view,
//! session-level lines followed by media sections (RFC 8866 §5).

use bytes::Bytes;

use super::view::{Attribute, Connection, Direction, MediaLine, Origin, View};

/// One SDP line: raw bytes (without line ending) and its typed reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// A slice of the received body (no copy per line) or the canonical
    /// text of a line the gateway wrote.
    raw: Bytes,
    view: View,
}

impl Line {
    /// Builds a line from a typed view; the raw bytes are its canonical text.
    /// Used by rewrites for the lines they change. `View::Other` yields an
    /// empty line, so callers only pass typed views.
    pub(crate) fn from_view(view: View) -> Line {
        Line {
            raw: Bytes::from(view.to_string()),
            view,
        }
    }

    /// Builds an attribute line `a=<attr>`.
    pub(crate) fn attr(attr: Attribute) -> Line {
        Line::from_view(View::Attribute(attr))
    }

    pub(crate) fn from_parts(raw: Bytes, view: View) -> Line {
        Line { raw, view }
    }

    /// The bytes of the line as received, without CRLF.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The line type letter (`v`, `o`, `a`…).
    pub fn kind(&self) -> u8 {
        self.raw.first().copied().unwrap_or(b'?')
    }

    /// The typed view.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The attribute when this is an `a=` line.
    pub fn attribute(&self) -> Option<&Attribute> {
        match &self.view {
            View::Attribute(a) => Some(a),
            _ => None,
        }
    }
}

/// One `m=` section: its `m=` line and the lines that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    pub(crate) m: Line,
    pub(crate) desc: MediaLine,
    pub(crate) lines: Vec<Line>,
}

impl MediaSection {
    pub(crate) fn new(desc: MediaLine, lines: Vec<Line>) -> MediaSection {
        MediaSection {
            m: Line::from_view(View::Media(desc.clone())),
            desc,
            lines,
        }
    }

    /// The typed `m=` line.
    pub fn media_line(&self) -> &MediaLine {
        &self.desc
    }

    /// The `m=` line as received.
    pub fn m_line(&self) -> &Line {
        &self.m
    }

    /// The lines after `m=`, in order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Replaces the `m=` line (re-serialized canonically).
    pub(crate) fn set_media_line(&mut self, desc: MediaLine) {
        if desc != self.desc {
            self.m = Line::from_view(View::Media(desc.clone()));
            self.desc = desc;
        }
    }

    /// This section with `lines` after its `m=` line and its transport
    /// profile set to `proto` (the `m=` line is only rewritten if that
    /// changes it): what the security rewrites (strip, SDES) produce.
    pub(crate) fn with_lines_and_proto(&self, lines: Vec<Line>, proto: &str) -> MediaSection {
        let mut out = MediaSection {
            lines,
            ..self.clone()
        };
        out.set_media_line(MediaLine {
            proto: proto.into(),
            ..self.desc.clone()
        });
        out
    }

    /// The attributes of this section, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.lines.iter().filter_map(Line::attribute)
    }

    /// The media-level `c=`, if any (RFC 8866 §5.7).
    pub fn connection(&self) -> Option<&Connection> {
        self.lines.iter().find_map(|l| match l.view() {
            View::Connection(c) => Some(c),
            _ => None,
        })
    }

    /// The media-level direction attribute, if any.
    pub fn direction_attr(&self) -> Option<Direction> {
        self.attributes().find_map(|a| match a {
            Attribute::Direction(d) => Some(*d),
            _ => None,
        })
    }

    /// Whether an attribute with this name is present (`rtcp-mux`…).
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attributes().any(|a| a.name() == name)
    }
}

/// A parsed SDP body (RFC 8866). Serializing an unmodified CRLF body gives
/// back the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    pub(crate) session: Vec<Line>,
    pub(crate) media: Vec<MediaSection>,
}

impl Sdp {
    /// Session-level lines, starting with `v=`.
    pub fn session_lines(&self) -> &[Line] {
        &self.session
    }

    /// Media sections in order.
    pub fn media(&self) -> &[MediaSection] {
        &self.media
    }

    /// The `o=` line (its presence is checked by the parser).
    pub fn origin(&self) -> Option<&Origin> {
        self.session.iter().find_map(|l| match l.view() {
            View::Origin(o) => Some(o),
            _ => None,
        })
    }

    /// The session-level `c=`, if any.
    pub fn connection(&self) -> Option<&Connection> {
        self.session.iter().find_map(|l| match l.view() {
            View::Connection(c) => Some(c),
            _ => None,
        })
    }

    /// Session-level attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.session.iter().filter_map(Line::attribute)
    }

    /// The `c=` in effect for media section `index`: media level, else session level.
    pub fn media_connection(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(MediaSection::connection)
            .or_else(|| self.connection())
    }

    /// The direction in effect for media section `index` (RFC 8866 §6.7):
    /// media level, else session level, else sendrecv.
    pub fn media_direction(&self, index: usize) -> Direction {
        let session = self.attributes().find_map(|a| match a {
            Attribute::Direction(d) => Some(*d),
            _ => None,
        });
        self.media
            .get(index)
            .and_then(MediaSection::direction_attr)
            .or(session)
            .unwrap_or(Direction::SendRecv)
    }

    /// Serializes with CRLF line endings (RFC 8866 §5).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let media_lines = self
            .media
            .iter()
            .flat_map(|m| std::iter::once(&m.m).chain(&m.lines));
        for line in self.session.iter().chain(media_lines) {
            out.extend_from_slice(&line.raw);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Everything but the `o=` line, to tell whether content changed (RFC 3264 §8).
    pub(crate) fn content_without_origin(&self) -> Vec<&[u8]> {
        let media_lines = self
            .media
            .iter()
            .flat_map(|m| std::iter::once(&m.m).chain(&m.lines));
        self.session
            .iter()
            .chain(media_lines)
            .filter(|l| !matches!(l.view(), View::Origin(_)))
            .map(Line::raw)
            .collect()
    }
}

impl std::fmt::Display for Sdp {
    /// The serialized body (lossy for non-UTF-8 bytes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Sdp;
    use super::*;

    const BODY: &str = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp-mux\r\nm=audio 4002 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\na=inactive\r\n";

    #[test]
    fn accessors() {
        let sdp = Sdp::parse(BODY.as_bytes()).unwrap();
        assert_eq!(sdp.origin().unwrap().sess_version, 2);
        assert_eq!(sdp.connection().unwrap().address, "10.0.0.1");
        assert_eq!(sdp.media_connection(1).unwrap().address, "10.0.0.2");
        assert_eq!(sdp.media_connection(0).unwrap().address, "10.0.0.1");
        assert_eq!(sdp.media_direction(0), Direction::SendOnly);
        assert_eq!(sdp.media_direction(1), Direction::Inactive);
        assert!(sdp.media()[0].has_attribute("rtcp-mux"));
        assert_eq!(sdp.media()[0].m_line().kind(), b'm');
        assert_eq!(sdp.media()[0].lines().len(), 1);
        assert_eq!(sdp.session_lines()[0].raw(), b"v=0");
    }

    #[test]
    fn serialize_roundtrip_and_display() {
        let sdp = Sdp::parse(BODY.as_bytes()).unwrap();
        assert_eq!(sdp.to_bytes(), BODY.as_bytes());
        assert_eq!(sdp.to_string(), BODY);
        assert_eq!(sdp.content_without_origin().len(), 10);
    }

    #[test]
    fn set_media_line_keeps_raw_when_equal() {
        let sdp =
            Sdp::parse(b"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio  4000 RTP/AVP 0\r\n").unwrap();
        let mut m = sdp.media()[0].clone();
        m.set_media_line(m.media_line().clone());
        assert_eq!(m.m_line().raw(), b"m=audio  4000 RTP/AVP 0");
        let mut desc = m.media_line().clone();
        desc.port = 5000;
        m.set_media_line(desc);
        assert_eq!(m.m_line().raw(), b"m=audio 5000 RTP/AVP 0");
    }
}
