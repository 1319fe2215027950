//! JSON over plain HTTP, as svcgen's clients of a service's control
//! interface and of the orchestrator's API use it: one optional bearer
//! key, each request bounded by the orchestrator's 30 s and by the
//! command's [`Deadline`], any status of 400 or more an error naming the
//! status and the answer's `detail`.

use std::time::Duration;

use anyhow::{anyhow, Context};
use serde::{de::DeserializeOwned, Deserialize, Deserializer};
use serde_json::Value;

use crate::deadline::Deadline;

/// How long one request may take (the orchestrator's control client's timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest error body quoted in a message.
const QUOTED: usize = 300;

/// A JSON client with an optional bearer key.
pub struct JsonHttp {
    agent: ureq::Agent,
    bearer: Option<String>,
}

impl JsonHttp {
    /// A client sending `Authorization: Bearer <key>` when a non-blank key is given.
    pub fn new(key: Option<&str>) -> JsonHttp {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build();
        JsonHttp {
            agent: config.into(),
            bearer: given_key(key).map(|k| format!("Bearer {k}")),
        }
    }

    /// `GET url`, its answer read as `T` (else an error naming `rule`, see [`decode`]).
    pub fn get<T: DeserializeOwned>(
        &self,
        url: &str,
        rule: &str,
        deadline: &Deadline,
    ) -> anyhow::Result<T> {
        decode(self.call(url, None, deadline)?, url, rule)
    }

    /// `POST url` with a JSON body, its answer read as `T` (else an error
    /// naming `rule`, see [`decode`]).
    pub fn post<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &Value,
        rule: &str,
        deadline: &Deadline,
    ) -> anyhow::Result<T> {
        decode(self.call(url, Some(body), deadline)?, url, rule)
    }

    /// One request with the bearer key, if any, and the request limit: a
    /// `GET` without a body or a `POST` with a JSON one.
    fn call(&self, url: &str, body: Option<&Value>, deadline: &Deadline) -> anyhow::Result<Value> {
        let verb = if body.is_some() { "POST" } else { "GET" };
        deadline.check(&format!("{verb} {url}"))?;
        let limit = RequestLimit::of(deadline);
        let answer = match body {
            None => self.prepare(self.agent.get(url), &limit).call(),
            Some(body) => self
                .prepare(
                    self.agent
                        .post(url)
                        .header("Content-Type", "application/json"),
                    &limit,
                )
                .send(body.to_string()),
        };
        read(answer, verb, url, &limit)
    }

    /// `request` with `Authorization: Bearer <key>` when there is a key,
    /// bounded by `limit`.
    fn prepare<B>(
        &self,
        request: ureq::RequestBuilder<B>,
        limit: &RequestLimit,
    ) -> ureq::RequestBuilder<B> {
        let request = match &self.bearer {
            Some(bearer) => request.header("Authorization", bearer),
            None => request,
        };
        request.config().timeout_global(Some(limit.time)).build()
    }
}

/// Whether `url` is `http://HOST[:PORT][/...]` without blanks: the only
/// kind of address svcgen calls (plain HTTP, as the orchestrator does).
pub fn is_plain_http(url: &str) -> bool {
    url.strip_prefix("http://").is_some_and(|rest| {
        !rest.trim_matches('/').is_empty() && !rest.contains(char::is_whitespace)
    })
}

/// A key as given (a flag or an environment variable), trimmed; none when blank.
pub fn given_key(key: Option<&str>) -> Option<&str> {
    key.map(str::trim).filter(|k| !k.is_empty())
}

/// The answer as `T`, or one line naming the address and the rule it
/// breaks (`rule`, e.g. "the answer does not follow the control contract").
fn decode<T: DeserializeOwned>(answer: Value, url: &str, rule: &str) -> anyhow::Result<T> {
    serde_json::from_value(answer).with_context(|| format!("{url}: {rule}"))
}

/// An optional text of an answer (an `error`), a blank one taken as none:
/// the failure then gets its default reason, as the orchestrator's
/// `error or "..."` gives it, instead of an empty one.
pub fn non_blank<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    Ok(text.filter(|t| !t.trim().is_empty()))
}

/// How long one request may take: 30 s, or what is left of the deadline.
struct RequestLimit {
    time: Duration,
    /// Cut short by the deadline.
    by_deadline: bool,
}

impl RequestLimit {
    fn of(deadline: &Deadline) -> RequestLimit {
        let left = deadline.remaining();
        RequestLimit {
            time: REQUEST_TIMEOUT.min(left),
            by_deadline: left < REQUEST_TIMEOUT,
        }
    }

    /// `30s`, or `1.2s (what was left of --timeout)`.
    fn describe(&self) -> String {
        let secs = self.time.as_secs_f64();
        let time = if self.time.subsec_millis() == 0 {
            format!("{secs}s")
        } else {
            format!("{secs:.1}s")
        };
        if self.by_deadline {
            format!("{time} (what was left of --timeout)")
        } else {
            time
        }
    }
}

/// The answer's JSON, or one line saying why there is none.
fn read(
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    verb: &str,
    url: &str,
    limit: &RequestLimit,
) -> anyhow::Result<Value> {
    let mut response = answer.map_err(|e| transport_error(e, verb, url, limit))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("{verb} {url}: reading the answer (HTTP {status})"))?;
    if status >= 400 {
        return Err(anyhow!("{verb} {url}: HTTP {status}: {}", detail(&text)));
    }
    serde_json::from_str(&text)
        .with_context(|| format!("{verb} {url}: the answer is not JSON: {}", quote(&text)))
}

/// One line for a request that got no answer.
fn transport_error(
    error: ureq::Error,
    verb: &str,
    url: &str,
    limit: &RequestLimit,
) -> anyhow::Error {
    match error {
        ureq::Error::Timeout(_) => {
            anyhow!("{verb} {url}: no answer within {}", limit.describe())
        }
        ureq::Error::Io(e) => anyhow!("cannot reach {url}: {e}"),
        ureq::Error::HostNotFound => anyhow!("cannot reach {url}: host not found"),
        ureq::Error::ConnectionFailed => anyhow!("cannot reach {url}: connection failed"),
        ureq::Error::BadUri(e) => anyhow!("{url} is not an http:// URL: {e}"),
        other => anyhow!("{verb} {url}: {other}"),
    }
}

/// An error body's `detail` (text, or compact JSON when it is not a
/// string), else the body itself, on one line.
fn detail(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) => match map.get("detail") {
            Some(Value::String(s)) => quote(s),
            Some(other) => quote(&other.to_string()),
            None => quote(body),
        },
        _ => quote(body),
    }
}

/// `text` on one line, cut to a readable length.
fn quote(text: &str) -> String {
    let line = crate::cli::one_line(text);
    match line.char_indices().nth(QUOTED) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None if line.is_empty() => "(empty body)".to_string(),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_one_readable_line() {
        assert_eq!(detail(r#"{"detail": "no such\n task"}"#), "no such task");
        assert_eq!(
            detail(r#"{"detail": [{"loc": ["body", "blueprint"], "msg": "field required"}]}"#),
            r#"[{"loc":["body","blueprint"],"msg":"field required"}]"#
        );
        assert_eq!(detail("<h1>Bad Gateway</h1>\n"), "<h1>Bad Gateway</h1>");
        assert_eq!(detail(""), "(empty body)");
        let long = "x".repeat(QUOTED + 10);
        assert_eq!(quote(&long).chars().count(), QUOTED + 1);
    }

    #[test]
    fn a_timeout_names_the_limit_actually_used() {
        let full = RequestLimit {
            time: REQUEST_TIMEOUT,
            by_deadline: false,
        };
        assert_eq!(full.describe(), "30s");
        let cut = RequestLimit {
            time: Duration::from_millis(1240),
            by_deadline: true,
        };
        assert_eq!(cut.describe(), "1.2s (what was left of --timeout)");
        let ends_soon = RequestLimit::of(&Deadline::after(Duration::from_secs(2)));
        assert!(ends_soon.by_deadline && ends_soon.time <= Duration::from_secs(2));
        let ends_late = RequestLimit::of(&Deadline::after(Duration::from_secs(100)));
        assert!(!ends_late.by_deadline && ends_late.time == REQUEST_TIMEOUT);
    }

    #[test]
    fn a_blank_error_is_no_error() {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default, deserialize_with = "non_blank")]
            error: Option<String>,
        }
        let read = |v: Value| {
            serde_json::from_value::<Answer>(v)
                .expect("an answer")
                .error
        };
        assert_eq!(read(serde_json::json!({"error": ""})), None);
        assert_eq!(read(serde_json::json!({"error": " \n"})), None);
        assert_eq!(read(serde_json::json!({"error": null})), None);
        assert_eq!(read(serde_json::json!({})), None);
        assert_eq!(
            read(serde_json::json!({"error": "boom"})),
            Some("boom".into())
        );
    }
}
