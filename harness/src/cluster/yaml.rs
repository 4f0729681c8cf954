//! A small YAML writer for Kubernetes manifests: block style, keys in the order given, every
//! string a double-quoted scalar ([`crate::escape::yaml`]: no value is ever re-typed by a
//! YAML 1.1 parser — "on", "0755", "1e3" stay strings — and no control character, NEL or line
//! separator reaches the parser raw).

use serde_json::Value;

/// A YAML node with ordered maps.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    Str(String),
    Int(i64),
    Bool(bool),
}

/// `Node::Map` from pairs.
pub fn map(pairs: Vec<(&str, Node)>) -> Node {
    Node::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

pub fn s(v: impl Into<String>) -> Node {
    Node::Str(v.into())
}

pub fn int(v: i64) -> Node {
    Node::Int(v)
}

pub fn seq(items: Vec<Node>) -> Node {
    Node::Seq(items)
}

impl Node {
    /// The same document as JSON (for schema validation and tests).
    pub fn to_json(&self) -> Value {
        match self {
            Node::Map(p) => {
                Value::Object(p.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Node::Seq(v) => Value::Array(v.iter().map(Node::to_json).collect()),
            Node::Str(s) => Value::String(s.clone()),
            Node::Int(i) => Value::from(*i),
            Node::Bool(b) => Value::Bool(*b),
        }
    }

    /// Block-style YAML text of this document.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        match self {
            Node::Map(p) if !p.is_empty() => emit_map(p, 0, false, &mut out),
            Node::Seq(v) if !v.is_empty() => emit_seq(v, 0, &mut out),
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
        out
    }
}

/// Several documents separated by `---`.
pub fn documents(docs: &[Node]) -> String {
    docs.iter()
        .map(Node::to_yaml)
        .collect::<Vec<_>>()
        .join("---\n")
}

fn scalar(n: &Node) -> String {
    match n {
        Node::Str(s) => crate::escape::yaml(s),
        Node::Int(i) => i.to_string(),
        Node::Bool(b) => b.to_string(),
        Node::Map(_) => "{}".into(),
        Node::Seq(_) => "[]".into(),
    }
}

fn key(k: &str) -> String {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain {
        k.to_string()
    } else {
        crate::escape::yaml(k)
    }
}

fn is_block(n: &Node) -> bool {
    matches!(n, Node::Map(p) if !p.is_empty()) || matches!(n, Node::Seq(v) if !v.is_empty())
}

/// `inline_first`: the first key goes on the current line (after `- `).
fn emit_map(pairs: &[(String, Node)], indent: usize, inline_first: bool, out: &mut String) {
    for (i, (k, v)) in pairs.iter().enumerate() {
        if !(inline_first && i == 0) {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&key(k));
        out.push(':');
        match v {
            Node::Map(p) if !p.is_empty() => {
                out.push('\n');
                emit_map(p, indent + 2, false, out);
            }
            Node::Seq(items) if !items.is_empty() => {
                out.push('\n');
                emit_seq(items, indent + 2, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn emit_seq(items: &[Node], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match item {
            Node::Map(p) if !p.is_empty() => emit_map(p, indent + 2, true, out),
            n if is_block(n) => {
                out.push('\n');
                if let Node::Seq(v) = n {
                    emit_seq(v, indent + 2, out);
                }
            }
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_style_in_given_order() {
        let doc = map(vec![
            ("kind", s("Job")),
            (
                "spec",
                map(vec![("count", int(3)), ("on", Node::Bool(true))]),
            ),
            (
                "items",
                seq(vec![
                    map(vec![
                        ("name", s("a")),
                        ("args", seq(vec![s("x"), s("it's \"q\"")])),
                    ]),
                    s("0755"),
                    seq(vec![int(1)]),
                ]),
            ),
            ("empty", map(vec![])),
            ("none", seq(vec![])),
        ]);
        let y = doc.to_yaml();
        assert_eq!(
            y,
            "kind: \"Job\"\nspec:\n  count: 3\n  \"on\": true\nitems:\n  - name: \"a\"\n    args:\n      \
             - \"x\"\n      - \"it's \\\"q\\\"\"\n  - \"0755\"\n  - \n    - 1\nempty: {}\nnone: []\n"
        );
        assert_eq!(doc.to_json()["items"][0]["args"][1], "it's \"q\"");
        assert_eq!(documents(&[s("a"), s("b")]), "\"a\"\n---\n\"b\"\n");
    }
}
