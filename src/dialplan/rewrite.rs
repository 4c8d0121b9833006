//! Number rewriting: the `rewrite` / `from_rewrite` steps of a route.

use regex::Regex;

use super::e164::E164Rule;

/// One compiled rewrite step.
#[derive(Clone, Debug)]
pub(crate) enum RewriteOp {
    /// Remove this many leading characters (all of them if the user is shorter).
    Strip(usize),
    /// Put this text in front.
    Prepend(String),
    /// Replace the first match of `regex` by `with` (`$1`, `${name}`, `$$`).
    Replace {
        /// The compiled pattern.
        regex: Regex,
        /// The replacement template.
        with: String,
    },
    /// Normalise to E.164.
    E164(E164Rule),
}

impl RewriteOp {
    /// Applies this step to `user`.
    pub(crate) fn apply(&self, user: &str) -> String {
        match self {
            RewriteOp::Strip(n) => match user.char_indices().nth(*n) {
                Some((i, _)) => user.get(i..).unwrap_or_default().to_owned(),
                None => String::new(),
            },
            RewriteOp::Prepend(p) => format!("{p}{user}"),
            RewriteOp::Replace { regex, with } => regex.replace(user, with.as_str()).into_owned(),
            RewriteOp::E164(rule) => rule.normalize(user),
        }
    }
}

/// Longest user part a rewrite may produce, in bytes. A rewrite whose any
/// step would produce more leaves the user unchanged, so chained `replace`
/// steps cannot blow up memory on every call.
pub(crate) const MAX_REWRITTEN: usize = 1024;

/// Applies `ops` in order; `None` when the result equals the input (including
/// when there are no steps) or when a step's result exceeds
/// [`MAX_REWRITTEN`] bytes.
pub(crate) fn apply_all(ops: &[RewriteOp], user: &str) -> Option<String> {
    if ops.is_empty() {
        return None;
    }
    let mut out = user.to_owned();
    for op in ops {
        out = op.apply(&out);
        if out.len() > MAX_REWRITTEN {
            return None;
        }
    }
    (out != user).then_some(out)
}

/// Checks the `$` references of a replacement template against `regex`,
/// following the `regex` crate's rules: `$$` is a literal `$`; `${name}` and
/// `$name` (longest run of letters, digits and `_`) refer to a group; a `$`
/// followed by anything else is literal.
///
/// Returns a message for the first reference to a group the regex lacks.
pub(crate) fn check_replacement(regex: &Regex, with: &str, key: &str) -> Result<(), String> {
    let bytes = with.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b != b'$' {
            continue;
        }
        let (name, braced) = match bytes.get(i) {
            Some(b'$') => {
                i += 1;
                continue;
            }
            Some(b'{') => {
                let Some(close) = bytes
                    .get(i + 1..)
                    .and_then(|rest| rest.iter().position(|&c| c == b'}'))
                else {
                    continue;
                };
                let name = with.get(i + 1..i + 1 + close).unwrap_or_default();
                i += close + 2;
                (name, true)
            }
            _ => {
                let len = bytes
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                let name = with.get(i..i + len).unwrap_or_default();
                i += len;
                (name, false)
            }
        };
        if name.is_empty() {
            continue;
        }
        let exists = match name.parse::<usize>() {
            Ok(n) => n < regex.captures_len(),
            Err(_) => regex.capture_names().flatten().any(|n| n == name),
        };
        if !exists {
            let groups = regex.captures_len().saturating_sub(1);
            let hint = match (braced, name.find(|c: char| !c.is_ascii_digit())) {
                (false, Some(cut)) if cut > 0 => format!(
                    "; to put text right after group {}, write `${{{}}}{}`",
                    name.get(..cut).unwrap_or_default(),
                    name.get(..cut).unwrap_or_default(),
                    name.get(cut..).unwrap_or_default()
                ),
                _ => String::new(),
            };
            return Err(format!(
                "`{key}` refers to group `{}` but the regex has {groups} numbered group{}{}{hint}",
                super::error::show(name),
                if groups == 1 { "" } else { "s" },
                named_list(regex),
            ));
        }
    }
    Ok(())
}

fn named_list(regex: &Regex) -> String {
    let names: Vec<&str> = regex.capture_names().flatten().collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" and named groups {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(s: &str) -> Regex {
        Regex::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn dialplan_rewrite_strip() {
        assert_eq!(RewriteOp::Strip(2).apply("0044123"), "44123");
        assert_eq!(RewriteOp::Strip(0).apply("12"), "12");
        assert_eq!(RewriteOp::Strip(2).apply("12"), "");
        assert_eq!(RewriteOp::Strip(9).apply("12"), "");
        assert_eq!(RewriteOp::Strip(1).apply("éa"), "a");
    }

    #[test]
    fn dialplan_rewrite_prepend() {
        assert_eq!(RewriteOp::Prepend("+".into()).apply("4420"), "+4420");
        assert_eq!(RewriteOp::Prepend("9".into()).apply(""), "9");
    }

    #[test]
    fn dialplan_rewrite_replace_first_match_with_groups() {
        let op = RewriteOp::Replace {
            regex: re("^0(\\d+)$"),
            with: "+44$1".into(),
        };
        assert_eq!(op.apply("02079460000"), "+442079460000");
        assert_eq!(op.apply("+1555"), "+1555");
        let op = RewriteOp::Replace {
            regex: re("1"),
            with: "x".into(),
        };
        assert_eq!(op.apply("111"), "x11");
        let op = RewriteOp::Replace {
            regex: re("^(?P<cc>\\d{2})"),
            with: "${cc}0$$".into(),
        };
        assert_eq!(op.apply("44123"), "440$123");
    }

    #[test]
    fn dialplan_rewrite_e164_step() {
        let op = RewriteOp::E164(E164Rule {
            country_code: "44".into(),
            national_prefix: "0".into(),
            international_prefix: "00".into(),
        });
        assert_eq!(op.apply("020 7946 0000"), "+442079460000");
    }

    #[test]
    fn dialplan_rewrite_apply_all_in_order_and_reports_change() {
        let ops = vec![RewriteOp::Strip(2), RewriteOp::Prepend("+".into())];
        assert_eq!(apply_all(&ops, "0044123"), Some("+44123".into()));
        assert_eq!(apply_all(&[], "0044123"), None);
        let noop = vec![RewriteOp::Strip(0)];
        assert_eq!(apply_all(&noop, "123"), None);
        let double = RewriteOp::Replace {
            regex: re(".+"),
            with: "$0$0".into(),
        };
        let ops = vec![double.clone(); 3];
        assert_eq!(apply_all(&ops, "12"), Some("12".repeat(8)));
        let ops = vec![double; 20];
        assert_eq!(
            apply_all(&ops, "12"),
            None,
            "capped at {MAX_REWRITTEN} bytes"
        );
    }

    #[test]
    fn dialplan_rewrite_check_replacement() {
        let r = re("^0(\\d+)$");
        assert_eq!(check_replacement(&r, "+44$1", "with"), Ok(()));
        assert_eq!(check_replacement(&r, "+44${1}0", "with"), Ok(()));
        assert_eq!(check_replacement(&r, "$$2 ${ $", "with"), Ok(()));
        assert_eq!(check_replacement(&r, "$0", "with"), Ok(()));
        assert_eq!(
            check_replacement(&r, "$2", "with"),
            Err("`with` refers to group `2` but the regex has 1 numbered group".into())
        );
        assert_eq!(
            check_replacement(&r, "$1x", "with"),
            Err(
                "`with` refers to group `1x` but the regex has 1 numbered group; \
                 to put text right after group 1, write `${1}x`"
                    .into()
            )
        );
        let named = re("^(?P<cc>\\d{2})(\\d)");
        assert_eq!(check_replacement(&named, "${cc}$2", "with"), Ok(()));
        assert_eq!(
            check_replacement(&named, "${c}", "with"),
            Err(
                "`with` refers to group `c` but the regex has 2 numbered groups \
                 and named groups cc"
                    .into()
            )
        );
    }
}
