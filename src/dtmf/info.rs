//! DTMF in SIP INFO bodies (RFC 6086 INFO; the body formats are de-facto
//! standards): `application/dtmf-relay` (`Signal=5\r\nDuration=160\r\n`,
//! duration in ms) and `application/dtmf` (the bare digit, `5`).
//!
//! Parsing is lenient about what peers really send: any case, spaces around
//! `=`, LF or CRLF, a numeric event code instead of the character
//! (`Signal=11` for `#`), unknown lines. Building is strict.

use std::fmt;

use super::Digit;

/// Content type of the key=value body.
pub const DTMF_RELAY: &str = "application/dtmf-relay";
/// Content type of the bare-digit body.
pub const DTMF: &str = "application/dtmf";
/// Duration assumed when a body gives none, ms.
pub const DEFAULT_DURATION_MS: u32 = 250;
/// Longest body accepted (network input has limits).
const MAX_BODY: usize = 1024;

/// One digit carried by an INFO request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfInfo {
    /// The digit.
    pub digit: Digit,
    /// Its duration in milliseconds, if the body said.
    pub duration_ms: Option<u32>,
}

/// Why an INFO body is not a DTMF digit (the UAS answers 415 for an unknown
/// content type, 400 otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoError {
    /// Neither `application/dtmf-relay` nor `application/dtmf`.
    UnsupportedContentType,
    /// No `Signal=` line, or an empty body.
    MissingSignal,
    /// A signal that is not one of the sixteen DTMF digits.
    BadSignal(String),
    /// Larger than 1 KiB or not UTF-8.
    BadBody,
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfoError::UnsupportedContentType => f.write_str("unsupported DTMF content type"),
            InfoError::MissingSignal => f.write_str("no DTMF signal in body"),
            InfoError::BadSignal(s) => write!(f, "not a DTMF digit: {s:?}"),
            InfoError::BadBody => f.write_str("body too large or not UTF-8"),
        }
    }
}

impl std::error::Error for InfoError {}

impl InfoError {
    /// The SIP status code a UAS answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            InfoError::UnsupportedContentType => 415,
            _ => 400,
        }
    }
}

/// A digit from its textual form: the character, or its event code 0–15.
fn signal(s: &str) -> Result<Digit, InfoError> {
    let s = s.trim();
    let mut chars = s.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && let Some(d) = Digit::from_char(c)
    {
        return Ok(d);
    }
    s.parse::<u8>()
        .ok()
        .and_then(Digit::from_event)
        .ok_or_else(|| InfoError::BadSignal(s.chars().take(16).collect()))
}

/// Parses an INFO body of `content_type` (parameters after `;` are ignored).
pub fn parse(content_type: &str, body: &[u8]) -> Result<DtmfInfo, InfoError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if body.len() > MAX_BODY {
        return Err(InfoError::BadBody);
    }
    let text = std::str::from_utf8(body).map_err(|_| InfoError::BadBody)?;
    if media.eq_ignore_ascii_case(DTMF) {
        let t = text.trim();
        if t.is_empty() {
            return Err(InfoError::MissingSignal);
        }
        return Ok(DtmfInfo {
            digit: signal(t)?,
            duration_ms: None,
        });
    }
    if !media.eq_ignore_ascii_case(DTMF_RELAY) {
        return Err(InfoError::UnsupportedContentType);
    }
    let (mut digit, mut duration_ms) = (None, None);
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "signal" => digit = Some(signal(v)?),
            "duration" => duration_ms = v.trim().parse::<u32>().ok(),
            _ => {}
        }
    }
    Ok(DtmfInfo {
        digit: digit.ok_or(InfoError::MissingSignal)?,
        duration_ms,
    })
}

/// The `application/dtmf-relay` body for `digit` lasting `duration_ms`.
pub fn build_relay(digit: Digit, duration_ms: u32) -> String {
    format!("Signal={}\r\nDuration={duration_ms}\r\n", digit.to_char())
}

/// The `application/dtmf` body for `digit`.
pub fn build_dtmf(digit: Digit) -> String {
    digit.to_char().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digit {
        Digit::from_char(c).unwrap()
    }

    #[test]
    fn builds_and_parses_both_formats_for_every_digit() {
        for digit in Digit::ALL {
            let relay = build_relay(digit, 160);
            assert_eq!(
                parse(DTMF_RELAY, relay.as_bytes()),
                Ok(DtmfInfo {
                    digit,
                    duration_ms: Some(160)
                })
            );
            let bare = build_dtmf(digit);
            assert_eq!(
                parse("Application/DTMF", bare.as_bytes()).unwrap().digit,
                digit
            );
        }
        assert_eq!(build_relay(d('5'), 160), "Signal=5\r\nDuration=160\r\n");
        assert_eq!(build_dtmf(d('#')), "#");
    }

    #[test]
    fn lenient_with_real_world_bodies() {
        let cases: [(&str, &[u8], char, Option<u32>); 6] = [
            (DTMF_RELAY, b"signal= 9\nduration = 100\n", '9', Some(100)),
            (DTMF_RELAY, b"Signal=11\r\nDuration=250", '#', Some(250)),
            (DTMF_RELAY, b"Signal=*", '*', None),
            (
                "application/dtmf-relay;charset=utf-8",
                b"Foo=bar\r\nSignal=d\r\n",
                'D',
                None,
            ),
            (DTMF, b" 7\r\n", '7', None),
            (DTMF, b"10", '*', None),
        ];
        for (ct, body, c, dur) in cases {
            let got = parse(ct, body).unwrap();
            assert_eq!((got.digit, got.duration_ms), (d(c), dur), "{body:?}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_digit() {
        assert_eq!(parse("text/plain", b"5").unwrap_err().status(), 415);
        assert_eq!(
            parse(DTMF_RELAY, b"Duration=100"),
            Err(InfoError::MissingSignal)
        );
        assert_eq!(parse(DTMF, b"  "), Err(InfoError::MissingSignal));
        assert_eq!(
            parse(DTMF_RELAY, b"Signal=E"),
            Err(InfoError::BadSignal("E".into()))
        );
        assert_eq!(parse(DTMF, b"16").unwrap_err().status(), 400);
        assert_eq!(parse(DTMF, &[0xff, 0xfe]), Err(InfoError::BadBody));
        assert_eq!(parse(DTMF, &[b'1'; 2000]), Err(InfoError::BadBody));
    }
}
