//! Validation and compilation of a route's `rewrite` / `from_rewrite`
//! steps (strip, prepend, replace, e164).

use super::check::regex;
use super::e164::E164Rule;
use super::error::{Diags, show};
use super::rewrite::{RewriteOp, check_replacement};
use super::schema::{E164Entry, RewriteStep};
use super::spanned::Sp;

/// Characters allowed unescaped in a SIP URI user part (RFC 3261 §25.1).
fn sip_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c)
}

pub(crate) fn steps(list: &Option<Sp<Vec<Sp<RewriteStep>>>>, d: &mut Diags<'_>) -> Vec<RewriteOp> {
    let Some(list) = list else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for step in &list.value {
        let op = match &step.value {
            RewriteStep::Strip(n) => usize::try_from(n.value).ok().map(RewriteOp::Strip),
            RewriteStep::Prepend(p) => {
                if p.value.is_empty() {
                    d.invalid(p.loc, "`prepend` text is empty");
                    None
                } else if let Some(bad) = p.value.chars().find(|&c| !sip_user_char(c)) {
                    d.invalid(
                        p.loc,
                        format!(
                            "`prepend` text `{}` contains `{}`, which cannot appear in a \
                             SIP URI user part",
                            show(&p.value),
                            bad.escape_default()
                        ),
                    );
                    None
                } else {
                    Some(RewriteOp::Prepend(p.value.clone()))
                }
            }
            RewriteStep::Replace(r) => regex(&r.regex, d).and_then(|re| {
                match check_replacement(&re, &r.with.value, "with") {
                    Ok(()) => Some(RewriteOp::Replace {
                        regex: re,
                        with: r.with.value.clone(),
                    }),
                    Err(msg) => {
                        d.invalid(r.with.loc, msg);
                        None
                    }
                }
            }),
            RewriteStep::E164(e) => e164(e, d).map(RewriteOp::E164),
        };
        out.extend(op);
    }
    out
}

/// Checks `v` is `min..=max` ASCII digits.
fn digits(v: &Sp<String>, key: &str, min: usize, max: usize, d: &mut Diags<'_>) -> bool {
    let s = &v.value;
    let ok = (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        let len = if min == max {
            format!("{min}")
        } else {
            format!("{min}–{max}")
        };
        d.invalid(
            v.loc,
            format!("`{key}` must be {len} digits, got `{}`", show(s)),
        );
    }
    ok
}

fn e164(e: &E164Entry, d: &mut Diags<'_>) -> Option<E164Rule> {
    let mut ok = digits(&e.country_code, "country_code", 1, 3, d);
    if ok && e.country_code.value.starts_with('0') {
        d.invalid(e.country_code.loc, "`country_code` cannot start with 0");
        ok = false;
    }
    let nat = e.national_prefix.as_ref();
    let intl = e.international_prefix.as_ref();
    ok &= nat.is_none_or(|n| digits(n, "national_prefix", 0, 4, d));
    ok &= intl.is_none_or(|n| digits(n, "international_prefix", 1, 4, d));
    if !ok {
        return None;
    }
    let national_prefix = nat.map_or("0", |n| n.value.as_str()).to_owned();
    let international_prefix = intl.map_or("00", |n| n.value.as_str()).to_owned();
    if !national_prefix.is_empty() && national_prefix.starts_with(&international_prefix) {
        let loc = nat.or(intl).map_or(e.country_code.loc, |s| s.loc);
        d.invalid(
            loc,
            format!(
                "`national_prefix` `{national_prefix}` starts with `international_prefix` \
                 `{international_prefix}`, so national numbers could not be told apart"
            ),
        );
        return None;
    }
    Some(E164Rule {
        country_code: e.country_code.value.clone(),
        national_prefix,
        international_prefix,
    })
}
