//! One escaping function per reader of what effbench writes, so a value from a suite, a flag
//! or a result file is read back as the same text and never as code: [`shell`] (POSIX sh:
//! Slurm scripts, `submit.sh`), [`yaml`] (a YAML 1.1/1.2 double-quoted scalar) and
//! [`kubelet`] (`$(VAR)` expansion in a container's command and args), [`csv`] (RFC 4180 and
//! spreadsheet formulas), [`markdown`] (a GitHub table cell or list item: no line breaks, no
//! raw HTML, no links, no mentions), [`html`] (element content and quoted attributes), plus
//! [`quoted`] and [`clip`] for user text inside one-line messages. No function here slices a
//! string by bytes.

use std::borrow::Cow;

/// At most `max` characters of `s` (never cut inside a character), with `…` when cut.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((i, _)) => Cow::Owned(format!("{}…", &s[..i])),
    }
}

/// User text inside a one-line message: double-quoted, control characters and quotes
/// escaped, clipped to 80 characters.
pub fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in clip(s, 80).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A POSIX shell word: unchanged when it holds only safe characters, else in single quotes
/// with each `'` written as `'\''`. Nothing inside is expanded (`$`, backquotes, `!`, `*`).
pub fn shell(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A YAML double-quoted scalar that YAML 1.1 and 1.2 parsers read back as exactly `s`: `"`
/// and `\` escaped, and every character that is not printable in YAML (C0 and C1 controls,
/// DEL, NEL, the line and paragraph separators, the BOM, U+FFFE/U+FFFF) written as `\uXXXX`.
pub fn yaml(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a container's `command` or `args`, where the kubelet expands `$(VAR)` and turns
/// `$$` into `$`: every `$` doubled, so the container sees `s` as written.
pub fn kubelet(s: &str) -> String {
    s.replace('$', "$$")
}

/// An RFC 4180 field that a spreadsheet shows as text: quoted when it holds a comma, quote
/// or line break, and prefixed with `'` when it would start a formula (`=`, `+`, `-`, `@`,
/// tab, CR) — unless it is a plain number such as `-1.5`.
pub fn csv(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r'])
        && s.trim().parse::<f64>().map_or(true, |v| !v.is_finite());
    let s: Cow<str> = if formula {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

/// Text for a GitHub-flavoured markdown table cell or list item: one line (line breaks and
/// other controls become spaces), `|` and the markdown punctuation that would start code,
/// emphasis, a link or an image backslash-escaped, `<`, `>` and `&` as entities (no raw HTML,
/// no autolinks), `@` as an entity (no mention pings).
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '!' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '@' => out.push_str("&#64;"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text for HTML or SVG element content and quoted attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Hostile strings every escaping function is tested with (here and in the tests of the
/// writers that use them).
pub const HOSTILE: &[&str] = &[
    "plain",
    "it's \"quoted\"",
    "$(rm -rf ~) `id` ${HOME} $HOME $$(X)",
    "a\nb\rc\td",
    "=HYPERLINK(\"http://x\",\"y\")",
    "+1+2",
    "-cmd|' /C calc'!A0",
    "@SUM(A1)",
    "| a | b |",
    "<script>alert(1)</script>",
    "</textarea><img src=x onerror=alert(1)>",
    "[link](javascript:alert(1)) ![i](http://x/y.png) @octocat",
    "**bold** _it_ ~~s~~ `code` # h",
    "on: yes: no: ~: null: 0755: 1e3: &a *a !tag %x {a: 1} [b]",
    "line\u{2028}sep\u{2029}para\u{85}nel\u{feff}bom\u{7f}del\u{0}nul\u{1b}[31m",
    "é中文🙂 non-ASCII, combining e\u{301}",
    "back\\slash \\\\ \\n",
    "",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_never_cuts_a_character() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("héllo", 5), "héllo");
        assert_eq!(clip("🙂🙂🙂", 1), "🙂…");
        for s in HOSTILE {
            for n in 0..12 {
                let _ = clip(s, n);
            }
        }
        assert_eq!(quoted("a\nb\"c"), "\"a\\nb\\\"c\"");
        assert!(!quoted(&"é".repeat(500)).contains('\n'));
    }

    #[test]
    fn shell_words_read_back_unchanged() {
        assert_eq!(shell("/opt/effbench"), "/opt/effbench");
        assert_eq!(shell("it's"), "'it'\\''s'");
        assert_eq!(shell(""), "''");
        for s in HOSTILE {
            let q = shell(s);
            // a quoted word starts and ends with ' and holds no bare '
            if q != *s {
                assert!(q.starts_with('\'') && q.ends_with('\''), "{q}");
                assert!(
                    !q[1..q.len() - 1].replace("'\\''", "").contains('\''),
                    "{q}"
                );
            }
        }
    }

    #[test]
    fn yaml_scalars_hold_no_raw_specials() {
        for s in HOSTILE {
            let y = yaml(s);
            let inner = &y[1..y.len() - 1];
            assert!(
                !inner
                    .chars()
                    .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')),
                "{y}"
            );
            assert!(!inner.replace("\\\"", "").contains('"'), "{y}");
        }
        assert_eq!(yaml("a\u{85}b"), "\"a\\u0085b\"");
        assert_eq!(kubelet("$(X) $$ $"), "$$(X) $$$$ $$");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        assert_eq!(csv("-1.5"), "-1.5");
        assert_eq!(csv("+3"), "+3");
        assert_eq!(csv("=1+2"), "'=1+2");
        assert_eq!(csv("-cmd"), "'-cmd");
        assert_eq!(csv("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("=A1,\"x\""), "\"'=A1,\"\"x\"\"\"");
        for s in HOSTILE {
            let c = csv(s);
            let body = c.trim_start_matches('"');
            assert!(
                !body.starts_with(['=', '+', '@', '\t', '\r'])
                    && (!body.starts_with('-')
                        || body.trim_end_matches('"').parse::<f64>().is_ok()),
                "{c}"
            );
        }
    }

    #[test]
    fn markdown_cells_stay_in_their_cell() {
        for s in HOSTILE {
            let m = markdown(s);
            assert!(!m.contains(['\n', '\r', '<', '>', '@']), "{m}");
            assert!(!m.replace("\\|", "").contains('|'), "{m}");
            assert!(!m.replace("\\`", "").contains('`'), "{m}");
            assert!(!m.replace("\\[", "").contains('['), "{m}");
        }
    }

    #[test]
    fn html_has_no_markup() {
        for s in HOSTILE {
            let h = html(s);
            assert!(!h.contains(['<', '>', '"', '\'']), "{h}");
        }
        assert_eq!(html("a&b"), "a&amp;b");
    }
}
