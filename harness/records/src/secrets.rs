//! Secrets travel by the name of an environment variable and are never written: not into
//! results, manifests, `loadgen.toml`, the site, nor hashed into run ids. This module refuses
//! a value that looks like a secret where a name is expected ([`check_env_name`]), a URL that
//! carries credentials ([`check_url`]) and a secret-looking value in a worker's `env`
//! ([`check_env_value`]) — each error shows the by-name form and never the value — and keeps
//! the values read from the environment at run time so every file effbench writes can be
//! scrubbed of them ([`register`], [`redact`]).

use std::sync::Mutex;

static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Prefixes of well-known token formats (OpenAI, Hugging Face, GitHub, GitLab, Slack, AWS,
/// Google, JWTs).
const TOKEN_PREFIXES: &[&str] = &[
    "sk-",
    "sk_",
    "hf_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "AKIA",
    "ASIA",
    "AIza",
    "eyJ",
    "Bearer ",
    "bearer ",
];

/// Words in a variable or parameter name that say its value is a secret.
const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
    "AUTH",
    "SIGNATURE",
];

/// True when `value` looks like a key or token: a known token prefix, or a long mix of
/// letters and digits with no spaces (what an environment variable's *name* never is: names
/// are letters, digits and `_`, and in practice upper case).
pub fn looks_like_secret(value: &str) -> bool {
    let v = value.trim();
    if TOKEN_PREFIXES.iter().any(|p| v.starts_with(p)) && v.len() >= 8 {
        return true;
    }
    // A path (a temp directory has random letters and digits too) is not a key.
    if ["/", "./", "../", "~/"].iter().any(|p| v.starts_with(p)) {
        return false;
    }
    let long = v.chars().count() >= 20;
    let no_space = !v.chars().any(char::is_whitespace);
    let digits = v.chars().any(|c| c.is_ascii_digit());
    let lower = v.chars().any(|c| c.is_ascii_lowercase());
    let upper = v.chars().any(|c| c.is_ascii_uppercase());
    let token_chars = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.+/=~".contains(c));
    long && no_space
        && token_chars
        && digits
        && (lower && upper || v.len() >= 32 && !v.contains('_'))
}

/// True when a variable or parameter name says its value is a secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase().replace('-', "_");
    SECRET_WORDS.iter().any(|w| n.contains(w)) || n == "KEY" || n.ends_with("_KEY")
}

/// `what` (e.g. `[serving] api_key_env`) must name an environment variable: letters, digits
/// and `_`, not starting with a digit. A secret given in its place is refused without
/// repeating it.
pub fn check_env_name(what: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if looks_like_secret(name) {
        return Err(format!(
            "{what} takes the name of an environment variable, and this value looks like a \
             key itself (not shown); keep the key out of files: export MY_API_KEY=... and \
             write {what} = \"MY_API_KEY\""
        ));
    }
    if !valid {
        // Not echoed: what is there instead of a name may be a key.
        return Err(format!(
            "{what} must name an environment variable (letters, digits and '_', not starting \
             with a digit, e.g. \"OPENAI_API_KEY\"); the value given is not a name"
        ));
    }
    Ok(())
}

/// A URL must not carry credentials: no `user:password@` and no query parameter named like
/// a key or token. The error shows the URL with them replaced by `***`.
pub fn check_url(what: &str, url: &str) -> Result<(), String> {
    let redacted = redact_url(url);
    if redacted != url {
        return Err(format!(
            "{what} = {} holds credentials, which would be written into every result; put \
             the key in an environment variable and name it instead: api_key_env = \
             \"MY_API_KEY\" (loadgen: --api-key-env MY_API_KEY)",
            crate::escape::quoted(&redacted)
        ));
    }
    Ok(())
}

/// `url` with the user-info part and secret-named query values replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, frag) = match query.split_once('#') {
                Some((q, f)) => (q, format!("#{f}")),
                None => (query, String::new()),
            };
            let q: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) if is_secret_name(k) && !v.is_empty() => format!("{k}=***"),
                    Some((k, v)) if looks_like_secret(v) => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}{frag}", q.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

/// A worker environment value from a suite (`[options] env`): a secret there would be
/// stored in every result and hashed into the run id, so it must come by name instead.
pub fn check_env_value(key: &str, name: &str, value: &str) -> Result<(), String> {
    if is_secret_name(name) || looks_like_secret(value) {
        return Err(format!(
            "{key}.{name} looks like a secret (not shown); secrets are passed by name so they \
             are never stored: export {var}=... before effbench runs and write \
             options.env_from = {{ {name} = \"{var}\" }}",
            var = if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                name
            } else {
                "MY_SECRET"
            }
        ));
    }
    Ok(())
}

/// Remembers a secret read from the environment so [`redact`] removes it from everything
/// effbench writes (short values are not tracked: they would match ordinary text).
pub fn register(value: &str) {
    if value.len() >= 6 {
        let mut k = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
        if !k.iter().any(|v| v == value) {
            k.push(value.to_string());
        }
    }
}

/// `text` with every registered secret and every credential-carrying URL replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for v in KNOWN.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), "***");
        }
    }
    out
}

/// A command line for a manifest: credential-carrying URLs redacted, registered secrets
/// removed.
pub fn redact_command(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| {
            let a = if a.contains("://") {
                match a.split_once('=') {
                    Some((flag, url)) if flag.starts_with("--") => {
                        format!("{flag}={}", redact_url(url))
                    }
                    _ => redact_url(a),
                }
            } else {
                a.clone()
            };
            redact(&a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_names_are_told_apart() {
        for s in [
            "sk-proj-abcdefghijklmnop",
            "hf_AbCdEfGhIjKlMnOpQrStUv",
            "ghp_0123456789abcdefABCDEF0123456789abcd",
            "a8Fj3kLm9QpZ2xRt7VbNc4",
            "eyJhbGciOiJIUzI1NiJ9.e30.abc",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert!(looks_like_secret(s), "{s}");
            let e = check_env_name("api_key_env", s).unwrap_err();
            assert!(!e.contains(s), "the secret is not echoed: {e}");
            assert!(e.contains("api_key_env = \"MY_API_KEY\""), "{e}");
        }
        for n in [
            "OPENAI_API_KEY",
            "HF_TOKEN",
            "MY_VERY_LONG_VARIABLE_NAME_2",
            "key",
        ] {
            assert!(!looks_like_secret(n), "{n}");
            check_env_name("api_key_env", n).unwrap();
        }
        assert!(check_env_name("api_key_env", "A=B").is_err());
        assert!(check_env_name("api_key_env", "").is_err());
    }

    #[test]
    fn credentials_in_urls_are_refused_and_redacted() {
        assert_eq!(
            redact_url("http://user:KEY123@host:8000/v1?x=1&api_key=abc#f"),
            "http://***@host:8000/v1?x=1&api_key=***#f"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8000/v1"),
            "http://127.0.0.1:8000/v1"
        );
        let e = check_url("[serving] base_url", "https://me:s3cr3tpass@h/v1").unwrap_err();
        assert!(!e.contains("s3cr3tpass") && e.contains("***@h/v1"), "{e}");
        assert!(e.contains("api_key_env"), "{e}");
        check_url("b", "http://localhost:1/v1").unwrap();
        assert!(check_url("b", "http://h/v1?token=zzz").is_err());
        let cmd = redact_command(&[
            "effbench".into(),
            "--base-url".into(),
            "http://u:p4ssw0rd@h".into(),
            "--base-url=http://u:p4ssw0rd@h".into(),
        ]);
        assert!(cmd.iter().all(|a| !a.contains("p4ssw0rd")), "{cmd:?}");
    }

    #[test]
    fn worker_env_secrets_must_come_by_name() {
        check_env_value("options.env", "OMP_NUM_THREADS", "2").unwrap();
        check_env_value("options.env", "PID_DIR", "/tmp/.tmpAbC12dEf34/pids").unwrap();
        let e = check_env_value("options.env", "HF_TOKEN", "hf_abc").unwrap_err();
        assert!(!e.contains("hf_abc"), "{e}");
        assert!(
            e.contains("options.env_from = { HF_TOKEN = \"HF_TOKEN\" }"),
            "{e}"
        );
        assert!(check_env_value("options.env", "X", "sk-0123456789abcdefghij").is_err());
    }

    #[test]
    fn registered_values_are_scrubbed() {
        register("zz-registered-secret-value");
        assert_eq!(redact("a zz-registered-secret-value b"), "a *** b");
        register("abc"); // too short to track
        assert_eq!(redact("abc"), "abc");
    }
}
