//! Small value checks shared by the validators: names, socket addresses,
//! host names, regexes (with the caret inside the pattern), suggestions.

use std::net::{IpAddr, SocketAddr};

use regex::Regex;

use super::error::{Diags, Loc, show};
use super::spanned::Sp;

/// Longest accepted name.
const MAX_NAME: usize = 64;

/// Checks a listener / trunk / route name: 1–64 characters, letters, digits,
/// `.`, `_`, `-`, starting with a letter or digit. Reports and returns false
/// when it is not.
pub(crate) fn name_ok(name: &Sp<String>, what: &str, d: &mut Diags<'_>) -> bool {
    let s = name.value.as_str();
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if first_ok && rest_ok && s.len() <= MAX_NAME {
        return true;
    }
    d.invalid(
        name.loc,
        format!(
            "{what} name `{}` is not valid: use 1–{MAX_NAME} letters, digits, `.`, `_` or `-`, \
             starting with a letter or digit",
            show(s)
        ),
    );
    false
}

/// Parses an IP-literal socket address, reporting a precise hint on failure.
pub(crate) fn socket_addr(v: &Sp<String>, what: &str, d: &mut Diags<'_>) -> Option<SocketAddr> {
    let s = v.value.as_str();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let hint = addr_hint(s);
    d.invalid(
        v.loc,
        format!(
            "`{what}` must be an IP address and port such as `127.0.0.1:5060` or `[::1]:5060`, \
             got `{}`{hint}",
            show(s)
        ),
    );
    None
}

fn addr_hint(s: &str) -> String {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return match ip {
            IpAddr::V4(_) => format!(": the port is missing (`{s}:PORT`)"),
            IpAddr::V6(_) => {
                ": write IPv6 addresses in brackets with the port after them, e.g. `[::1]:5060`"
                    .to_owned()
            }
        };
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return ": the port is missing".to_owned();
    };
    let port_digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if port_digits && port.parse::<u16>().is_err() {
        return format!(": port `{}` is out of range (0–65535)", show(port));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if port_digits && host.parse::<IpAddr>().is_err() && hostname_ok(host) {
        return ": host names are not allowed here, use an IP address".to_owned();
    }
    String::new()
}

/// Whether `s` is a syntactically valid DNS host name (RFC 1123 labels,
/// no trailing dot, at most 253 characters).
pub(crate) fn hostname_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Compiles a regex. On failure reports `invalid regex: ...` with the caret
/// on the offending character inside the pattern when the YAML scalar is
/// written so that its characters line up (plain, or quoted without escapes).
pub(crate) fn regex(v: &Sp<String>, d: &mut Diags<'_>) -> Option<Regex> {
    let pattern = v.value.as_str();
    let (message, offset) = match regex_syntax_error(pattern) {
        Some(found) => found,
        None => match regex::RegexBuilder::new(pattern)
            .size_limit(1 << 22)
            .build()
        {
            Ok(re) => return Some(re),
            Err(e) => (last_line(&e.to_string()), None),
        },
    };
    let loc = offset.map_or(v.loc, |off| offset_loc(v, off, d));
    d.invalid(loc, format!("invalid regex: {message}"));
    None
}

/// The first parse/translate error of `pattern` with its byte offset.
fn regex_syntax_error(pattern: &str) -> Option<(String, Option<usize>)> {
    let ast = match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Ok(ast) => ast,
        Err(e) => return Some((e.kind().to_string(), Some(e.span().start.offset))),
    };
    match regex_syntax::hir::translate::Translator::new().translate(pattern, &ast) {
        Ok(_) => None,
        Err(e) => Some((e.kind().to_string(), Some(e.span().start.offset))),
    }
}

fn last_line(s: &str) -> String {
    let line = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(s);
    show(line.trim().trim_start_matches("error: "))
}

/// Position of byte `off` of the value, if the scalar's source text maps
/// one-to-one onto the value; otherwise the node's own position.
pub(crate) fn offset_loc(v: &Sp<String>, off: usize, d: &Diags<'_>) -> Loc {
    let value = v.value.as_str();
    let Some(raw) = d.raw(v.loc) else {
        return v.loc;
    };
    let quote = if raw == value {
        0
    } else if raw.len() == value.len() + 2
        && ((raw.starts_with('\'') && !value.contains('\''))
            || (raw.starts_with('"') && !value.contains(['"', '\\'])))
        && raw.get(1..raw.len() - 1) == Some(value)
    {
        1
    } else {
        return v.loc;
    };
    if raw.contains('\n') {
        return v.loc;
    }
    let chars = value.get(..off).map_or(0, |p| p.chars().count());
    Loc {
        col: v.loc.col + quote + chars,
        ..v.loc
    }
}

/// ` (did you mean `x`?)` when one known name is close to `unknown`.
pub(crate) fn did_you_mean<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> String {
    closest(unknown, known).map_or(String::new(), |k| format!(" (did you mean `{k}`?)"))
}

/// The known name closest to `unknown`, if one is close enough to be a typo.
pub(crate) fn closest<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    if unknown.len() > MAX_NAME {
        return None;
    }
    let len = unknown.chars().count();
    known
        .map(|k| (edit_distance(unknown, k), k))
        .filter(|(dist, k)| *dist < len && *dist <= 2.max(k.len() / 4))
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// `a, b, c` or `none`.
pub(crate) fn list_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialplan_addr_hints() {
        assert_eq!(
            addr_hint("127.0.0.1"),
            ": the port is missing (`127.0.0.1:PORT`)"
        );
        let v6 = ": write IPv6 addresses in brackets with the port after them, e.g. `[::1]:5060`";
        assert_eq!(addr_hint("::1"), v6);
        assert_eq!(addr_hint("fe80::1:5060"), v6);
        assert_eq!(
            addr_hint("127.0.0.1:70000"),
            ": port `70000` is out of range (0–65535)"
        );
        assert_eq!(
            addr_hint("sip.example.com:5060"),
            ": host names are not allowed here, use an IP address"
        );
        assert_eq!(addr_hint("nonsense"), ": the port is missing");
        assert_eq!(addr_hint("1.2.3:x"), "");
    }

    #[test]
    fn dialplan_hostnames() {
        assert!(hostname_ok("gw.example.test"));
        assert!(hostname_ok("a-1.b"));
        assert!(!hostname_ok("gw.example.test."));
        assert!(!hostname_ok("-a.b"));
        assert!(!hostname_ok("a_b"));
        assert!(!hostname_ok(""));
        assert!(!hostname_ok(&"a".repeat(64)));
    }

    #[test]
    fn dialplan_suggestions() {
        let known = ["carrier-a", "carrier-b", "platform"];
        assert_eq!(
            did_you_mean("carier-a", known.iter().copied()),
            " (did you mean `carrier-a`?)"
        );
        assert_eq!(did_you_mean("zzz", known.iter().copied()), "");
        assert_eq!(did_you_mean("c", ["a", "b"].into_iter()), "");
        assert_eq!(
            did_you_mean("ab", ["a", "b"].into_iter()),
            " (did you mean `a`?)"
        );
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
