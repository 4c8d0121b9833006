//! Byte-level scanning helpers shared by the typed header views: linear white
//! space (RFC 3261 §7.3.1, folding included), tokens, quoted strings, comma
//! lists and `;name=value` parameters.

use bytes::Bytes;

/// True for the bytes that make up LWS once lines are unfolded (SP, HT, CR, LF).
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 §25.1 `token` characters.
pub fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Strip leading and trailing LWS.
pub fn trim_lws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_lws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_lws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Byte range of `sub` inside `outer` (both must come from the same buffer).
pub fn range_in(outer: &[u8], sub: &[u8]) -> (usize, usize) {
    let start = sub.as_ptr() as usize - outer.as_ptr() as usize;
    (start, start + sub.len())
}

/// Slice a `Bytes` by a subslice of it, without copying.
pub fn slice_of(owner: &Bytes, sub: &[u8]) -> Bytes {
    if sub.is_empty() {
        return Bytes::new();
    }
    owner.slice_ref(sub)
}

/// Why a list or parameter scan failed; the typed views turn it into a
/// [`super::ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// A quoted string never closed (RFC 4475 §3.1.2.6).
    UnbalancedQuote,
    /// A `<` without `>` or the reverse.
    UnbalancedAngle,
    /// `;;` or `;` with nothing after it (RFC 4475 §3.1.2.1).
    EmptyParam,
    /// A parameter name that is not a token.
    BadParamName,
}

/// Split a header value at top-level commas (outside quotes and `<...>`),
/// returning each element trimmed of LWS. Empty elements are skipped.
pub fn split_list(value: &[u8]) -> Result<Vec<&[u8]>, ScanError> {
    let mut out = Vec::new();
    let mut in_quote = false;
    let mut angle = 0i32;
    let mut start = 0;
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if in_quote {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_quote = false;
            }
        } else {
            match b {
                b'"' => in_quote = true,
                b'<' => angle += 1,
                b'>' => {
                    angle -= 1;
                    if angle < 0 {
                        return Err(ScanError::UnbalancedAngle);
                    }
                }
                b',' if angle == 0 => {
                    let item = trim_lws(&value[start..i]);
                    if !item.is_empty() {
                        out.push(item);
                    }
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if in_quote {
        return Err(ScanError::UnbalancedQuote);
    }
    if angle != 0 {
        return Err(ScanError::UnbalancedAngle);
    }
    let item = trim_lws(&value[start.min(value.len())..]);
    if !item.is_empty() {
        out.push(item);
    }
    Ok(out)
}

/// One `;name[=value]` parameter; `value` has quotes kept as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name as received (compare case-insensitively).
    pub name: &'a [u8],
    /// Value as received, `None` for a flag parameter like `;lr`.
    pub value: Option<&'a [u8]>,
}

/// Parse a run of `;name[=value]` parameters (the leading `;` included in
/// `s`), tolerating LWS around `;` and `=` (RFC 4475 §3.1.1.1).
pub fn parse_params(s: &[u8]) -> Result<Vec<Param<'_>>, ScanError> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = s.len();
    loop {
        while i < n && is_lws(s[i]) {
            i += 1;
        }
        if i >= n {
            return Ok(out);
        }
        if s[i] != b';' {
            return Err(ScanError::BadParamName);
        }
        i += 1;
        while i < n && is_lws(s[i]) {
            i += 1;
        }
        let name_start = i;
        while i < n && (is_token(s[i]) || matches!(s[i], b'[' | b']' | b':')) {
            i += 1;
        }
        if i == name_start {
            return Err(ScanError::EmptyParam);
        }
        let name = &s[name_start..i];
        while i < n && is_lws(s[i]) {
            i += 1;
        }
        let mut value = None;
        if i < n && s[i] == b'=' {
            i += 1;
            while i < n && is_lws(s[i]) {
                i += 1;
            }
            let v_start = i;
            if i < n && s[i] == b'"' {
                i += 1;
                while i < n && s[i] != b'"' {
                    if s[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= n {
                    return Err(ScanError::UnbalancedQuote);
                }
                i += 1;
            } else {
                while i < n && !is_lws(s[i]) && s[i] != b';' && s[i] != b',' {
                    i += 1;
                }
            }
            value = Some(&s[v_start..i]);
        }
        out.push(Param { name, value });
    }
}

/// Find a parameter by case-insensitive name.
pub fn find_param<'a>(params: &[Param<'a>], name: &str) -> Option<Option<&'a [u8]>> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|p| p.value)
}

/// Parse an unsigned decimal that must fit in `u32` (RFC 4475 §3.1.2.4:
/// oversized scalars are errors, not wrap-arounds).
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        v = v * 10 + u64::from(b - b'0');
    }
    u32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lists_outside_quotes_and_angles() {
        let v = b"\"a, b\" <sip:x@y;p=1,2>, <sip:z>";
        let items = split_list(v).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], b"<sip:z>");
        assert_eq!(split_list(b"\"open"), Err(ScanError::UnbalancedQuote));
    }

    #[test]
    fn params_with_lws() {
        let p = parse_params(b" ;   tag    = 1918181833n").unwrap();
        assert_eq!(p[0].name, b"tag");
        assert_eq!(p[0].value, Some(&b"1918181833n"[..]));
        let p = parse_params(b";lr;x=\"a;b\"").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].value, None);
        assert_eq!(parse_params(b";;"), Err(ScanError::EmptyParam));
    }

    #[test]
    fn u32_limits() {
        assert_eq!(parse_u32(b"0009"), Some(9));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"36893488147419103232"), None);
        assert_eq!(parse_u32(b"-1"), None);
    }
}
