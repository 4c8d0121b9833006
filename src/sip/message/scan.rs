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
    TOKEN[usize::from(b)]
}

/// [`is_token`] as a table: this runs on every byte of every header name.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

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
    let mut pos = 0;
    while let Some(item) = next_list_item(value, &mut pos)? {
        if !item.is_empty() {
            out.push(item);
        }
    }
    Ok(out)
}

/// The non-empty elements of a comma list, as [`split_list`] returns them,
/// without collecting them (no allocation); an `Err` ends the iteration.
pub fn list_items(value: &[u8]) -> impl Iterator<Item = Result<&[u8], ScanError>> {
    let mut pos = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        while !failed {
            match next_list_item(value, &mut pos) {
                Ok(Some([])) => {}
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => return None,
                Err(e) => {
                    failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    })
}

/// The first non-empty element of a comma list, as [`split_list`] would
/// return it, scanning only up to its end (for headers the parser has
/// already validated, such as the top Via); `None` when there is none or
/// the quoting is unbalanced before it ends.
pub fn first_list_item(value: &[u8]) -> Option<&[u8]> {
    let mut pos = 0;
    loop {
        match next_list_item(value, &mut pos).ok()? {
            Some(item) if !item.is_empty() => return Some(item),
            Some(_) => {}
            None => return None,
        }
    }
}

/// The list element starting at `*pos`, up to the next comma outside quotes
/// and `<...>` (or the end), trimmed of LWS and possibly empty; `*pos` moves
/// past it. `Ok(None)` once the list is used up.
fn next_list_item<'a>(value: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, ScanError> {
    let start = *pos;
    if start > value.len() {
        return Ok(None);
    }
    // Fast path (most Via, Route and Contact values): with no quote and no
    // `<` left, an element ends at the next comma, and any `>` in it is
    // unbalanced. Three SIMD scans instead of a byte loop; the scan was the
    // proxy's hottest parsing function in `perf`.
    let rest = &value[start..];
    if memchr::memchr2(b'"', b'<', rest).is_none() {
        let end = memchr::memchr(b',', rest);
        let item = &rest[..end.unwrap_or(rest.len())];
        if memchr::memchr(b'>', item).is_some() {
            return Err(ScanError::UnbalancedAngle);
        }
        *pos = end.map_or(value.len() + 1, |e| start + e + 1);
        return Ok(Some(trim_lws(item)));
    }
    next_list_item_bytewise(value, pos)
}

/// [`next_list_item`] one byte at a time, tracking quotes and `<...>`.
fn next_list_item_bytewise<'a>(
    value: &'a [u8],
    pos: &mut usize,
) -> Result<Option<&'a [u8]>, ScanError> {
    let start = *pos;
    if start > value.len() {
        return Ok(None);
    }
    let mut in_quote = false;
    let mut angle = 0i32;
    let mut i = start;
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
                    *pos = i + 1;
                    return Ok(Some(trim_lws(&value[start..i])));
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
    *pos = value.len() + 1;
    Ok(Some(trim_lws(&value[start..])))
}

/// The index just past the quoted string that opens at `s[open]` (a `"`),
/// honouring `\\` escapes; `None` when it never closes.
pub fn skip_quoted(s: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < s.len() && s[i] != b'"' {
        if s[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    (i < s.len()).then_some(i + 1)
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
    params(s).collect()
}

/// Checks a parameter run as [`parse_params`] does, without collecting it.
pub fn validate_params(s: &[u8]) -> Result<(), ScanError> {
    params(s).try_for_each(|p| p.map(drop))
}

/// The parameters of `s` one by one, without allocating (what
/// [`parse_params`] collects); after an error the iterator ends.
pub fn params(s: &[u8]) -> Params<'_> {
    Params {
        s,
        i: 0,
        done: false,
    }
}

/// Iterator returned by [`params`].
#[derive(Debug, Clone)]
pub struct Params<'a> {
    s: &'a [u8],
    i: usize,
    done: bool,
}

impl<'a> Iterator for Params<'a> {
    type Item = Result<Param<'a>, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = next_param(self.s, &mut self.i);
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Scans the parameter starting at `*i` (LWS and `;` first); `None` at the end.
fn next_param<'a>(s: &'a [u8], i: &mut usize) -> Option<Result<Param<'a>, ScanError>> {
    let n = s.len();
    let mut j = *i;
    while j < n && is_lws(s[j]) {
        j += 1;
    }
    if j >= n {
        *i = j;
        return None;
    }
    if s[j] != b';' {
        return Some(Err(ScanError::BadParamName));
    }
    j += 1;
    while j < n && is_lws(s[j]) {
        j += 1;
    }
    let name_start = j;
    while j < n && (is_token(s[j]) || matches!(s[j], b'[' | b']' | b':')) {
        j += 1;
    }
    if j == name_start {
        return Some(Err(ScanError::EmptyParam));
    }
    let name = &s[name_start..j];
    while j < n && is_lws(s[j]) {
        j += 1;
    }
    let mut value = None;
    if j < n && s[j] == b'=' {
        j += 1;
        while j < n && is_lws(s[j]) {
            j += 1;
        }
        let v_start = j;
        if j < n && s[j] == b'"' {
            j += 1;
            while j < n && s[j] != b'"' {
                if s[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            if j >= n {
                return Some(Err(ScanError::UnbalancedQuote));
            }
            j += 1;
        } else {
            while j < n && !is_lws(s[j]) && s[j] != b';' && s[j] != b',' {
                j += 1;
            }
        }
        value = Some(&s[v_start..j]);
    }
    *i = j;
    Some(Ok(Param { name, value }))
}

/// The first parameter of `s` named `name` (case-insensitively), scanning
/// only as far as needed: `Some(None)` for a flag. For parameter runs already
/// validated when their header was parsed.
pub fn find_param_in<'a>(s: &'a [u8], name: &str) -> Option<Option<&'a [u8]>> {
    params(s)
        .map_while(Result::ok)
        .find(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|p| p.value)
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

    /// The memchr fast path of `next_list_item` splits every input exactly
    /// as the byte-wise scan does: every string of up to 6 symbols from an
    /// alphabet of the bytes that matter, element by element.
    #[test]
    fn list_fast_path_agrees_with_bytewise_scan() {
        const ALPHABET: &[u8] = b"a,\"<> \\";
        let mut checked = 0;
        for len in 0..=6u32 {
            for mut code in 0..(ALPHABET.len() as u64).pow(len) {
                let mut v = Vec::new();
                for _ in 0..len {
                    v.push(ALPHABET[(code % ALPHABET.len() as u64) as usize]);
                    code /= ALPHABET.len() as u64;
                }
                let (mut p1, mut p2) = (0, 0);
                loop {
                    let fast = next_list_item(&v, &mut p1);
                    let slow = next_list_item_bytewise(&v, &mut p2);
                    assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(&v));
                    checked += 1;
                    if !matches!(fast, Ok(Some(_))) {
                        break;
                    }
                    assert_eq!(p1, p2);
                }
            }
        }
        assert!(checked > 200_000, "{checked}");
    }

    #[test]
    fn splits_lists_outside_quotes_and_angles() {
        let v = b"\"a, b\" <sip:x@y;p=1,2>, <sip:z>";
        let items = split_list(v).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], b"<sip:z>");
        assert_eq!(split_list(b"\"open"), Err(ScanError::UnbalancedQuote));
    }

    #[test]
    fn list_items_match_split_list() {
        for v in [
            &b"a, b ,,c"[..],
            b"",
            b",,",
            b"<sip:a,b>, \"x,y\" z",
            b"a, \"open",
        ] {
            let collected: Result<Vec<&[u8]>, ScanError> = list_items(v).collect();
            assert_eq!(collected, split_list(v), "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn first_list_item_matches_split_list() {
        for v in [
            &b"\"a, b\" <sip:x@y;p=1,2>, <sip:z>"[..],
            b" , ,SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b",
            b"SIP/2.0/UDP a",
            b"<sip:a,b>",
        ] {
            assert_eq!(first_list_item(v), split_list(v).unwrap().first().copied());
        }
        assert_eq!(first_list_item(b" , "), None);
    }

    #[test]
    fn params_iterate_without_allocating_and_stop_at_errors() {
        let all: Vec<_> = params(b";a=1;;b").collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], Err(ScanError::EmptyParam));
        assert_eq!(
            find_param_in(b";lr;tag=x;tag=y", "TAG"),
            Some(Some(&b"x"[..]))
        );
        assert_eq!(find_param_in(b";lr", "lr"), Some(None));
        assert_eq!(find_param_in(b";lr", "tag"), None);
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
