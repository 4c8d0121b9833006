//! Dial-plan errors: every syntax and semantic error carries `file:line:col`
//! and a one-line source snippet with a caret under the offending column.

use std::fmt;

/// A 1-based line/column position in the dial-plan source (columns count
/// characters), plus the byte range of the node when the parser knows it.
///
/// `line == 0` means "unknown" (never produced for nodes we deserialize).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Loc {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    /// Byte offset and byte length of the node in the source, when known.
    pub bytes: Option<(usize, usize)>,
}

impl Loc {
    /// Converts a serde-saphyr location.
    pub(crate) fn from_saphyr(l: &serde_saphyr::Location) -> Loc {
        let span = l.span();
        let bytes = match (span.byte_offset(), span.byte_len()) {
            (Some(o), Some(n)) => match (usize::try_from(o), usize::try_from(n)) {
                (Ok(o), Ok(n)) => Some((o, n)),
                _ => None,
            },
            _ => None,
        };
        Loc {
            line: usize::try_from(l.line()).unwrap_or(0),
            col: usize::try_from(l.column()).unwrap_or(0),
            bytes,
        }
    }
}

/// Why a dial plan could not be loaded.
///
/// `Display` renders `FILE:LINE:COL: message`, then the offending source line
/// and a caret under the column, so the text can be shown to an operator as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialplanError {
    /// The file is not well-formed YAML, or does not have the shape of a dial
    /// plan (unknown key, wrong type, missing field, duplicate key, ...).
    Yaml {
        /// File name as given by the caller.
        file: String,
        /// 1-based line (0 if unknown).
        line: usize,
        /// 1-based column in characters (0 if unknown).
        col: usize,
        /// What is wrong, without the position.
        message: String,
        /// The source line and a caret line under `col` (may be empty).
        snippet: String,
    },
    /// The YAML is well-formed but breaks a rule of the dial plan (unknown
    /// trunk, duplicate name, bad regex, bad address, ...).
    Invalid {
        /// File name as given by the caller.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column in characters.
        col: usize,
        /// What is wrong, without the position.
        message: String,
        /// The source line and a caret line under `col` (may be empty).
        snippet: String,
    },
    /// The file could not be read.
    Io {
        /// File name as given by the caller.
        file: String,
        /// The operating-system error text.
        message: String,
    },
}

impl DialplanError {
    /// The message without position or snippet.
    pub fn message(&self) -> &str {
        match self {
            DialplanError::Yaml { message, .. }
            | DialplanError::Invalid { message, .. }
            | DialplanError::Io { message, .. } => message,
        }
    }

    /// `(line, col)`, 1-based, when the error has a position.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        match self {
            DialplanError::Yaml { line, col, .. } | DialplanError::Invalid { line, col, .. }
                if *line > 0 =>
            {
                Some((*line, *col))
            }
            _ => None,
        }
    }

    /// The first line of the rendering: `FILE:LINE:COL: message` (or
    /// `FILE: message` when there is no position).
    pub fn headline(&self) -> String {
        match self {
            DialplanError::Yaml {
                file,
                line,
                col,
                message,
                ..
            }
            | DialplanError::Invalid {
                file,
                line,
                col,
                message,
                ..
            } if *line > 0 => format!("{file}:{line}:{col}: {message}"),
            DialplanError::Yaml { file, message, .. }
            | DialplanError::Invalid { file, message, .. }
            | DialplanError::Io { file, message } => format!("{file}: {message}"),
        }
    }
}

impl fmt::Display for DialplanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        match self {
            DialplanError::Yaml { snippet, .. } | DialplanError::Invalid { snippet, .. }
                if !snippet.is_empty() =>
            {
                write!(f, "\n{snippet}")
            }
            _ => Ok(()),
        }
    }
}

impl std::error::Error for DialplanError {}

/// Longest source line shown in a snippet, in characters; longer lines are
/// cut to a window around the column.
const SNIPPET_WIDTH: usize = 120;

/// Renders the source line `line` of `src` and a caret line under `col`.
///
/// Control characters are shown as `?` so a hostile file cannot drive the
/// operator's terminal; tabs are kept in both lines so the caret lines up.
pub(crate) fn snippet(src: &str, line: usize, col: usize) -> String {
    let Some(text) = line.checked_sub(1).and_then(|i| src.split('\n').nth(i)) else {
        return String::new();
    };
    let text = text.strip_suffix('\r').unwrap_or(text);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect();
    let caret_at = col.saturating_sub(1).min(chars.len());
    let start = if chars.len() > SNIPPET_WIDTH {
        caret_at.saturating_sub(SNIPPET_WIDTH / 2)
    } else {
        0
    };
    let end = chars.len().min(start.saturating_add(SNIPPET_WIDTH));
    let shown: String = chars.get(start..end).unwrap_or_default().iter().collect();
    let pad: String = chars
        .get(start..caret_at)
        .unwrap_or_default()
        .iter()
        .map(|&c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("{shown}\n{pad}^")
}

/// Makes user-provided text safe and short for an error message: control
/// characters are escaped and long values are cut.
pub(crate) fn show(s: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Collects errors while a dial plan is being validated.
pub(crate) struct Diags<'a> {
    /// The whole source text (for snippets and raw scalars).
    pub src: &'a str,
    /// File name used in messages.
    pub file: &'a str,
    /// Errors found so far, in discovery order.
    pub errors: Vec<DialplanError>,
}

impl<'a> Diags<'a> {
    /// A collector for `src` named `file`.
    pub(crate) fn new(src: &'a str, file: &'a str) -> Self {
        Diags {
            src,
            file,
            errors: Vec::new(),
        }
    }

    /// Records a semantic error at `loc`.
    pub(crate) fn invalid(&mut self, loc: Loc, message: impl Into<String>) {
        self.errors.push(DialplanError::Invalid {
            file: self.file.to_owned(),
            line: loc.line,
            col: loc.col,
            message: message.into(),
            snippet: snippet(self.src, loc.line, loc.col),
        });
    }

    /// The exact source text of a node, when its byte range is known.
    pub(crate) fn raw(&self, loc: Loc) -> Option<&'a str> {
        let (start, len) = loc.bytes?;
        self.src.get(start..start.checked_add(len)?)
    }

    /// The errors sorted by position (stable for equal positions).
    pub(crate) fn into_sorted(mut self) -> Vec<DialplanError> {
        self.errors
            .sort_by_key(|e| e.line_col().unwrap_or((usize::MAX, usize::MAX)));
        self.errors
    }
}

/// Builds the error for a serde-saphyr failure, rewording the few messages
/// that would puzzle an operator.
pub(crate) fn from_yaml_error(e: &serde_saphyr::Error, src: &str, file: &str) -> DialplanError {
    use serde_saphyr::MessageFormatter;
    let raw = serde_saphyr::UserMessageFormatter
        .format_message(e.without_snippet())
        .into_owned();
    let message = reword(&show_long(&raw));
    let (line, col) = e
        .location()
        .map(|l| {
            let l = Loc::from_saphyr(&l);
            (l.line, l.col)
        })
        .unwrap_or((0, 0));
    DialplanError::Yaml {
        file: file.to_owned(),
        line,
        col,
        message,
        snippet: snippet(src, line, col),
    }
}

/// Like [`show`] but keeps up to 400 characters (parser messages).
fn show_long(s: &str) -> String {
    s.chars()
        .take(400)
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

/// Replaces parser wording that leaks Rust types with dial-plan wording.
fn reword(msg: &str) -> String {
    if msg.contains("expected end of mapping after enum variant value") {
        return "a rewrite step has exactly one key (strip, prepend, replace or e164); \
                start each step with its own `- `"
            .to_owned();
    }
    if msg == "invalid boolean" {
        return "expected `true` or `false`".to_owned();
    }
    if msg.starts_with("cannot deserialize null into string") {
        return "expected a string here, found nothing (null)".to_owned();
    }
    msg.replace("invalid u32", "expected a whole number")
        .replace("invalid u16", "expected a whole number")
        .replace("invalid u64", "expected a whole number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialplan_snippet_puts_caret_under_column() {
        let src = "a: 1\n  trunks: [x, y]\n";
        assert_eq!(snippet(src, 2, 14), "  trunks: [x, y]\n             ^");
    }

    #[test]
    fn dialplan_snippet_keeps_tabs_and_hides_controls() {
        let src = "\tk: \u{1b}[31mv\r\n";
        assert_eq!(snippet(src, 1, 5), "\tk: ?[31mv\n\t   ^");
    }

    #[test]
    fn dialplan_snippet_out_of_range_is_empty_or_clamped() {
        assert_eq!(snippet("a\n", 0, 1), "");
        assert_eq!(snippet("a\n", 9, 1), "");
        assert_eq!(snippet("ab", 1, 99), "ab\n  ^");
    }

    #[test]
    fn dialplan_snippet_windows_long_lines() {
        let line = "x".repeat(1000);
        let s = snippet(&line, 1, 900);
        let (shown, caret) = s.split_once('\n').unwrap_or_default();
        assert_eq!(shown.chars().count(), SNIPPET_WIDTH);
        assert_eq!(caret.len(), SNIPPET_WIDTH / 2 + 1);
    }

    #[test]
    fn dialplan_error_display_format() {
        let e = DialplanError::Invalid {
            file: "f.yaml".into(),
            line: 3,
            col: 5,
            message: "boom".into(),
            snippet: "line\n    ^".into(),
        };
        assert_eq!(e.to_string(), "f.yaml:3:5: boom\nline\n    ^");
        assert_eq!(e.line_col(), Some((3, 5)));
        let io = DialplanError::Io {
            file: "f.yaml".into(),
            message: "not found".into(),
        };
        assert_eq!(io.to_string(), "f.yaml: not found");
    }

    #[test]
    fn dialplan_show_escapes_and_truncates() {
        assert_eq!(show("a\nb"), "a\\nb");
        assert_eq!(show(&"y".repeat(70)).chars().count(), 65);
    }
}
