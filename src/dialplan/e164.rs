//! E.164 normalisation of dialled numbers (the `e164` rewrite step).
//!
//! Rules, applied in this order to the user part:
//!
//! 1. Visual separators are removed: space, `-`, `.`, `(`, `)`. If the number
//!    is in international form (it starts with `+` or the international
//!    prefix) a parenthesised national prefix such as the UK `(0)` in
//!    `+44 (0)20 7946 0000` is dropped first.
//! 2. What is left must be an optional `+` followed by ASCII digits only;
//!    anything else (`alice`, `*21#`, `+`, an empty string) is returned
//!    **unchanged** (separators included).
//! 3. `+digits` is returned as is (separators removed).
//! 4. International prefix (default `00`) followed by at least one digit that
//!    is not `0`: the prefix becomes `+` (`0044 20…` → `+4420…`).
//! 5. National prefix (default `0`) followed by at least one digit: the
//!    prefix becomes `+` and the country code (`020 7946 0000` →
//!    `+442079460000`). An empty national prefix disables this rule.
//! 6. Otherwise (no prefix, e.g. a local or short number) the input is
//!    returned unchanged.
//!
//! The international prefix is tested before the national one, so `00…`
//! is international even though it starts with `0`. The length limit of
//! E.164 (15 digits) is not enforced.

/// A configured `e164` step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct E164Rule {
    /// Country calling code, digits only, e.g. `44`.
    pub country_code: String,
    /// National (trunk) prefix, digits only, possibly empty, e.g. `0`.
    pub national_prefix: String,
    /// International call prefix, digits only, non-empty, e.g. `00`.
    pub international_prefix: String,
}

/// Characters dropped as visual separators.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')')
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl E164Rule {
    /// Normalises `input` following the rules in the module documentation.
    pub(crate) fn normalize(&self, input: &str) -> String {
        let mut cleaned: String = input.chars().filter(|&c| !is_separator(c)).collect();
        let international = cleaned.starts_with('+')
            || (!self.international_prefix.is_empty()
                && cleaned.starts_with(self.international_prefix.as_str()));
        if international && !self.national_prefix.is_empty() {
            let group = format!("({})", self.national_prefix);
            if input.contains(&group) {
                cleaned = input
                    .replacen(&group, "", 1)
                    .chars()
                    .filter(|&c| !is_separator(c))
                    .collect();
            }
        }
        if let Some(digits) = cleaned.strip_prefix('+') {
            return if all_digits(digits) {
                cleaned
            } else {
                input.to_owned()
            };
        }
        if !all_digits(&cleaned) {
            return input.to_owned();
        }
        if let Some(rest) = cleaned.strip_prefix(self.international_prefix.as_str()) {
            if !self.international_prefix.is_empty() && rest.starts_with(|c: char| c != '0') {
                return format!("+{rest}");
            }
            if !self.international_prefix.is_empty() {
                return input.to_owned();
            }
        }
        if !self.national_prefix.is_empty()
            && let Some(rest) = cleaned.strip_prefix(self.national_prefix.as_str())
            && !rest.is_empty()
        {
            return format!("+{}{rest}", self.country_code);
        }
        input.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uk() -> E164Rule {
        E164Rule {
            country_code: "44".into(),
            national_prefix: "0".into(),
            international_prefix: "00".into(),
        }
    }

    fn nanp() -> E164Rule {
        E164Rule {
            country_code: "1".into(),
            national_prefix: "1".into(),
            international_prefix: "011".into(),
        }
    }

    #[test]
    fn dialplan_e164_national() {
        assert_eq!(uk().normalize("0 20 7946 0000"), "+442079460000");
        assert_eq!(uk().normalize("020-7946-0000"), "+442079460000");
        assert_eq!(uk().normalize("(020) 7946.0000"), "+442079460000");
        assert_eq!(uk().normalize("07700900123"), "+447700900123");
    }

    #[test]
    fn dialplan_e164_international_prefix() {
        assert_eq!(uk().normalize("0044 20 7946 0000"), "+442079460000");
        assert_eq!(uk().normalize("001 212 555 0100"), "+12125550100");
        assert_eq!(nanp().normalize("011 44 20 7946 0000"), "+442079460000");
        assert_eq!(nanp().normalize("1 (212) 555-0100"), "+12125550100");
    }

    #[test]
    fn dialplan_e164_plus_form_kept() {
        assert_eq!(uk().normalize("+442079460000"), "+442079460000");
        assert_eq!(uk().normalize("+44 20 7946 0000"), "+442079460000");
        assert_eq!(uk().normalize("+1-212-555-0100"), "+12125550100");
    }

    #[test]
    fn dialplan_e164_drops_parenthesised_trunk_prefix() {
        assert_eq!(uk().normalize("+44 (0)20 7946 0000"), "+442079460000");
        assert_eq!(uk().normalize("0044 (0) 20 7946 0000"), "+442079460000");
        // Not international: "(0)" is the national prefix itself.
        assert_eq!(uk().normalize("(0)20 7946 0000"), "+442079460000");
    }

    #[test]
    fn dialplan_e164_leaves_other_input_unchanged() {
        for s in [
            "",
            "+",
            "0",
            "00",
            "000",
            "0001",
            "alice",
            "*21#",
            "+44abc",
            "2079460000",
            "12 34",
            "+",
            "++44",
            "0٣",
            "sip",
        ] {
            assert_eq!(uk().normalize(s), s, "{s:?}");
        }
    }

    #[test]
    fn dialplan_e164_empty_national_prefix() {
        let r = E164Rule {
            national_prefix: String::new(),
            ..uk()
        };
        assert_eq!(r.normalize("2079460000"), "2079460000");
        assert_eq!(r.normalize("0044 1"), "+441");
        assert_eq!(r.normalize("+44 (0)1"), "+4401");
    }
}
