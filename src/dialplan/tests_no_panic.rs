//! Tests: no input makes the dial-plan loader panic — the shipped plans cut,
//! spliced with junk and pathological values.

use super::DialPlan;

const LOOPBACK: &str = include_str!("../../dialplans/loopback-proxy.yaml");
const LOOPBACK_B2BUA: &str = include_str!("../../dialplans/loopback.yaml");
const EXAMPLES: &str = include_str!("../../dialplans/examples.yaml");

const JUNK: [&str; 21] = [
    "",
    "{",
    "}",
    "[",
    "- ",
    ": ",
    "\"",
    "'",
    "*a",
    "&a ",
    "\t",
    "\n",
    "\u{0}",
    "é",
    "!!binary ",
    "<<: ",
    "%YAML 1.2\n",
    "---\n",
    "~",
    "-1",
    "99999999999999999999",
];

/// Every 13th character: the prefix alone, junk inserted, the character cut.
fn mangle(src: &str) {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    for (n, &(i, _)) in chars.iter().enumerate().step_by(13) {
        let (head, tail) = src.split_at(i);
        let _ = DialPlan::check_yaml_str(head, "t.yaml");
        let j = JUNK.get(n % JUNK.len()).copied().unwrap_or_default();
        let _ = DialPlan::check_yaml_str(&format!("{head}{j}{tail}"), "t.yaml");
        let skip = tail.chars().next().map_or(0, char::len_utf8);
        let _ = DialPlan::check_yaml_str(&format!("{head}{}", &tail[skip..]), "t.yaml");
    }
}

/// Mutates the examples file (every feature) in many ways.
#[test]
fn dialplan_never_panics_on_mangled_input() {
    mangle(EXAMPLES);
}

/// The same for the B2BUA loopback plan (media section, route media).
#[test]
fn dialplan_never_panics_on_mangled_b2bua_plan() {
    mangle(LOOPBACK_B2BUA);
}

/// Pathological but well-formed values.
#[test]
fn dialplan_never_panics_on_huge_values() {
    let long = "9".repeat(100_000);
    let src = LOOPBACK.replace("source: client", &format!("to: {{ prefix: '{long}' }}"));
    let _ = DialPlan::check_yaml_str(&src, "t.yaml");
    let src = LOOPBACK.replace(
        "source: client",
        &format!("to: {{ regex: '{long}{{99999}}' }}"),
    );
    let _ = DialPlan::check_yaml_str(&src, "t.yaml");
    // Media ports and header options with extreme values.
    for ports in [
        format!("{long}-{long}"),
        "-".repeat(1000),
        "65534-65535".into(),
        "2-65535".into(),
    ] {
        let src = LOOPBACK_B2BUA.replace("20000-20999", &format!("'{ports}'"));
        let _ = DialPlan::check_yaml_str(&src, "t.yaml");
    }
    let headers = format!(
        "    headers:\n      pass: ['{long}*', '*', '**', '']\n      drop: ['*']\n      \
         add: {{ '{long}': '{long}' }}\n      rewrite:\n        - {{ name: '*', match: \
         '{long}{{99999}}', replace: '${long}' }}\n    codecs: ['{long}', '']\n"
    );
    let src = LOOPBACK_B2BUA.replacen(
        "    transport: udp\n",
        &format!("    transport: udp\n{headers}"),
        1,
    );
    let _ = DialPlan::check_yaml_str(&src, "t.yaml");
}
