//! Parsing and validating a completion or chat request into token ids and limits. Every bad
//! request becomes an OpenAI-style error naming the field; numbers are range-checked before
//! any arithmetic (a `max_tokens` of 2^64 − 1 is refused, never added to the prompt length).
//! Chat messages are rendered through the model's compiled chat template with the
//! conversation's maps in the order the client wrote them (tool-call arguments reach
//! `tojson` as sent).

// The error of every parsing step is a ready `Response`: one per bad request.
#![allow(clippy::result_large_err)]

use super::api::{bad, error};
use super::chat;
use super::App;
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::value::{Value as JValue, ValueKind};
use serde_json::Value;

/// A validated request.
#[derive(Debug)]
pub struct Parsed {
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Tokens to generate at most.
    pub max_tokens: usize,
    /// Server-sent events instead of one JSON body.
    pub stream: bool,
    /// Usage in every streamed chunk.
    pub include_usage: bool,
    /// Generate past eos.
    pub ignore_eos: bool,
}

/// Parses a request body for `/v1/completions` (`chat` false) or `/v1/chat/completions`.
pub fn parse(app: &App, body: &[u8], chat: bool) -> Result<Parsed, Response> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the request body is not JSON: {e}"), "body"))?;
    let o = v
        .as_object()
        .ok_or_else(|| bad("the request body must be a JSON object".into(), "body"))?;
    match o.get("model") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if *m == app.name => {}
        Some(Value::String(m)) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                &format!(
                    "the model '{m}' does not exist (this server has '{}')",
                    app.name
                ),
                Some("model"),
            ))
        }
        Some(_) => return Err(bad("model must be a string".into(), "model")),
    }
    let flag = |k: &str, default: bool| -> Result<bool, Response> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(format!("{k} must be true or false"), k)),
        }
    };
    let stream = flag("stream", false)?;
    let ignore_eos = flag("ignore_eos", false)?;
    let include_usage = match o.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(so)) => so.get("include_usage") == Some(&Value::Bool(true)),
        Some(_) => {
            return Err(bad(
                "stream_options must be an object".into(),
                "stream_options",
            ))
        }
    };
    if let Some(n) = o.get("n").filter(|n| !n.is_null()) {
        if n.as_u64() != Some(1) {
            return Err(bad("only n = 1 is supported".into(), "n"));
        }
    }
    let prompt = if chat {
        chat_prompt(app, &v, body, flag("add_generation_prompt", true)?)?
    } else {
        completion_prompt(app, o.get("prompt"))?
    };
    if prompt.is_empty() {
        return Err(bad(
            "the prompt has no tokens".into(),
            if chat { "messages" } else { "prompt" },
        ));
    }
    let key = if chat && o.contains_key("max_completion_tokens") {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let room = app.context.saturating_sub(prompt.len());
    let max_tokens = match o.get(key) {
        None | Some(Value::Null) => {
            if chat {
                room
            } else {
                room.min(16)
            }
        }
        // Compared with the room left, never added to the prompt length (no overflow).
        Some(m) => match m.as_u64() {
            Some(m) if m >= 1 && m <= room as u64 => m as usize,
            Some(m) if m >= 1 => {
                return Err(bad(
                    format!(
                        "the prompt has {} tokens and {key} is {m}: more than the model's context of {} tokens",
                        prompt.len(),
                        app.context
                    ),
                    key,
                ))
            }
            _ => {
                return Err(bad(
                    format!("{key} must be an integer from 1 to {}", room.max(1)),
                    key,
                ))
            }
        },
    };
    if max_tokens == 0 {
        return Err(bad(
            format!(
                "the prompt has {} tokens: the model's context of {} tokens leaves no room to generate",
                prompt.len(),
                app.context
            ),
            if chat { "messages" } else { "prompt" },
        ));
    }
    Ok(Parsed {
        prompt,
        max_tokens,
        stream,
        include_usage,
        ignore_eos,
    })
}

fn encode(app: &App, text: &str, special: bool, param: &str) -> Result<Vec<u32>, Response> {
    app.tokenizer
        .encode(text, special)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| bad(format!("cannot tokenize the {param}: {e}"), param))
}

fn completion_prompt(app: &App, p: Option<&Value>) -> Result<Vec<u32>, Response> {
    let vocab = app.tokenizer.get_vocab_size(true) as u64;
    let ids = |a: &[Value]| -> Option<Vec<u32>> {
        a.iter()
            .map(|x| x.as_u64().filter(|&i| i < vocab).map(|i| i as u32))
            .collect()
    };
    let bad_ids = || {
        bad(
            "prompt token ids must be integers in the vocabulary".into(),
            "prompt",
        )
    };
    match p {
        Some(Value::String(s)) => encode(app, s, true, "prompt"),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
            encode(app, a[0].as_str().unwrap_or_default(), true, "prompt")
        }
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_array() => {
            ids(a[0].as_array().map_or(&[][..], |v| v)).ok_or_else(bad_ids)
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_number) => ids(a).ok_or_else(bad_ids),
        Some(Value::Array(_)) => Err(bad(
            "only one prompt per request is supported".into(),
            "prompt",
        )),
        None | Some(Value::Null) => Err(bad("prompt is required".into(), "prompt")),
        Some(_) => Err(bad(
            "prompt must be a string or an array of token ids".into(),
            "prompt",
        )),
    }
}

/// The text of a message's content: a string, or the `text` of its parts, joined.
fn content_text(c: &Value) -> Option<String> {
    match c {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.concat()),
        _ => None,
    }
}

/// What the template reads, with maps in the client's order.
#[derive(serde::Deserialize)]
struct TemplateInputs {
    messages: Vec<JValue>,
    #[serde(default)]
    tools: Option<JValue>,
    #[serde(default)]
    chat_template_kwargs: Option<JValue>,
}

fn chat_prompt(app: &App, v: &Value, body: &[u8], gen_prompt: bool) -> Result<Vec<u32>, Response> {
    let Some(Value::Array(msgs)) = v.get("messages") else {
        return Err(bad("messages must be a non-empty array".into(), "messages"));
    };
    if msgs.is_empty() {
        return Err(bad("messages must be a non-empty array".into(), "messages"));
    }
    let mut plain = Vec::with_capacity(msgs.len());
    for (i, msg) in msgs.iter().enumerate() {
        let role = msg.get("role").and_then(Value::as_str);
        // An assistant turn that only calls tools may have no content.
        let content = match msg.get("content") {
            None | Some(Value::Null) if msg.get("tool_calls").is_some() => Some(String::new()),
            Some(c) => content_text(c),
            None => None,
        };
        match (role, content) {
            (Some(r), Some(c)) => plain.push((r.to_string(), c)),
            _ => {
                return Err(bad(
                    format!("messages[{i}] needs a string role and text content"),
                    "messages",
                ))
            }
        }
    }
    match v.get("chat_template_kwargs") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(_) => {
            return Err(bad(
                "chat_template_kwargs must be an object".into(),
                "chat_template_kwargs",
            ))
        }
    }
    let template = match &app.chat_template {
        None => {
            // No template: "role: content" lines, then "assistant:".
            let mut s = String::new();
            for (role, content) in &plain {
                s.push_str(&format!("{role}: {content}\n"));
            }
            return encode(app, &(s + "assistant:"), true, "messages");
        }
        Some(Err(why)) => {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &format!("the model's chat template does not compile: {why}"),
                None,
            ))
        }
        Some(Ok(t)) => t,
    };
    let inputs: TemplateInputs =
        serde_json::from_slice(body).map_err(|e| bad(format!("messages: {e}"), "messages"))?;
    let messages: Vec<JValue> = inputs
        .messages
        .iter()
        .zip(&plain)
        .map(|(m, (_, text))| template_message(m, text))
        .collect();
    let extra: Vec<(String, JValue)> = match &inputs.chat_template_kwargs {
        Some(kw) if kw.kind() == ValueKind::Map => kw
            .try_iter()
            .into_iter()
            .flatten()
            .map(|k| (k.to_string(), kw.get_item(&k).unwrap_or_default()))
            .collect(),
        _ => Vec::new(),
    };
    let text = template
        .render(
            JValue::from(messages),
            inputs.tools.unwrap_or_else(|| JValue::from(())),
            gen_prompt,
            &extra,
        )
        .map_err(|e| {
            bad(
                format!(
                    "the model's chat template refused the conversation: {}",
                    chat::describe(&e)
                ),
                "messages",
            )
        })?;
    // The template writes the special tokens itself (transformers tokenizes its output
    // without adding them again).
    encode(app, &text, false, "messages")
}

/// A message as the template sees it: every field as sent, in order, with list-of-parts
/// content replaced by its text.
fn template_message(m: &JValue, text: &str) -> JValue {
    let keys: Vec<JValue> = m.try_iter().map(|i| i.collect()).unwrap_or_default();
    JValue::from_pairs(keys.into_iter().map(|k| {
        let v = m.get_item(&k).unwrap_or_default();
        let v = if k.as_str() == Some("content") && v.kind() == ValueKind::Seq {
            JValue::from(text)
        } else {
            v
        };
        (k, v)
    }))
}
