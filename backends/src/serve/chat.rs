//! Chat templates rendered the way Hugging Face `transformers` renders them
//! (`apply_chat_template`): a Jinja environment with `trim_blocks` and `lstrip_blocks`, loop
//! controls (`break`/`continue`), Python string/dict/list methods (minijinja-contrib's
//! pycompat layer: `.strip()`, `.split()`, `.items()`, `.get()`, `.format()` …),
//! `raise_exception`, `strftime_now`, and `tojson` as transformers overrides it (Python's
//! `json.dumps`: `", "`/`": "` separators, `indent`, `separators`, `ensure_ascii`,
//! `sort_keys`, no HTML escaping, keys in insertion order). The template is compiled once
//! per model ([`ChatTemplate::new`]); each request only renders it. Tested against
//! renderings made by transformers itself for llama.cpp's collection of real templates
//! (`backends/tests/chat_templates.rs`, fixtures from `scripts/render-chat-templates.py`).

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;
use std::io::{self, Write};

const NAME: &str = "chat_template";

/// A compiled chat template and the special tokens it may print.
pub struct ChatTemplate {
    env: Environment<'static>,
    special: Vec<(String, String)>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").finish_non_exhaustive()
    }
}

/// Where `strftime_now` reads the time.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// Local time at rendering (as transformers does).
    Local,
    /// A fixed instant (reproducible renderings).
    Fixed(chrono::NaiveDateTime),
}

impl ChatTemplate {
    /// Compiles `source`; `special` are the tokenizer's special tokens by template name
    /// (`bos_token`, `eos_token` …), visible to every rendering.
    pub fn new(source: &str, special: &[(&str, &str)], clock: Clock) -> Result<Self, Error> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()?,
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", move |fmt: String| strftime_now(clock, &fmt));
        env.add_filter("tojson", tojson);
        // Python's None is not iterable (`tools is iterable` guards templates against
        // `tools=None`); minijinja's `iterable` test says yes to none.
        env.add_test("iterable", |v: Value| !v.is_none() && v.try_iter().is_ok());
        env.add_template_owned(NAME, generation_tags_as_blocks(source))?;
        Ok(ChatTemplate {
            env,
            special: special
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    /// Renders a conversation: `messages` (a list of message maps), `tools` (none when the
    /// request has none), whether to open the assistant's turn, and extra variables (a
    /// request's `chat_template_kwargs`, e.g. `enable_thinking`; they override the special
    /// tokens, not the conversation).
    pub fn render(
        &self,
        messages: Value,
        tools: Value,
        add_generation_prompt: bool,
        extra: &[(String, Value)],
    ) -> Result<String, Error> {
        const OWN: [&str; 4] = ["messages", "tools", "documents", "add_generation_prompt"];
        let mut ctx: Vec<(String, Value)> = self
            .special
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        ctx.extend(
            extra
                .iter()
                .filter(|(k, _)| !OWN.contains(&k.as_str()))
                .cloned(),
        );
        ctx.push(("messages".into(), messages));
        ctx.push(("tools".into(), tools));
        ctx.push(("documents".into(), Value::from(())));
        ctx.push((
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        ));
        let ctx = Value::from_pairs(ctx);
        self.env.get_template(NAME)?.render(ctx)
    }
}

/// transformers' `{% generation %}…{% endgeneration %}` (its AssistantTracker extension,
/// which only marks the assistant's text for training masks) renders its body unchanged; minijinja
/// has no such tag, so each becomes `{% if true %}` / `{% endif %}` with the same
/// whitespace-control marks (`-`, `+`): the same text, the same trimming.
fn generation_tags_as_blocks(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find("{%") {
        out.push_str(&rest[..at]);
        let tag = &rest[at..];
        let Some(end) = tag.find("%}") else {
            break;
        };
        let inner = &tag[2..end];
        let (open, body) = match inner.strip_prefix(['-', '+']) {
            Some(b) => (&inner[..1], b),
            None => ("", inner),
        };
        let (body, close) = match body.strip_suffix(['-', '+']) {
            Some(b) => (b, &inner[inner.len() - 1..]),
            None => (body, ""),
        };
        let word = match body.trim() {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match word {
            Some(w) => out.push_str(&format!("{{%{open} {w} {close}%}}")),
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The error text a client sees: the template's own message for `raise_exception`, else
/// minijinja's description with the template line.
pub fn describe(e: &Error) -> String {
    match (e.kind(), e.detail()) {
        (ErrorKind::InvalidOperation, Some(d)) => d.to_string(),
        _ => match e.line() {
            Some(line) => format!("{e} (line {line})"),
            None => e.to_string(),
        },
    }
}

fn strftime_now(clock: Clock, fmt: &str) -> Result<String, Error> {
    use chrono::format::{Item, StrftimeItems};
    let items: Vec<Item> = StrftimeItems::new(fmt).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: unsupported format '{fmt}'"),
        ));
    }
    let now = match clock {
        Clock::Local => chrono::Local::now().naive_local(),
        Clock::Fixed(t) => t,
    };
    let mut out = String::new();
    std::fmt::Write::write_fmt(
        &mut out,
        format_args!("{}", now.format_with_items(items.into_iter())),
    )
    .map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: cannot format '{fmt}'"),
        )
    })?;
    Ok(out)
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`.
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort: Option<bool> = kwargs.get("sort_keys")?;
    let indent: Option<Value> = kwargs.get("indent")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_string(),
            None => " ".repeat(usize::try_from(v).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be a string or an integer >= 0",
                )
            })?),
        }),
    };
    let (item_sep, key_sep) = match separators.as_deref() {
        Some([i, k]) => (i.clone(), k.clone()),
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "tojson: separators must be (item_separator, key_separator)",
            ))
        }
        None if indent.is_some() => (",".into(), ": ".into()),
        None => (", ".into(), ": ".into()),
    };
    let value = if sort == Some(true) {
        sorted(value)?
    } else {
        value.clone()
    };
    let fmt = PyJson {
        item_sep,
        key_sep,
        indent,
        level: 0,
        has_value: false,
        ascii: ascii.unwrap_or(false),
    };
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value.serialize(&mut ser).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson: cannot serialize: {e}"),
        )
    })?;
    Ok(Value::from(String::from_utf8_lossy(&out).into_owned()))
}

/// A copy with every map's keys in sorted order (`sort_keys=True`).
fn sorted(v: &Value) -> Result<Value, Error> {
    use minijinja::value::ValueKind;
    Ok(match v.kind() {
        ValueKind::Map => {
            let mut pairs = Vec::new();
            for k in v.try_iter()? {
                let item = v.get_item(&k)?;
                pairs.push((k.to_string(), sorted(&item)?));
            }
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::from_pairs(pairs)
        }
        ValueKind::Seq => v
            .try_iter()?
            .map(|x| sorted(&x))
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        _ => v.clone(),
    })
}

/// serde_json formatting as Python's `json.dumps` writes it.
struct PyJson {
    item_sep: String,
    key_sep: String,
    indent: Option<String>,
    level: usize,
    has_value: bool,
    ascii: bool,
}

impl PyJson {
    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        if let Some(ind) = &self.indent {
            w.write_all(b"\n")?;
            for _ in 0..self.level {
                w.write_all(ind.as_bytes())?;
            }
        }
        Ok(())
    }
    fn open<W: ?Sized + Write>(&mut self, w: &mut W, c: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(c)
    }
    fn close<W: ?Sized + Write>(&mut self, w: &mut W, c: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(c)
    }
    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(self.item_sep.as_bytes())?;
        }
        self.newline(w)
    }
}

impl serde_json::ser::Formatter for PyJson {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(self.key_sep.as_bytes())
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, v: f64) -> io::Result<()> {
        w.write_all(py_float(v).as_bytes())
    }
    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, v: f32) -> io::Result<()> {
        w.write_all(py_float(v as f64).as_bytes())
    }
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, s: &str) -> io::Result<()> {
        if !self.ascii {
            return w.write_all(s.as_bytes());
        }
        for c in s.chars() {
            if (' '..='~').contains(&c) {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional between 1e-4 and
/// 1e16, else `d.ddde±XX`.
pub fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-5".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        let pad = "0".repeat(int_len - digits.len());
        format!("{sign}{digits}{pad}.0")
    } else {
        let (int, frac) = digits.split_at(int_len);
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, ctx: serde_json::Value) -> String {
        let mut env = Environment::new();
        env.add_filter("tojson", tojson);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.render_str(src, Value::from(minijinja::value::Serde(ctx)))
            .unwrap()
    }

    #[test]
    fn floats_print_like_python_repr() {
        for (v, want) in [
            (1.0, "1.0"),
            (21.5, "21.5"),
            (-0.5, "-0.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e20, "1.2345e+20"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123456.789, "123456.789"),
        ] {
            assert_eq!(py_float(v), want, "{v}");
        }
    }

    #[test]
    fn tojson_is_python_json_dumps() {
        let ctx = serde_json::json!({"x": {"b": [1, 2.0, "ü<&>'"], "a": null, "c": true}});
        assert_eq!(
            render("{{ x|tojson }}", ctx.clone()),
            r#"{"a": null, "b": [1, 2.0, "ü<&>'"], "c": true}"#
        );
        assert_eq!(
            render("{{ x|tojson(indent=2) }}", ctx.clone()),
            "{\n  \"a\": null,\n  \"b\": [\n    1,\n    2.0,\n    \"ü<&>'\"\n  ],\n  \"c\": true\n}"
        );
        assert_eq!(
            render("{{ x.b|tojson(ensure_ascii=True) }}", ctx.clone()),
            r#"[1, 2.0, "\u00fc<&>'"]"#
        );
        assert_eq!(
            render("{{ x|tojson(separators=(',', ':')) }}", ctx.clone()),
            r#"{"a":null,"b":[1,2.0,"ü<&>'"],"c":true}"#
        );
        assert_eq!(
            render("{{ [[], {}]|tojson(indent=1) }}", ctx),
            "[\n [],\n {}\n]"
        );
    }

    #[test]
    fn strftime_now_reads_the_clock() {
        let t = chrono::NaiveDate::from_ymd_opt(2025, 3, 7)
            .unwrap()
            .and_hms_opt(14, 5, 9)
            .unwrap();
        let tpl = ChatTemplate::new(
            "{{ strftime_now('%d %b %Y') }}|{{ bos_token }}",
            &[("bos_token", "<s>")],
            Clock::Fixed(t),
        )
        .unwrap();
        let out = tpl
            .render(Value::from(()), Value::from(()), true, &[])
            .unwrap();
        assert_eq!(out, "07 Mar 2025|<s>");
        let bad = ChatTemplate::new("{{ strftime_now('%Q') }}", &[], Clock::Local).unwrap();
        assert!(bad
            .render(Value::from(()), Value::from(()), true, &[])
            .is_err());
    }

    #[test]
    fn generation_tags_render_their_body() {
        let src =
            "a\n  {%- generation -%}\n  b {{ x }}\n{%- endgeneration +%}\nc{% if y %}{% endif %}";
        assert_eq!(
            generation_tags_as_blocks(src),
            "a\n  {%- if true -%}\n  b {{ x }}\n{%- endif +%}\nc{% if y %}{% endif %}"
        );
        let tpl = ChatTemplate::new(
            "{% generation %}\nhi{% endgeneration %}!",
            &[],
            Clock::Local,
        )
        .unwrap();
        assert_eq!(
            tpl.render(Value::from(()), Value::from(()), true, &[])
                .unwrap(),
            "hi!"
        );
    }

    #[test]
    fn raise_exception_reaches_the_client_verbatim() {
        let tpl = ChatTemplate::new(
            "{{ raise_exception('System role not supported') }}",
            &[],
            Clock::Local,
        )
        .unwrap();
        let e = tpl
            .render(Value::from(()), Value::from(()), false, &[])
            .unwrap_err();
        assert_eq!(describe(&e), "System role not supported");
    }
}
