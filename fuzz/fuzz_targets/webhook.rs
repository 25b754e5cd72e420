//! One fuzz target for the whole pure webhook path.
//!
//! The first input byte picks what the rest is fed to (`byte % 5`) and carries flags
//! (`byte / 5`):
//!
//! | mode | the rest of the input is |
//! | --- | --- |
//! | 0 | a Lambda event (JSON → `event::decode`), then the raw body of a base64 and a plain envelope |
//! | 1 | `signature-header-value \n body` for `webhook::authenticate` (flag 2: sign it correctly) |
//! | 2 | a webhook body for `webhook::classify` |
//! | 3 | a media-metadata body for `MediaList::parse` → `select` → keys (as `archive::plan_copies`) |
//! | 4 | a mimetype for `layout::content_type_for` / `extension_for` |
//!
//! Every invariant is an `assert!`: a violation crashes the fuzzer and leaves the input in
//! `fuzz/artifacts/webhook/`.

#![no_main]

use std::collections::HashSet;

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

use veriff_archiver::domain::{self, SafeId, Secret, WebhookKind};
use veriff_archiver::event::{self, HttpRequest};
use veriff_archiver::layout;
use veriff_archiver::select::{self, SelectOptions};
use veriff_archiver::veriff::media::{MediaKind, MediaList};
use veriff_archiver::webhook::{self, AuthError, Webhook};

const SECRET: &str = "fuzz-shared-secret";
const OTHER_SECRET: &str = "fuzz-previous-secret";
const API_KEY: &str = "fuzz-api-key";
const LIMITS: [usize; 4] = [0, 64, 4096, 256 * 1024];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let flags = first / 5;
    match first % 5 {
        0 => envelope(flags, rest),
        1 => signature(flags, rest),
        2 => classify(rest),
        3 => metadata(flags, rest),
        _ => content_type(rest),
    }
});

/// Any outcome of `decode` is a request within the limit, or a 400 / 413.
fn decode_checked(event: &Value, max: usize) -> Result<HttpRequest, u16> {
    match event::decode(event, max) {
        Ok(req) => {
            assert!(req.body.len() <= max);
            if let Some(m) = &req.method {
                assert_eq!(m.as_bytes(), m.to_ascii_uppercase().as_bytes());
            }
            for (name, _) in &req.headers {
                assert_eq!(name.as_bytes(), name.to_ascii_lowercase().as_bytes());
            }
            Ok(req)
        }
        Err(e) => {
            let status = veriff_archiver::Error::from(e.clone()).status();
            assert!(status == 400 || status == 413, "status {status}: {e}");
            Err(status)
        }
    }
}

fn envelope(flags: u8, rest: &[u8]) {
    let max = LIMITS[usize::from(flags & 3)];
    if let Ok(event) = serde_json::from_slice::<Value>(rest) {
        let _ = decode_checked(&event, max);
    }
    // The same bytes as the body of a well-formed base64 envelope come out exactly.
    let encoded = base64::engine::general_purpose::STANDARD.encode(rest);
    let event = json!({
        "headers": {"X-Hmac-Signature": "00", "Content-Type": "application/json"},
        "requestContext": {"http": {"method": "post"}},
        "body": encoded,
        "isBase64Encoded": true,
    });
    match decode_checked(&event, max) {
        Ok(req) => {
            assert!(rest.len() <= max);
            assert_eq!(req.body.as_slice(), rest);
            assert_eq!(req.method.as_deref(), Some("POST"));
            assert_eq!(req.header_values("x-hmac-signature").next(), Some("00"));
        }
        Err(status) => {
            assert_eq!(status, 413);
            assert!(rest.len() > max);
        }
    }
    // And as a plain (REST 1.0) body when it is text.
    if let Ok(text) = std::str::from_utf8(rest) {
        let event = json!({"httpMethod": "POST", "multiValueHeaders": {"A": [text]}, "body": text});
        match decode_checked(&event, max) {
            Ok(req) => {
                assert_eq!(req.body.as_slice(), rest);
                assert_eq!(req.header_values("a").collect::<Vec<_>>(), [text]);
            }
            Err(status) => {
                assert_eq!(status, 413);
                assert!(rest.len() > max);
            }
        }
    }
}

fn request(name: &str, value: String, extra: Option<(String, String)>, body: &[u8]) -> HttpRequest {
    let mut headers = vec![(name.to_string(), value)];
    headers.extend(extra);
    HttpRequest {
        method: Some("POST".into()),
        headers,
        body: body.to_vec(),
    }
}

fn signature(flags: u8, rest: &[u8]) {
    let (header, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b""[..], rest),
    };
    let secrets = [Secret::new(OTHER_SECRET), Secret::new(SECRET)];
    let api_key = Secret::new(API_KEY);
    let name = if flags & 1 == 0 {
        "X-HMAC-Signature"
    } else {
        "vrf-hmac-signature"
    };
    let auth = |req: &HttpRequest| webhook::authenticate(req, &api_key, &secrets);
    let correct = webhook::hmac_hex(SECRET.as_bytes(), body);
    let header_text = String::from_utf8_lossy(header).into_owned();

    if flags & 2 != 0 {
        // The accept path: the right signature, whatever else the request carries.
        let value = if flags & 4 == 0 {
            correct.clone()
        } else {
            correct.to_ascii_uppercase()
        };
        let noise = if flags & 8 == 0 {
            ("x-hmac-signature".to_string(), header_text.clone())
        } else {
            ("x-auth-client".to_string(), API_KEY.to_string())
        };
        assert_eq!(auth(&request(name, value, Some(noise), body)), Ok(()));
        // One hex digit changed: a mismatch.
        let at = usize::from(header.first().copied().unwrap_or(0)) % 64;
        let by = 1 + u32::from(header.get(1).copied().unwrap_or(0)) % 15;
        let mut wrong = correct.clone().into_bytes();
        let digit = char::from(wrong[at]).to_digit(16).expect("hex");
        wrong[at] = char::from_digit((digit + by) % 16, 16).expect("digit") as u8;
        let wrong = String::from_utf8(wrong).expect("ascii");
        assert_ne!(wrong.as_bytes(), correct.as_bytes());
        assert_eq!(
            auth(&request(name, wrong, None, body)),
            Err(AuthError::SignatureMismatch)
        );
        // Truncated or extended: malformed.
        let cut = usize::from(header.get(2).copied().unwrap_or(0)) % 64;
        assert_eq!(
            auth(&request(name, correct[..cut].to_string(), None, body)),
            Err(AuthError::MalformedSignature)
        );
        assert_eq!(
            auth(&request(
                name,
                format!("{correct}{header_text}0"),
                None,
                body
            )),
            Err(AuthError::MalformedSignature)
        );
        return;
    }

    // Anything else: the header value is the fuzzer's.
    let outcome = auth(&request(name, header_text.clone(), None, body));
    let given = header_text.trim().to_ascii_lowercase();
    let decodes = given.len() == 64 && given.bytes().all(|b| b.is_ascii_hexdigit());
    let matches = given.as_bytes() == correct.as_bytes()
        || given.as_bytes() == webhook::hmac_hex(OTHER_SECRET.as_bytes(), body).as_bytes();
    match outcome {
        Ok(()) => assert!(matches),
        Err(AuthError::SignatureMismatch) => assert!(decodes && !matches),
        Err(AuthError::MalformedSignature) => assert!(!decodes),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

fn check_ids(session: &SafeId, attempt: &SafeId) {
    assert!(domain::is_safe_segment(session));
    assert!(domain::is_safe_segment(attempt));
    let folder = layout::attempt_folder("veriff/", session, attempt);
    assert!(folder.starts_with("veriff/"));
    assert_eq!(folder.bytes().filter(|b| *b == b'/').count(), 3);
    assert!(
        folder
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/".contains(&b))
    );
    for bad in ["..", "//", "%", "\\"] {
        assert!(!folder.contains(bad));
    }
}

fn classify(body: &[u8]) {
    if let Ok(Webhook::Decision(d)) = webhook::classify(body) {
        // Without an attempt id the archive resolves one (checked there as a safe segment).
        let resolved = SafeId::parse("resolved").expect("a safe id");
        check_ids(&d.session_id, d.attempt_id.as_ref().unwrap_or(&resolved));
        // A Full Auto result carries no codes or reasons, and is never also a decision
        // webhook; a decision webhook carries no score.
        let r = &d.record;
        match r.webhook {
            WebhookKind::FullAuto => {
                assert!(r.code.is_none() && r.reason.is_none() && r.reason_code.is_none());
                let doc: Value = serde_json::from_slice(body).expect("classified JSON");
                assert!(!doc.get("verification").is_some_and(Value::is_object));
            }
            WebhookKind::Decision => assert!(r.decision_score.is_none()),
        }
    }
}

fn metadata(flags: u8, body: &[u8]) {
    let Ok(list) = MediaList::parse(body) else {
        return;
    };
    let options = SelectOptions {
        videos: flags & 1 != 0,
        max_file_bytes: if flags & 2 == 0 { u64::MAX } else { 100_000 },
    };
    let selection = select::select(&list, options);
    assert_eq!(selection.chosen.len() + selection.skipped.len(), list.len());
    // Keys exactly as the archive derives them.
    let id = |s: &str| SafeId::parse(s).expect("a safe id");
    let folder = layout::attempt_folder("veriff/", &id("s1"), &id("a1"));
    let keys = layout::keys_for(&folder, &selection.chosen);
    assert_eq!(keys.len(), selection.chosen.len());
    let manifest = layout::legacy_manifest_key(&folder);
    let mut unique = HashSet::new();
    for key in &keys {
        assert!(key.starts_with("veriff/s1/a1/"), "{key:?}");
        assert_eq!(key.bytes().filter(|b| *b == b'/').count(), 3, "{key:?}");
        assert!(!key.contains(".."), "{key:?}");
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b)),
            "{key:?}"
        );
        assert_ne!(key.as_bytes(), manifest.as_bytes());
        assert!(layout::parse_manifest_key(&folder, key).is_none(), "{key:?}");
        assert!(
            unique.insert(key.as_str()),
            "key {key:?} used twice: {keys:?}"
        );
    }
    let mut ids = HashSet::new();
    for c in &selection.chosen {
        assert!(ids.insert(c.media_id.as_str()));
        check_content_type(c.mimetype.as_deref());
    }
}

fn check_content_type(mimetype: Option<&str>) {
    let ct = layout::content_type_for(mimetype);
    let (t, sub) = ct.split_once('/').expect("type/subtype");
    for part in [t, sub] {
        assert!(!part.is_empty(), "{ct:?}");
        assert!(
            part.bytes()
                .all(|b| b.is_ascii_graphic() && !b"/\\;,\"()<>@:[]?={}".contains(&b)),
            "{ct:?}"
        );
    }
}

fn content_type(rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    check_content_type(Some(&text));
    for kind in [MediaKind::Image, MediaKind::Video, MediaKind::Nfc] {
        let ext = layout::extension_for(Some(&text), kind);
        assert!(
            !ext.is_empty()
                && ext
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }
}
