//! GitHub-flavoured markdown: a pipe table (numbers right-aligned) and the footer as a list.
//! Text cells are escaped so a `|`, `<tag>` or newline in a model name cannot break the table
//! or inject HTML where the markdown is rendered.

use super::{display, footer, Exporter};
use crate::report::Report;

pub struct MarkdownExporter;

/// Escapes text for a markdown table cell.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '|' => out.push_str("\\|"),
            '\\' | '`' | '*' | '[' | ']' => {
                out.push('\\');
                out.push(ch);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text as a code span in a markdown table cell: backslash escapes do not work inside one, so
/// a `|` (which GitHub splits cells on even there) is escaped the one way tables allow, a
/// backtick becomes `'` and a newline a space.
pub fn code(s: &str) -> String {
    let inner: String = (s.chars())
        .map(|c| match c {
            '`' => "'".to_string(),
            '|' => "\\|".to_string(),
            '\n' | '\r' => " ".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!("`{inner}`")
}

impl Exporter for MarkdownExporter {
    fn serialize(&self, report: &Report) -> anyhow::Result<Vec<u8>> {
        let mut out = String::new();
        let headers: Vec<String> = (report.columns.iter())
            .map(|c| escape(&c.display_header()))
            .collect();
        out.push_str(&format!("| {} |\n", headers.join(" | ")));
        let align: Vec<&str> = report
            .columns
            .iter()
            .map(|c| if c.is_numeric() { "---:" } else { "---" })
            .collect();
        out.push_str(&format!("|{}|\n", align.join("|")));
        for row in &report.rows {
            let cells: Vec<String> = row
                .cells
                .iter()
                .zip(&row.speedup)
                .zip(&row.estimated)
                .map(|((c, s), e)| escape(&display(c, *s, *e)))
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        let notes = footer(report);
        if !notes.is_empty() {
            out.push('\n');
            for n in notes {
                out.push_str(&format!("- {}\n", escape(&n)));
            }
        }
        Ok(out.into_bytes())
    }
}
