//! Lambda HTTP envelopes ↔ raw headers and body bytes, and back to a response.
//!
//! Accepts Lambda Function URL / API Gateway HTTP API events (payload format 2.0) and API
//! Gateway REST events (1.0). The body is handed on as the exact bytes Veriff signed: a
//! plain body is taken as its UTF-8 bytes, a base64 body is decoded. Anything malformed is
//! an [`EnvelopeError`] (a 400 or a 413, decided in `error.rs`), never a panic. No I/O here.

use base64::Engine;
use serde_json::{Map, Value, json};

/// Why a Lambda event is not an HTTP request this function accepts. Never quotes the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The event is not an HTTP envelope of the known shapes (or its base64 is broken).
    #[error("malformed Lambda HTTP event: {0}")]
    Malformed(String),
    /// The body is larger than the configured limit.
    #[error("request body exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
}

/// The parts of an HTTP request the webhook handler needs.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// HTTP method, upper-case, when the envelope carries one.
    pub method: Option<String>,
    /// Headers with lower-cased names, in envelope order.
    pub headers: Vec<(String, String)>,
    /// The raw body bytes.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// All values of a header, looked up case-insensitively.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP answer: a status and a JSON document.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl HttpResponse {
    /// Builds a response.
    pub fn new(status: u16, body: Value) -> Self {
        HttpResponse { status, body }
    }

    /// The Lambda proxy-integration response understood by Function URLs and API Gateway.
    pub fn into_lambda(self) -> Value {
        json!({
            "statusCode": self.status,
            "headers": {
                "content-type": "application/json",
                "cache-control": "no-store",
                "x-content-type-options": "nosniff",
            },
            "body": self.body.to_string(),
            "isBase64Encoded": false,
        })
    }
}

/// Decodes a Lambda HTTP event, refusing bodies longer than `max_body_bytes`.
pub fn decode(event: &Value, max_body_bytes: usize) -> Result<HttpRequest, EnvelopeError> {
    let bad = |what: &str| EnvelopeError::Malformed(what.to_string());
    let obj = event
        .as_object()
        .ok_or_else(|| bad("event is not a JSON object"))?;

    let method = method_of(obj);
    let mut headers = Vec::new();
    collect_headers(obj.get("headers"), &mut headers, "headers")?;
    // REST (1.0) events also carry every value in multiValueHeaders.
    if let Some(Value::Object(multi)) = obj.get("multiValueHeaders") {
        for (name, values) in multi {
            let name = name.to_ascii_lowercase();
            if headers.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let values = values
                .as_array()
                .ok_or_else(|| bad("multiValueHeaders values must be arrays"))?;
            for v in values {
                let v = v
                    .as_str()
                    .ok_or_else(|| bad("header values must be strings"))?;
                headers.push((name.clone(), v.to_string()));
            }
        }
    }

    let base64 = match obj.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("isBase64Encoded must be a boolean")),
    };
    let body = match obj.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => {
            // Base64 is 4/3 of the payload: refuse before decoding anything huge.
            let announced = if base64 { s.len() / 4 * 3 } else { s.len() };
            if announced > max_body_bytes.saturating_add(3) {
                return Err(EnvelopeError::BodyTooLarge {
                    limit: max_body_bytes,
                });
            }
            if base64 {
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|_| bad("body is not valid base64"))?
            } else {
                s.as_bytes().to_vec()
            }
        }
        Some(_) => return Err(bad("body must be a string or null")),
    };
    if body.len() > max_body_bytes {
        return Err(EnvelopeError::BodyTooLarge {
            limit: max_body_bytes,
        });
    }
    Ok(HttpRequest {
        method,
        headers,
        body,
    })
}

fn method_of(obj: &Map<String, Value>) -> Option<String> {
    let v2 = obj
        .get("requestContext")
        .and_then(|c| c.get("http"))
        .and_then(|h| h.get("method"));
    let v1 = obj.get("httpMethod");
    v2.or(v1)
        .and_then(Value::as_str)
        .map(|m| m.to_ascii_uppercase())
}

fn collect_headers(
    value: Option<&Value>,
    out: &mut Vec<(String, String)>,
    field: &str,
) -> Result<(), EnvelopeError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(map)) => {
            for (name, v) in map {
                let v = v.as_str().ok_or_else(|| {
                    EnvelopeError::Malformed(format!("{field} values must be strings"))
                })?;
                out.push((name.to_ascii_lowercase(), v.to_string()));
            }
            Ok(())
        }
        Some(_) => Err(EnvelopeError::Malformed(format!(
            "{field} must be an object"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(body: Value, b64: bool) -> Value {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
            "headers": {"Content-Type": "application/json", "X-HMAC-Signature": "ab"},
            "requestContext": {"http": {"method": "POST", "path": "/"}},
            "body": body, "isBase64Encoded": b64
        })
    }

    #[test]
    fn plain_and_base64_bodies_decode_to_the_same_bytes() {
        let plain = decode(&v2(json!("{\"a\":1}"), false), 1024).unwrap();
        let b64 = decode(&v2(json!("eyJhIjoxfQ=="), true), 1024).unwrap();
        assert_eq!(plain.body, b"{\"a\":1}");
        assert_eq!(b64.body, plain.body);
        assert_eq!(plain.method.as_deref(), Some("POST"));
        assert_eq!(plain.header_values("x-hmac-signature").next(), Some("ab"));
        assert_eq!(plain.header_values("X-HMAC-SIGNATURE").next(), Some("ab"));
    }

    #[test]
    fn rest_v1_events_are_understood() {
        let ev = json!({
            "httpMethod": "POST", "path": "/webhook",
            "headers": null,
            "multiValueHeaders": {"vrf-hmac-signature": ["cd"]},
            "body": "{}", "isBase64Encoded": false
        });
        let req = decode(&ev, 1024).unwrap();
        assert_eq!(
            req.header_values("vrf-hmac-signature").collect::<Vec<_>>(),
            ["cd"]
        );
    }

    #[test]
    fn malformed_envelopes_are_bad_requests() {
        for ev in [
            json!([]),
            json!("string"),
            v2(json!("not base64!!"), true),
            v2(json!(12), false),
            json!({"headers": [1], "body": ""}),
            json!({"headers": {"a": 1}, "body": ""}),
            json!({"headers": {}, "body": "", "isBase64Encoded": "yes"}),
        ] {
            let e = decode(&ev, 1024).unwrap_err();
            assert!(matches!(e, EnvelopeError::Malformed(_)), "{ev}");
        }
    }

    #[test]
    fn oversized_bodies_are_refused_before_decoding() {
        let e = decode(&v2(json!("x".repeat(2000)), false), 1024).unwrap_err();
        assert_eq!(e, EnvelopeError::BodyTooLarge { limit: 1024 });
        let e = decode(&v2(json!("QUFB".repeat(1000)), true), 1024).unwrap_err();
        assert_eq!(e, EnvelopeError::BodyTooLarge { limit: 1024 });
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not() {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let at_limit = vec![b'x'; 1024];
        let plain = decode(
            &v2(json!(String::from_utf8(at_limit.clone()).unwrap()), false),
            1024,
        );
        assert_eq!(plain.unwrap().body, at_limit);
        let encoded = decode(&v2(json!(b64(&at_limit)), true), 1024);
        assert_eq!(encoded.unwrap().body, at_limit);
        // One byte over, plain (within the early check's 3 bytes of slack) and encoded.
        let over = vec![b'x'; 1025];
        let e = decode(
            &v2(json!(String::from_utf8(over.clone()).unwrap()), false),
            1024,
        );
        assert_eq!(e.unwrap_err(), EnvelopeError::BodyTooLarge { limit: 1024 });
        let e = decode(&v2(json!(b64(&over)), true), 1024).unwrap_err();
        assert_eq!(e, EnvelopeError::BodyTooLarge { limit: 1024 });
        // Whitespace around base64 is trimmed: it counts toward no limit. 1,372 characters
        // announce 1,029 bytes, exactly the early check's bound for a 1,026-byte limit.
        let padded = format!("{}{}", b64(&[b'y'; 1020]), " ".repeat(12));
        assert_eq!(padded.len(), 1372);
        assert_eq!(
            decode(&v2(json!(padded), true), 1026).unwrap().body.len(),
            1020
        );
    }

    #[test]
    fn an_oversized_body_is_refused_unread_even_when_it_is_not_base64() {
        // Refused on its announced size (413), before the decoder could find it invalid
        // (400) or spend memory on it.
        let e = decode(&v2(json!("!!!!".repeat(1000)), true), 1024).unwrap_err();
        assert_eq!(e, EnvelopeError::BodyTooLarge { limit: 1024 });
    }

    #[test]
    fn a_header_in_both_maps_of_a_rest_event_is_read_once() {
        let ev = json!({
            "httpMethod": "POST",
            "headers": {"X-HMAC-Signature": "ab"},
            "multiValueHeaders": {
                "X-HMAC-Signature": ["ab"],
                "x-auth-client": ["key"]
            },
            "body": "{}"
        });
        let req = decode(&ev, 1024).unwrap();
        assert_eq!(
            req.header_values("x-hmac-signature").collect::<Vec<_>>(),
            ["ab"]
        );
        assert_eq!(
            req.header_values("x-auth-client").collect::<Vec<_>>(),
            ["key"]
        );
    }

    #[test]
    fn responses_are_lambda_proxy_shaped() {
        let out = HttpResponse::new(200, json!({"status": "ok"})).into_lambda();
        assert_eq!(out["statusCode"], 200);
        assert_eq!(out["headers"]["content-type"], "application/json");
        assert_eq!(out["body"], "{\"status\":\"ok\"}");
    }
}
