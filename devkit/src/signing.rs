//! Veriff-style HMAC signing and realistic Lambda Function URL events.
//!
//! Veriff signs webhook bodies (and API responses) with lowercase hex
//! HMAC-SHA256 keyed with the integration's shared secret; API requests sign the
//! resource id of the path (GET) or the raw body (POST/PATCH). See
//! `CONTRACT.md` in the shared Veriff notes.
//!
//! [`function_url_event`] builds the JSON event that AWS Lambda delivers for a
//! Function URL invocation (payload format 2.0), so the archiver's handler can be
//! exercised exactly as in production, including base64-encoded bodies.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Host name used for the Function URL in generated events.
pub const FUNCTION_URL_HOST: &str = "abc123.lambda-url.eu-west-1.on.aws";

/// Source IP address reported in generated events (TEST-NET-3, documentation range).
pub const SOURCE_IP: &str = "203.0.113.10";

/// User agent reported in generated events.
pub const USER_AGENT: &str = "archiver-devkit/0.1 (webhook simulator)";

/// Lowercase hex HMAC-SHA256 of `data` keyed with `secret`.
///
/// This is the signature Veriff puts in `X-HMAC-SIGNATURE`.
#[must_use]
pub fn hmac_sha256_hex(secret: &[u8], data: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time check that `signature` (raw 32 bytes) is the HMAC-SHA256 of `data`
/// under `secret`.
#[must_use]
pub fn hmac_sha256_verify(secret: &[u8], data: &[u8], signature: &[u8]) -> bool {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.verify_slice(signature).is_ok()
}

/// Lowercase hex SHA-256 of `data`.
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Builds a complete Lambda Function URL event (payload format 2.0) for `POST /`.
///
/// - `headers` are added to the default headers (`content-type: application/json`,
///   `host`, `user-agent`, `x-forwarded-*`, `x-amzn-trace-id`, `content-length`).
///   As Lambda does, header names are lower-cased, a later header replaces a default
///   of the same name, and repeated caller headers are joined with `,`.
///   Edit the returned value to test other casings.
/// - With `base64` the body is base64 (standard alphabet) and `isBase64Encoded` is
///   `true`; otherwise the body is the UTF-8 text of `body` (invalid UTF-8 is
///   replaced with U+FFFD, as Lambda would only deliver such a body base64-encoded).
/// - An empty `body` is omitted, as Lambda does.
///
/// `requestId`, `time` and `timeEpoch` reflect the current time.
#[must_use]
pub fn function_url_event(body: &[u8], headers: &[(&str, &str)], base64: bool) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let epoch_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    let request_id = uuid_like(&[&now.as_nanos().to_le_bytes(), body]);
    let trace_id = {
        let rnd = sha256_hex(&[&now.as_nanos().to_le_bytes()[..], b"trace", body].concat());
        format!("Root=1-{:08x}-{}", now.as_secs(), &rnd[..24])
    };

    let mut hmap = Map::new();
    let defaults = [
        ("content-type", "application/json".to_owned()),
        ("content-length", body.len().to_string()),
        ("host", FUNCTION_URL_HOST.to_owned()),
        ("user-agent", USER_AGENT.to_owned()),
        ("x-amzn-trace-id", trace_id),
        ("x-forwarded-for", SOURCE_IP.to_owned()),
        ("x-forwarded-port", "443".to_owned()),
        ("x-forwarded-proto", "https".to_owned()),
    ];
    for (name, value) in defaults {
        hmap.insert(name.to_owned(), Value::String(value));
    }
    let mut seen_custom: Vec<String> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if seen_custom.contains(&name) {
            if let Some(Value::String(prev)) = hmap.get_mut(&name) {
                prev.push(',');
                prev.push_str(value);
            }
        } else {
            hmap.insert(name.clone(), Value::String((*value).to_owned()));
            seen_custom.push(name);
        }
    }

    let domain_prefix = FUNCTION_URL_HOST.split('.').next().unwrap_or_default();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": Value::Object(hmap),
        "requestContext": {
            "accountId": "anonymous",
            "apiId": domain_prefix,
            "domainName": FUNCTION_URL_HOST,
            "domainPrefix": domain_prefix,
            "http": {
                "method": "POST",
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": USER_AGENT,
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": clf_time(now.as_secs()),
            "timeEpoch": epoch_ms,
        },
        "isBase64Encoded": base64,
    });
    if !body.is_empty() {
        let text = if base64 {
            base64::engine::general_purpose::STANDARD.encode(body)
        } else {
            String::from_utf8_lossy(body).into_owned()
        };
        event["body"] = Value::String(text);
    }
    event
}

/// [`function_url_event`] for a webhook Veriff would send: adds `x-auth-client: api_key`
/// and `x-hmac-signature: hex(HMAC-SHA256(secret, body))`.
#[must_use]
pub fn signed_webhook_event(body: &[u8], secret: &str, api_key: &str, base64: bool) -> Value {
    let signature = hmac_sha256_hex(secret.as_bytes(), body);
    function_url_event(
        body,
        &[("x-auth-client", api_key), ("x-hmac-signature", &signature)],
        base64,
    )
}

/// A UUID-shaped (version 4 layout) identifier derived from the SHA-256 of `parts`.
pub(crate) fn uuid_like(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut b = [0_u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Formats Unix seconds as the Common Log Format time Lambda uses in
/// `requestContext.time`, e.g. `04/Mar/2025:10:21:07 +0000`.
fn clf_time(unix_secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day) = civil_from_days(unix_secs / 86_400);
    let rem = unix_secs % 86_400;
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day)
/// (Howard Hinnant's `civil_from_days`, restricted to dates after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_SECRET: &str = "abcdef12-abcd-abcd-abcd-abcdef012345";
    const VECTOR_BODY: &str = r#"{"verification":{"callback":"https://veriff.com","person":{"firstName":"John","lastName":"Smith"},"document":{"type":"PASSPORT","country":"EE"},"vendorData":"unique id of the end-user","timestamp":"2016-05-19T08:30:25.597Z"}}"#;
    const VECTOR_HMAC: &str = "0dcab73ddd20062616d104231c7439657546a5c24e4691977da93bb854c31e25";

    #[test]
    fn contract_test_vector() {
        assert_eq!(
            hmac_sha256_hex(VECTOR_SECRET.as_bytes(), VECTOR_BODY.as_bytes()),
            VECTOR_HMAC
        );
        let raw = hex::decode(VECTOR_HMAC).unwrap();
        assert!(hmac_sha256_verify(
            VECTOR_SECRET.as_bytes(),
            VECTOR_BODY.as_bytes(),
            &raw
        ));
        assert!(!hmac_sha256_verify(b"other", VECTOR_BODY.as_bytes(), &raw));
    }

    #[test]
    fn event_shape_plain() {
        let ev = function_url_event(b"{\"a\":1}", &[("X-Custom", "v")], false);
        assert_eq!(ev["version"], "2.0");
        assert_eq!(ev["routeKey"], "$default");
        assert_eq!(ev["rawPath"], "/");
        assert_eq!(ev["rawQueryString"], "");
        assert_eq!(ev["headers"]["content-type"], "application/json");
        assert_eq!(ev["headers"]["host"], FUNCTION_URL_HOST);
        assert_eq!(ev["headers"]["x-custom"], "v");
        assert_eq!(ev["headers"]["content-length"], "7");
        let rc = &ev["requestContext"];
        assert_eq!(rc["accountId"], "anonymous");
        assert_eq!(rc["apiId"], "abc123");
        assert_eq!(rc["domainName"], FUNCTION_URL_HOST);
        assert_eq!(rc["domainPrefix"], "abc123");
        assert_eq!(rc["http"]["method"], "POST");
        assert_eq!(rc["http"]["path"], "/");
        assert_eq!(rc["http"]["protocol"], "HTTP/1.1");
        assert_eq!(rc["http"]["sourceIp"], SOURCE_IP);
        assert_eq!(rc["stage"], "$default");
        assert_eq!(rc["routeKey"], "$default");
        assert_eq!(rc["requestId"].as_str().unwrap().len(), 36);
        assert!(rc["timeEpoch"].as_u64().unwrap() > 1_700_000_000_000);
        assert!(rc["time"].as_str().unwrap().ends_with(" +0000"));
        assert_eq!(ev["body"], "{\"a\":1}");
        assert_eq!(ev["isBase64Encoded"], false);
    }

    #[test]
    fn event_base64_and_empty_body() {
        let body = [0xff_u8, 0x00, 0x7b];
        let ev = function_url_event(&body, &[], true);
        assert_eq!(ev["isBase64Encoded"], true);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(ev["body"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, body);

        let ev = function_url_event(b"", &[], false);
        assert!(ev.get("body").is_none());
    }

    #[test]
    fn repeated_headers_are_joined_and_override_defaults() {
        let ev = function_url_event(
            b"x",
            &[("Content-Type", "text/plain"), ("x-a", "1"), ("X-A", "2")],
            false,
        );
        assert_eq!(ev["headers"]["content-type"], "text/plain");
        assert_eq!(ev["headers"]["x-a"], "1,2");
    }

    #[test]
    fn signed_event_carries_valid_signature() {
        let ev = signed_webhook_event(VECTOR_BODY.as_bytes(), VECTOR_SECRET, "key-1", true);
        assert_eq!(ev["headers"]["x-auth-client"], "key-1");
        assert_eq!(ev["headers"]["x-hmac-signature"], VECTOR_HMAC);
    }

    #[test]
    fn clf_time_formats() {
        // 2025-03-04T10:21:07Z
        assert_eq!(clf_time(1_741_083_667), "04/Mar/2025:10:21:07 +0000");
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        // 2024-02-29T23:59:59Z (leap day)
        assert_eq!(clf_time(1_709_251_199), "29/Feb/2024:23:59:59 +0000");
    }

    #[test]
    fn uuid_like_shape() {
        let id = uuid_like(&[b"x"]);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }
}
