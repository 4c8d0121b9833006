//! Semantic validation and compilation of `routes` (their rewrite steps
//! are in [`super::validate_rewrite`]).

use std::collections::HashMap;

use super::check::{did_you_mean, list_or_none, name_ok, regex};
use super::error::{Diags, Loc, show};
use super::matcher::{Cidr, CidrError, NumberMatcher, RouteMatcher};
use super::route::{Action, CompiledRoute, default_reason};
use super::schema::{MatchSection, NumberMatchEntry, RejectEntry, RouteEntry};
use super::spanned::{Sp, StrList};
use super::types::{MediaMode, RingbackTone, RouteMode, Trunk};
use super::validate_rewrite::steps;

/// Names a route may refer to.
pub(crate) struct Known<'a> {
    /// Every listener name written in the file.
    pub listener_names: Vec<String>,
    /// Every trunk name written in the file.
    pub trunk_names: Vec<String>,
    /// The trunks that passed validation.
    pub trunks: &'a [Trunk],
}

/// Validates and compiles the routes in order.
pub(crate) fn routes(
    list: &[Sp<RouteEntry>],
    known: &Known<'_>,
    d: &mut Diags<'_>,
) -> Vec<CompiledRoute> {
    let mut out = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut catch_all: Option<(&str, usize)> = None;
    for entry in list {
        let r = &entry.value;
        let name = &r.name;
        if name_ok(name, "route", d) {
            if let Some(line) = seen.get(name.value.as_str()) {
                d.invalid(
                    name.loc,
                    format!(
                        "duplicate route name `{}` (first defined at line {line})",
                        name.value
                    ),
                );
            } else {
                seen.insert(&name.value, name.loc.line);
            }
        }
        if let Some((other, line)) = catch_all {
            d.invalid(
                name.loc,
                format!(
                    "route `{}` can never match: route `{other}` (line {line}) before it \
                     has no conditions and matches every call",
                    show(&name.value)
                ),
            );
        }
        let matcher = r
            .matches
            .as_ref()
            .map(|m| matcher(&m.value, known, d))
            .unwrap_or_default();
        if matcher.is_catch_all() && catch_all.is_none() {
            catch_all = Some((&name.value, name.loc.line));
        }
        let rewrite = steps(&r.rewrite, d);
        let from_rewrite = steps(&r.from_rewrite, d);
        if let Some(action) = action(entry, known, d) {
            out.push(CompiledRoute {
                name: name.value.as_str().into(),
                matcher,
                rewrite,
                from_rewrite,
                action,
            });
        }
    }
    out
}

fn matcher(m: &MatchSection, known: &Known<'_>, d: &mut Diags<'_>) -> RouteMatcher {
    let mut out = RouteMatcher::default();
    if let Some(list) = &m.source {
        for s in non_empty(list, "source", d) {
            let is_listener = known.listener_names.contains(&s.value);
            if !is_listener && !known.trunk_names.contains(&s.value) {
                let all = known.listener_names.iter().chain(&known.trunk_names);
                d.invalid(
                    s.loc,
                    format!(
                        "unknown source `{}`: not a listener or trunk name{} \
                         (listeners: {}; trunks: {})",
                        show(&s.value),
                        did_you_mean(&s.value, all.map(String::as_str)),
                        list_or_none(known.listener_names.iter().map(String::as_str)),
                        list_or_none(known.trunk_names.iter().map(String::as_str)),
                    ),
                );
            }
            out.sources.push(s.value);
        }
    }
    if let Some(list) = &m.source_addr {
        for s in non_empty(list, "source_addr", d) {
            match Cidr::parse(&s.value) {
                Ok(c) => out.source_addrs.push(c),
                Err(e) => d.invalid(s.loc, cidr_message(&s.value, &e)),
            }
        }
    }
    out.to = m.to.as_ref().and_then(|n| number(n, "to", d));
    out.from = m.from.as_ref().and_then(|n| number(n, "from", d));
    out
}

/// The items of a list, reporting an empty one.
fn non_empty(list: &StrList, key: &str, d: &mut Diags<'_>) -> Vec<Sp<String>> {
    let items = list.resolve(d);
    if items.is_empty() {
        d.invalid(
            list.loc,
            format!("`{key}` is an empty list; omit `{key}` to match anything"),
        );
    }
    items
}

fn cidr_message(s: &str, e: &CidrError) -> String {
    let s = show(s);
    match e {
        CidrError::Syntax => format!(
            "`{s}` is not an IP address or CIDR network (e.g. `10.0.0.0/8`, `2001:db8::/32`)"
        ),
        CidrError::Length(n) => format!("`{s}`: prefix length /{n} is longer than the address"),
        CidrError::HostBits(net) => {
            format!("`{s}` has bits set after the prefix length; did you mean `{net}`?")
        }
    }
}

fn number(n: &Sp<NumberMatchEntry>, key: &str, d: &mut Diags<'_>) -> Option<NumberMatcher> {
    match (&n.value.prefix, &n.value.regex) {
        (Some(list), None) => {
            let items = non_empty(list, "prefix", d);
            let mut prefixes = Vec::new();
            for p in items {
                if p.value.is_empty() {
                    d.invalid(
                        p.loc,
                        format!("empty prefix matches every number; omit `{key}` instead"),
                    );
                } else {
                    prefixes.push(p.value);
                }
            }
            Some(NumberMatcher::Prefixes(prefixes))
        }
        (None, Some(re)) => regex(re, d).map(NumberMatcher::Regex),
        (Some(_), Some(re)) => {
            d.invalid(
                re.loc,
                format!("`{key}` has both `prefix` and `regex`; use one (or two routes)"),
            );
            None
        }
        (None, None) => {
            d.invalid(n.loc, format!("`{key}` needs `prefix` or `regex`"));
            None
        }
    }
}

fn action(entry: &Sp<RouteEntry>, known: &Known<'_>, d: &mut Diags<'_>) -> Option<Action> {
    let r = &entry.value;
    let name = show(&r.name.value);
    match (&r.trunks, &r.reject) {
        (Some(trunks), None) => forward(trunks, r, known, d),
        (None, Some(rej)) => {
            let unused: [(&str, Option<Loc>); 6] = [
                ("mode", r.mode.as_ref().map(|m| m.loc)),
                ("fork", r.fork.as_ref().map(|m| m.loc)),
                ("media", r.media.as_ref().map(|m| m.loc)),
                ("ringback", r.ringback.as_ref().map(|m| m.loc)),
                ("rewrite", r.rewrite.as_ref().map(|m| m.loc)),
                ("from_rewrite", r.from_rewrite.as_ref().map(|m| m.loc)),
            ];
            for (key, loc) in unused {
                if let Some(loc) = loc {
                    d.invalid(
                        loc,
                        format!("`{key}` has no effect in route `{name}`, which rejects"),
                    );
                }
            }
            reject(&rej.value, d)
        }
        (Some(_), Some(rej)) => {
            d.invalid(
                rej.loc,
                format!("route `{name}` has both `trunks` and `reject`; keep one"),
            );
            None
        }
        (None, None) => {
            d.invalid(
                entry.loc,
                format!("route `{name}` needs `trunks` (to forward) or `reject`"),
            );
            None
        }
    }
}

fn forward(
    trunks: &Sp<Vec<Sp<String>>>,
    r: &RouteEntry,
    known: &Known<'_>,
    d: &mut Diags<'_>,
) -> Option<Action> {
    if trunks.value.is_empty() {
        d.invalid(trunks.loc, "`trunks` is empty; list at least one trunk");
    }
    let mut out: Vec<Trunk> = Vec::new();
    let mut ok = !trunks.value.is_empty();
    for (i, t) in trunks.value.iter().enumerate() {
        if trunks
            .value
            .get(..i)
            .is_some_and(|before| before.iter().any(|b| b.value == t.value))
        {
            d.invalid(t.loc, format!("trunk `{}` is listed twice", show(&t.value)));
            ok = false;
        } else if let Some(trunk) = known.trunks.iter().find(|k| k.name == t.value) {
            out.push(trunk.clone());
        } else if known.trunk_names.contains(&t.value) {
            ok = false; // that trunk's own entry is invalid and already reported
        } else {
            d.invalid(
                t.loc,
                format!(
                    "unknown trunk `{}`{} (trunks: {})",
                    show(&t.value),
                    did_you_mean(&t.value, known.trunk_names.iter().map(String::as_str)),
                    list_or_none(known.trunk_names.iter().map(String::as_str)),
                ),
            );
            ok = false;
        }
    }
    let mode = r.mode.as_ref().map(|m| m.value).unwrap_or_default();
    let fork = r.fork.as_ref().map(|m| m.value).unwrap_or_default();
    let media = match &r.media {
        Some(m) if mode != RouteMode::B2bua => {
            let how = if r.mode.is_some() {
                ""
            } else {
                " (the default)"
            };
            d.invalid(
                m.loc,
                format!(
                    "`media` only applies to `mode: b2bua` routes; route `{}` is \
                     `mode: {mode}`{how}, where media always flows end to end",
                    show(&r.name.value)
                ),
            );
            ok = false;
            MediaMode::default()
        }
        Some(m) => m.value,
        None => MediaMode::default(),
    };
    let ringback = match &r.ringback {
        Some(rb) if mode != RouteMode::B2bua || media != MediaMode::Anchor => {
            d.invalid(
                rb.loc,
                format!(
                    "`ringback` needs `mode: b2bua` with `media: anchor` (the gateway \
                     plays the tone from its own media ports); route `{}` is `mode: {mode}`{}",
                    show(&r.name.value),
                    if mode == RouteMode::B2bua {
                        format!(", `media: {media}`")
                    } else {
                        String::new()
                    }
                ),
            );
            ok = false;
            RingbackTone::None
        }
        Some(rb) => rb.value,
        None => RingbackTone::None,
    };
    ok.then_some(Action::Forward {
        trunks: out.into(),
        mode,
        fork,
        media,
        ringback,
    })
}

fn reject(rej: &RejectEntry, d: &mut Diags<'_>) -> Option<Action> {
    let status = rej.status.value;
    if !(400..=699).contains(&status) {
        d.invalid(
            rej.status.loc,
            format!("reject `status` must be between 400 and 699, got {status}"),
        );
        return None;
    }
    let reason = match &rej.reason {
        None => default_reason(status).to_owned(),
        Some(r) if r.value.trim().is_empty() || r.value.len() > 128 => {
            d.invalid(r.loc, "`reason` must be 1–128 characters of text");
            return None;
        }
        Some(r) if r.value.chars().any(|c| c.is_control() && c != '\t') => {
            d.invalid(
                r.loc,
                "`reason` cannot contain line breaks or control characters",
            );
            return None;
        }
        Some(r) => r.value.clone(),
    };
    Some(Action::Reject { status, reason })
}
