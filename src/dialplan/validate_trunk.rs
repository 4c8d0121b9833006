//! Validation of a trunk's B2BUA options: `headers`, `codecs`, `plain_rtp`.

use super::check::{closest, offset_loc, regex};
use super::error::{Diags, show};
use super::header_rules::{header_long_name, is_b2bua_owned, pattern_covers, patterns_overlap};
use super::rewrite::check_replacement;
use super::schema::{HeaderRewriteEntry, HeadersSection, TrunkEntry};
use super::spanned::{Sp, SpPairs, StrList};
use super::types::{HeaderPolicy, HeaderRewrite, TrunkPolicy};

/// Codec names a trunk's `codecs` list accepts, in their usual spelling
/// (matched case-insensitively).
pub(crate) const KNOWN_CODECS: &[&str] = &[
    "PCMU",
    "PCMA",
    "G722",
    "G729",
    "G723",
    "GSM",
    "iLBC",
    "opus",
    "SILK",
    "speex",
    "AMR",
    "AMR-WB",
    "L16",
    "CN",
    "telephone-event",
];

/// Longest header name accepted in a policy.
const MAX_HEADER_NAME: usize = 64;

/// Longest header value `add` accepts, in bytes.
const MAX_HEADER_VALUE: usize = 1024;

/// What the listing of the B2BUA-owned headers says in error messages.
const OWNED_WHY: &str = "the B2BUA writes its own dialog, transaction, routing, \
                         authentication and negotiation headers on each leg";

/// The B2BUA policy of one trunk entry (defaults for omitted options).
pub(crate) fn trunk_policy(t: &TrunkEntry, d: &mut Diags<'_>) -> TrunkPolicy {
    let def = TrunkPolicy::default();
    TrunkPolicy {
        headers: t
            .headers
            .as_ref()
            .map_or(def.headers, |h| headers(&h.value, d)),
        codecs: t.codecs.as_ref().map(|c| codecs(c, d)).unwrap_or_default(),
        plain_rtp: t.plain_rtp.as_ref().map_or(def.plain_rtp, |p| p.value),
        srtp: t.srtp.as_ref().map_or(def.srtp, |p| p.value),
        dtmf: t.dtmf.as_ref().map_or(def.dtmf, |p| p.value),
    }
}

fn headers(h: &HeadersSection, d: &mut Diags<'_>) -> HeaderPolicy {
    let def = HeaderPolicy::default();
    let pass = match &h.pass {
        Some(list) => names(list, "pass", d),
        None => def.pass.iter().map(|p| (p.clone(), None)).collect(),
    };
    let drop = h
        .drop
        .as_ref()
        .map(|l| names(l, "drop", d))
        .unwrap_or_default();
    for (name, loc) in &drop {
        if let (Some(loc), Some((_, Some(first)))) =
            (loc, pass.iter().find(|(p, _)| same_name(p, name)))
        {
            d.invalid(
                *loc,
                format!(
                    "`{}` is both in `pass` (line {}) and in `drop`; keep one",
                    show(name),
                    first.line
                ),
            );
        }
    }
    let add = h.add.as_ref().map(|a| add(a, d)).unwrap_or_default();
    let rewrite = h
        .rewrite
        .as_ref()
        .map(|list| {
            list.value
                .iter()
                .filter_map(|r| rewrite(&r.value, &pass, &drop, h.pass.is_some(), d))
                .collect()
        })
        .unwrap_or_default();
    HeaderPolicy {
        pass: pass.into_iter().map(|(p, _)| p).collect(),
        drop: drop.into_iter().map(|(p, _)| p).collect(),
        add,
        rewrite,
    }
}

/// Whether two literal names or patterns are written the same way (case
/// and compact forms aside).
fn same_name(a: &str, b: &str) -> bool {
    a.ends_with('*') == b.ends_with('*')
        && header_long_name(a.as_bytes()).eq_ignore_ascii_case(&header_long_name(b.as_bytes()))
}

type Names = Vec<(String, Option<super::error::Loc>)>;

/// The valid names of a `pass` / `drop` list, each with its position.
fn names(list: &StrList, key: &str, d: &mut Diags<'_>) -> Names {
    let mut out: Names = Vec::new();
    for item in list.resolve(d) {
        if !header_name(&item, key, true, d) {
            continue;
        }
        if key == "pass" && !item.value.ends_with('*') && is_b2bua_owned(item.value.as_bytes()) {
            d.invalid(
                item.loc,
                format!("`{}` is never copied: {OWNED_WHY}", show(&item.value)),
            );
            continue;
        }
        if let Some((_, Some(first))) = out.iter().find(|(n, _)| same_name(n, &item.value)) {
            d.invalid(
                item.loc,
                format!(
                    "`{}` is listed twice in `{key}` (first at line {})",
                    show(&item.value),
                    first.line
                ),
            );
            continue;
        }
        out.push((item.value, Some(item.loc)));
    }
    out
}

/// Checks a header name (or, with `wildcard`, a pattern such as `X-*`).
fn header_name(v: &Sp<String>, key: &str, wildcard: bool, d: &mut Diags<'_>) -> bool {
    let s = v.value.as_str();
    let body = if wildcard {
        s.strip_suffix('*').unwrap_or(s)
    } else {
        s
    };
    let what = if wildcard {
        "a header name, `Prefix-*` or `*`"
    } else {
        "a header name"
    };
    if s.is_empty() || s.len() > MAX_HEADER_NAME {
        d.invalid(
            v.loc,
            format!("`{key}` needs {what} of 1–{MAX_HEADER_NAME} characters"),
        );
        return false;
    }
    let bad = body
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || "-.!%_+`'~".contains(c)));
    let Some((off, c)) = bad else {
        return true;
    };
    let hint = if c == '*' && wildcard {
        "`*` may only end a name, as in `X-*`".to_owned()
    } else if c == '*' {
        "`*` patterns are not allowed here, write the exact name".to_owned()
    } else if c == ':' {
        "write the name without `:`".to_owned()
    } else {
        "use letters, digits and `-.!%_+`'~`".to_owned()
    };
    d.invalid(
        offset_loc(v, off, d),
        format!(
            "`{}` is not {what}: `{}` cannot appear in it; {hint}",
            show(s),
            c.escape_default()
        ),
    );
    false
}

fn add(a: &SpPairs, d: &mut Diags<'_>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    for (name, value) in &a.items {
        if !header_name(name, "add", false, d) {
            continue;
        }
        if is_b2bua_owned(name.value.as_bytes()) {
            d.invalid(
                name.loc,
                format!("`{}` cannot be added: {OWNED_WHY}", show(&name.value)),
            );
            continue;
        }
        if let Some(i) = out.iter().position(|(n, _)| same_name(n, &name.value)) {
            d.invalid(
                name.loc,
                format!(
                    "`{}` is added twice (first at line {}); one entry per header",
                    show(&name.value),
                    lines.get(i).copied().unwrap_or_default()
                ),
            );
            continue;
        }
        let v = value.value.as_str();
        if v.trim().is_empty() || v.len() > MAX_HEADER_VALUE {
            d.invalid(
                value.loc,
                format!(
                    "the value of `{}` must be 1–{MAX_HEADER_VALUE} bytes of text",
                    show(&name.value)
                ),
            );
            continue;
        }
        if v.chars().any(|c| c.is_control() && c != '\t') {
            d.invalid(
                value.loc,
                format!(
                    "the value of `{}` cannot contain line breaks or control characters",
                    show(&name.value)
                ),
            );
            continue;
        }
        out.push((name.value.clone(), v.trim().to_owned()));
        lines.push(name.loc.line);
    }
    out
}

fn rewrite(
    r: &HeaderRewriteEntry,
    pass: &Names,
    drop: &Names,
    explicit_pass: bool,
    d: &mut Diags<'_>,
) -> Option<HeaderRewrite> {
    let name = &r.name;
    let mut ok = header_name(name, "name", true, d);
    if ok && !name.value.ends_with('*') && is_b2bua_owned(name.value.as_bytes()) {
        d.invalid(
            name.loc,
            format!("`{}` cannot be rewritten: {OWNED_WHY}", show(&name.value)),
        );
        ok = false;
    }
    if ok && !pass.iter().any(|(p, _)| patterns_overlap(p, &name.value)) {
        let list: Vec<&str> = pass.iter().map(|(p, _)| p.as_str()).collect();
        let which = if explicit_pass { "" } else { " (the default)" };
        d.invalid(
            name.loc,
            format!(
                "rewrite of `{}` never applies: no `pass` entry matches it (pass{which}: {})",
                show(&name.value),
                if list.is_empty() {
                    "none".to_owned()
                } else {
                    list.join(", ")
                }
            ),
        );
        ok = false;
    }
    if ok && let Some((p, loc)) = drop.iter().find(|(p, _)| pattern_covers(p, &name.value)) {
        let at = loc.map_or(String::new(), |l| format!(" (line {})", l.line));
        d.invalid(
            name.loc,
            format!(
                "rewrite of `{}` never applies: `drop` entry `{}`{at} removes it",
                show(&name.value),
                show(p)
            ),
        );
        ok = false;
    }
    let pattern = regex(&r.pattern, d);
    if r.replace.value.chars().any(|c| c.is_control() && c != '\t') {
        d.invalid(
            r.replace.loc,
            "`replace` cannot contain line breaks or control characters",
        );
        ok = false;
    }
    let pattern = pattern?;
    if let Err(msg) = check_replacement(&pattern, &r.replace.value, "replace") {
        d.invalid(r.replace.loc, msg);
        return None;
    }
    ok.then(|| HeaderRewrite {
        name: name.value.clone(),
        pattern,
        replace: r.replace.value.clone(),
    })
}

/// ` (did you mean ...)` for a codec name that is not in [`KNOWN_CODECS`].
fn codec_hint(name: &str) -> String {
    let plain: String = name
        .chars()
        .filter(|c| !matches!(c, '.' | ' ' | '_'))
        .collect::<String>()
        .to_lowercase();
    let alias = match plain.as_str() {
        "g711" => Some("`PCMU` (G.711 µ-law) or `PCMA` (G.711 A-law)"),
        "g711u" | "g711mu" | "g711ulaw" | "ulaw" | "mulaw" => Some("`PCMU` (G.711 µ-law)"),
        "g711a" | "g711alaw" | "alaw" => Some("`PCMA` (G.711 A-law)"),
        "dtmf" | "rfc2833" | "rfc4733" => Some("`telephone-event` (RFC 4733 DTMF)"),
        _ => None,
    };
    if let Some(a) = alias {
        return format!(" (did you mean {a}?)");
    }
    if let Some(k) = KNOWN_CODECS.iter().find(|k| k.eq_ignore_ascii_case(&plain)) {
        return format!(" (did you mean `{k}`?)");
    }
    let lower: Vec<String> = KNOWN_CODECS.iter().map(|k| k.to_lowercase()).collect();
    closest(&plain, lower.iter().map(String::as_str))
        .and_then(|l| KNOWN_CODECS.iter().find(|k| k.eq_ignore_ascii_case(l)))
        .map_or(String::new(), |k| format!(" (did you mean `{k}`?)"))
}

fn codecs(list: &StrList, d: &mut Diags<'_>) -> Vec<String> {
    let items = list.resolve(d);
    if items.is_empty() {
        d.invalid(
            list.loc,
            "`codecs` is an empty list; omit `codecs` to offer the caller's codecs as they are",
        );
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for c in &items {
        let Some(known) = KNOWN_CODECS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&c.value))
        else {
            let typo = codec_hint(&c.value);
            d.invalid(
                c.loc,
                format!(
                    "unknown codec `{}`{typo}; known codecs: {}",
                    show(&c.value),
                    KNOWN_CODECS.join(" ")
                ),
            );
            ok = false;
            continue;
        };
        if out.iter().any(|o| o == known) {
            d.invalid(c.loc, format!("codec `{known}` is listed twice"));
            ok = false;
            continue;
        }
        out.push((*known).to_owned());
    }
    if ok && out.iter().all(|c| c == "telephone-event" || c == "CN") {
        d.invalid(
            list.loc,
            "`codecs` lists no audio codec; name at least one, e.g. `[PCMA, PCMU]`",
        );
    }
    out
}
