//! Hostile input, property-based: whatever arrives on the wire, the pure request path never
//! panics, rejects with a 4xx, and never lets an id or a context turn into a key outside the
//! attempt folder.
//!
//! Covered entry points: `event::decode` (Lambda envelopes), `webhook::authenticate`
//! (signatures), `webhook::classify` (decision vs other), and `MediaList::parse` +
//! `select::select` + `layout::file_keys` (media metadata to S3 keys, built exactly as
//! `archive::plan_copies` builds them).
//!
//! `hostile_inputs_seeded` runs a fixed, seeded number of inputs per class (the same inputs
//! on every run) and prints how many passed, `hostile inputs tried: envelope=N signature=N
//! classify=N metadata=N` (visible with `--nocapture`). Proptest failures are not persisted
//! to regression files: the shrunk input is in the failure message.

use std::cell::Cell;
use std::collections::HashSet;

use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Map, Value, json};

use veriff_archiver::domain::{self, SafeId, Secret};
use veriff_archiver::event::{self, HttpRequest};
use veriff_archiver::layout;
use veriff_archiver::select::{self, SelectOptions};
use veriff_archiver::veriff::media::MediaList;
use veriff_archiver::webhook::{self, AuthError, Webhook};

/// Cases per property (the whole file runs in about 15 s in a debug build on 2 cores).
const CASES: u32 = 512;
/// Cases of the metadata property.
const METADATA_CASES: u32 = 1000;
/// Inputs per class in the seeded, counted run.
const SEEDED_CASES: u32 = 1000;

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Do not write regression files next to the sources; failures print their input.
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Fragments an attacker would try in an id, a context, a header or a mimetype.
const ATOMS: &[&str] = &[
    "../",
    "..",
    ".",
    "/",
    "//",
    "\\",
    "..\\",
    "%2F",
    "%2f",
    "%2e%2e",
    "%2e%2e%2f",
    "%00",
    "\0",
    "\n",
    "\r\n",
    "\t",
    " ",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{202e}",
    "\u{200b}",
    "\u{feff}",
    "é",
    "\u{212a}",
    "\u{ff21}",
    "\u{130}",
    "~",
    "*",
    "?",
    "#",
    ":",
    "C:",
    "-",
    "_",
    "a",
    "b",
    "1",
    "manifest",
    "manifest.json",
    "document-nfc",
    "document-front",
    "document-front-pre",
    "face",
    "selfid_video",
    "e7ab18d1-5545-5e47-af7b-e23gb6247f80",
    "f04bdb47-d3be-4b28-b028-a652feb060b5",
];

fn atom() -> BoxedStrategy<String> {
    prop::sample::select(ATOMS).prop_map(str::to_string).boxed()
}

/// Safe segments from a tiny alphabet, so that equal and `-`-joined names collide often.
fn small_safe() -> BoxedStrategy<String> {
    prop_oneof![
        "[ab1]{1,2}(-[ab1]{1,2}){0,2}",
        Just("manifest".to_string()),
        "manifest-[ab1]{1,2}",
    ]
    .boxed()
}

fn uuid_like() -> BoxedStrategy<String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-g]{4}-[0-9a-f]{4}-[0-9a-f]{12}".boxed()
}

/// A string drawn to break path handling: traversal, encodings, control and bidi characters,
/// lengths around the 128-character limit, very long, empty, and ordinary safe ids.
fn hostile_str() -> BoxedStrategy<String> {
    prop_oneof![
        4 => atom(),
        3 => prop::collection::vec(atom(), 0..5).prop_map(|v| v.concat()),
        3 => small_safe(),
        2 => uuid_like(),
        1 => any::<String>(),
        1 => "\\PC{0,24}",
        1 => ("[a-z0-9]", 125usize..=131).prop_map(|(c, n)| c.repeat(n)),
        1 => (atom(), 1usize..4000).prop_map(|(c, n)| c.repeat(n)),
    ]
    .boxed()
}

fn json_key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(&[
            "verification", "id", "attemptId", "status", "code", "action", "feature",
            "images", "videos", "nfcDocuments", "context", "mimetype", "size", "url",
            "headers", "multiValueHeaders", "body", "isBase64Encoded", "requestContext",
            "httpMethod", "checkType", "eventType",
        ][..]).prop_map(str::to_string),
        2 => hostile_str(),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        prop::sample::select(
            &[
                "0",
                "-0",
                "-1",
                "1e300",
                "-1e300",
                "18446744073709551615",
                "18446744073709551616",
                "1e2",
                "1.5",
                "-9223372036854775808",
                "123456789012345678901234567890",
            ][..]
        )
        .prop_map(|s| serde_json::from_str::<Value>(s).expect("valid number")),
    ]
    .boxed()
}

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => number(),
        4 => hostile_str().prop_map(Value::String),
    ]
    .boxed()
}

/// Arbitrary JSON: nested objects and arrays of hostile leaves, plus deep chains.
fn json_value() -> BoxedStrategy<Value> {
    let tree = json_leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    });
    prop_oneof![
        6 => tree,
        1 => (json_leaf(), prop::collection::vec(any::<bool>(), 0..160)).prop_map(|(leaf, shape)| nest(leaf, &shape)),
    ]
    .boxed()
}

/// Wraps `leaf` in one array (`true`) or object (`false`) per element of `shape`.
fn nest(leaf: Value, shape: &[bool]) -> Value {
    shape.iter().fold(leaf, |v, array| {
        if *array {
            Value::Array(vec![v])
        } else {
            Value::Object(Map::from_iter([("x".to_string(), v)]))
        }
    })
}

/// How deeply `v` nests arrays and objects.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Randomly mixes the ASCII case of `s`.
fn mix_case(s: &str, mask: &[bool]) -> String {
    s.chars()
        .zip(mask.iter().chain(std::iter::repeat(&false)))
        .map(|(c, up)| {
            if *up {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Some arbitrary bytes: random, JSON-ish, or a valid JSON document with a few bytes changed.
fn mutated(doc: impl Strategy<Value = Vec<u8>> + 'static) -> BoxedStrategy<Bytes> {
    (
        doc,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..6),
    )
        .prop_map(|(mut bytes, edits)| {
            for (at, byte, op) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            Bytes(bytes)
        })
        .boxed()
}

fn raw_bytes() -> BoxedStrategy<Bytes> {
    prop_oneof![
        any::<Vec<u8>>(),
        "[\\[\\]{}\",:0-9a-zA-Z \\\\.-]{0,64}".prop_map(String::into_bytes),
    ]
    .prop_map(Bytes)
    .boxed()
}

/// Bytes that print as (lossy, shortened) text and hex in failure reports.
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.0);
        if self.0.len() <= 4096 {
            write!(f, "{text:?} (hex {})", hex::encode(&self.0))
        } else {
            let head: String = text.chars().take(200).collect();
            write!(f, "{} bytes: {head:?}...", self.0.len())
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. Envelopes
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Body {
    Absent,
    Null,
    Plain(String),
    /// Base64 of these bytes, with optional surrounding whitespace.
    Base64(Vec<u8>, bool),
    /// Probably-not-base64 garbage sent with `isBase64Encoded: true`.
    Garbage(String),
}

/// An envelope built to be well formed, so that its exact outcome is known.
#[derive(Debug, Clone)]
struct WellFormed {
    headers: Vec<(String, String)>,
    multi: Vec<(String, Vec<String>)>,
    body: Body,
    method: Option<String>,
    rest_v1: bool,
    max: usize,
}

impl WellFormed {
    fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert(
            "headers".into(),
            Value::Object(
                self.headers
                    .iter()
                    .map(|(n, v)| (n.clone(), json!(v)))
                    .collect(),
            ),
        );
        if !self.multi.is_empty() {
            obj.insert(
                "multiValueHeaders".into(),
                Value::Object(
                    self.multi
                        .iter()
                        .map(|(n, v)| (n.clone(), json!(v)))
                        .collect(),
                ),
            );
        }
        let (body, b64) = match &self.body {
            Body::Absent => (None, None),
            Body::Null => (Some(Value::Null), Some(false)),
            Body::Plain(s) => (Some(json!(s)), Some(false)),
            Body::Base64(bytes, padded) => {
                let enc = base64::engine::general_purpose::STANDARD.encode(bytes);
                let enc = if *padded {
                    format!(" \n{enc}\r\n ")
                } else {
                    enc
                };
                (Some(json!(enc)), Some(true))
            }
            Body::Garbage(s) => (Some(json!(s)), Some(true)),
        };
        if let Some(b) = body {
            obj.insert("body".into(), b);
        }
        if let Some(b) = b64 {
            obj.insert("isBase64Encoded".into(), json!(b));
        }
        if let Some(m) = &self.method {
            if self.rest_v1 {
                obj.insert("httpMethod".into(), json!(m));
            } else {
                obj.insert("requestContext".into(), json!({"http": {"method": m}}));
            }
        }
        Value::Object(obj)
    }
}

fn max_body() -> BoxedStrategy<usize> {
    prop_oneof![0usize..64, 0usize..4096, Just(256 * 1024)].boxed()
}

fn well_formed() -> BoxedStrategy<WellFormed> {
    let body = prop_oneof![
        1 => Just(Body::Absent),
        1 => Just(Body::Null),
        4 => hostile_str().prop_map(Body::Plain),
        1 => (any::<char>(), 200_000usize..300_000).prop_map(|(c, n)| Body::Plain(c.to_string().repeat(n))),
        4 => (prop::collection::vec(any::<u8>(), 0..5000), any::<bool>()).prop_map(|(b, p)| Body::Base64(b, p)),
        3 => prop_oneof![
            hostile_str(),
            "[A-Za-z0-9+/=\\- _\n]{0,200}",
            ("[A-Za-z0-9+/]{0,40}", "[=!.]{0,4}").prop_map(|(a, b)| a + &b),
        ].prop_map(Body::Garbage),
    ];
    (
        prop::collection::vec((hostile_str(), hostile_str()), 0..6),
        prop::collection::vec(
            (hostile_str(), prop::collection::vec(hostile_str(), 0..3)),
            0..3,
        ),
        body,
        prop::option::of(prop_oneof![Just("POST".to_string()), hostile_str()]),
        any::<bool>(),
        max_body(),
    )
        .prop_map(|(headers, multi, body, method, rest_v1, max)| WellFormed {
            // A JSON object keeps one value per name (the last).
            headers: Map::from_iter(headers.into_iter().map(|(n, v)| (n, json!(v))))
                .into_iter()
                .map(|(n, v)| (n, v.as_str().unwrap_or_default().to_string()))
                .collect(),
            multi,
            body,
            method,
            rest_v1,
            max,
        })
        .boxed()
}

/// An envelope with random fields of random types.
fn wild_envelope() -> BoxedStrategy<Value> {
    let field = |name: &'static str, value: BoxedStrategy<Value>| {
        prop::option::of(value).prop_map(move |v| v.map(|v| (name.to_string(), v)))
    };
    let headers = prop_oneof![
        2 => prop::collection::vec((hostile_str(), hostile_str().prop_map(Value::String)), 0..5)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => json_value(),
    ]
    .boxed();
    let multi = prop_oneof![
        2 => prop::collection::vec((hostile_str(), prop::collection::vec(json_leaf(), 0..3).prop_map(Value::Array)), 0..4)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => json_value(),
    ]
    .boxed();
    let body = prop_oneof![
        2 => hostile_str().prop_map(Value::String),
        1 => prop::collection::vec(any::<u8>(), 0..600)
            .prop_map(|b| json!(base64::engine::general_purpose::STANDARD.encode(b))),
        1 => json_value(),
    ]
    .boxed();
    (
        field("headers", headers),
        field("multiValueHeaders", multi),
        field("body", body),
        field("isBase64Encoded", json_value().boxed()),
        field("requestContext", json_value().boxed()),
        field("httpMethod", json_value().boxed()),
        prop::collection::vec((json_key(), json_value()), 0..3),
    )
        .prop_map(|(a, b, c, d, e, f, extra)| {
            let mut obj: Map<String, Value> = extra.into_iter().collect();
            obj.extend([a, b, c, d, e, f].into_iter().flatten());
            Value::Object(obj)
        })
        .boxed()
}

#[derive(Debug, Clone)]
enum EnvelopeCase {
    WellFormed(WellFormed),
    Wild(Value, usize),
    /// Bytes that are fed through `serde_json` first, as the Lambda runtime does.
    Bytes(Bytes, usize),
}

fn envelope_case() -> BoxedStrategy<EnvelopeCase> {
    prop_oneof![
        4 => well_formed().prop_map(EnvelopeCase::WellFormed),
        3 => (wild_envelope(), max_body()).prop_map(|(v, m)| EnvelopeCase::Wild(v, m)),
        1 => (json_value(), max_body()).prop_map(|(v, m)| EnvelopeCase::Wild(v, m)),
        2 => (mutated(well_formed().prop_map(|w| w.to_json().to_string().into_bytes())), max_body())
            .prop_map(|(b, m)| EnvelopeCase::Bytes(b, m)),
        1 => (raw_bytes(), max_body()).prop_map(|(b, m)| EnvelopeCase::Bytes(b, m)),
    ]
    .boxed()
}

/// Whatever the outcome, it is a request no larger than the limit, or a 400 / 413.
fn check_any_envelope(
    value: &Value,
    max: usize,
) -> Result<Result<HttpRequest, u16>, TestCaseError> {
    match event::decode(value, max) {
        Ok(req) => {
            prop_assert!(req.body.len() <= max, "{} > {max}", req.body.len());
            if let Some(m) = &req.method {
                prop_assert_eq!(m, &m.to_ascii_uppercase());
            }
            for (name, _) in &req.headers {
                prop_assert_eq!(name, &name.to_ascii_lowercase());
            }
            Ok(Ok(req))
        }
        Err(e) => {
            let e = veriff_archiver::Error::from(e);
            let status = e.status();
            prop_assert!((400..500).contains(&status), "status {status}: {e}");
            prop_assert!(status == 400 || status == 413, "status {status}: {e}");
            if status == 413 {
                prop_assert_eq!(e.code(), "body_too_large");
            }
            Ok(Err(status))
        }
    }
}

fn check_envelope(case: EnvelopeCase) -> Result<(), TestCaseError> {
    match case {
        EnvelopeCase::Wild(value, max) => check_any_envelope(&value, max).map(drop),
        EnvelopeCase::Bytes(bytes, max) => match serde_json::from_slice::<Value>(&bytes.0) {
            Ok(value) => check_any_envelope(&value, max).map(drop),
            Err(_) => Ok(()),
        },
        EnvelopeCase::WellFormed(w) => {
            let outcome = check_any_envelope(&w.to_json(), w.max)?;
            let expected: Result<Vec<u8>, u16> = match &w.body {
                Body::Absent | Body::Null => Ok(Vec::new()),
                Body::Plain(s) if s.len() > w.max => Err(413),
                Body::Plain(s) => Ok(s.as_bytes().to_vec()),
                Body::Base64(b, _) if b.len() > w.max => Err(413),
                Body::Base64(b, _) => Ok(b.clone()),
                Body::Garbage(s) => {
                    match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
                        Ok(b) if b.len() > w.max => Err(413),
                        Ok(b) => Ok(b),
                        // Invalid base64: refused as too large before decoding, or a 400.
                        Err(_) => {
                            prop_assert!(outcome.is_err(), "garbage base64 accepted");
                            return Ok(());
                        }
                    }
                }
            };
            match (&outcome, &expected) {
                (Ok(req), Ok(body)) => {
                    prop_assert_eq!(&req.body, body);
                    prop_assert_eq!(
                        &req.method,
                        &w.method.as_ref().map(|m| m.to_ascii_uppercase())
                    );
                    // Every header (names are unique in the JSON object) comes out lower-cased.
                    for (name, value) in &w.headers {
                        let lower = name.to_ascii_lowercase();
                        prop_assert!(
                            req.headers.iter().any(|(n, v)| *n == lower && v == value),
                            "header {name:?} lost"
                        );
                        prop_assert!(req.header_values(name).any(|v| v == value));
                    }
                }
                (Err(got), Err(want)) => prop_assert_eq!(got, want),
                _ => prop_assert!(false, "outcome {outcome:?}, expected {expected:?}"),
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. Signatures
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct SigCase {
    body: Bytes,
    secrets: Vec<String>,
    signer: prop::sample::Index,
    api_key: String,
    /// Unrelated headers (any name, any value).
    noise: Vec<(String, String)>,
    insert_at: prop::sample::Index,
    name_mask: Vec<bool>,
    hex_mask: Vec<bool>,
    use_vrf: bool,
    send_api_key: bool,
    mutate_at: usize,
    mutate_to: u8,
    truncate_to: usize,
    extend_with: String,
}

fn header_name() -> BoxedStrategy<String> {
    prop_oneof![
        3 => hostile_str(),
        2 => "[a-zA-Z0-9-]{1,24}",
        2 => (
            prop::sample::select(&webhook::SIGNATURE_HEADERS[..]),
            prop::collection::vec(any::<bool>(), 0..24),
        ).prop_map(|(n, m)| mix_case(n, &m)),
        1 => (
            prop::sample::select(&webhook::API_KEY_HEADERS[..]),
            prop::collection::vec(any::<bool>(), 0..24),
        ).prop_map(|(n, m)| mix_case(n, &m)),
    ]
    .boxed()
}

fn header_value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => hostile_str(),
        2 => "[0-9a-fA-F]{0,70}",
        1 => "[0-9a-f]{64}",
        1 => (1usize..100_000).prop_map(|n| "f".repeat(n)),
    ]
    .boxed()
}

fn sig_case() -> BoxedStrategy<SigCase> {
    (
        prop_oneof![
            12 => prop::collection::vec(any::<u8>(), 0..2048),
            1 => (any::<u8>(), 100_000usize..300_000).prop_map(|(b, n)| vec![b; n]),
        ],
        prop::collection::vec(hostile_str(), 1..4),
        any::<prop::sample::Index>(),
        hostile_str(),
        prop::collection::vec((header_name(), header_value()), 0..8),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<bool>(), 24),
        prop::collection::vec(any::<bool>(), 64),
        (any::<bool>(), any::<bool>()),
        (0usize..64, 0u8..16, 0usize..64, "[0-9a-fA-F]{1,8}"),
    )
        .prop_map(
            |(
                body,
                secrets,
                signer,
                api_key,
                noise,
                insert_at,
                name_mask,
                hex_mask,
                (use_vrf, send_api_key),
                (mutate_at, mutate_to, truncate_to, extend_with),
            )| SigCase {
                body: Bytes(body),
                secrets,
                signer,
                api_key,
                noise,
                insert_at,
                name_mask,
                hex_mask,
                use_vrf,
                send_api_key,
                mutate_at,
                mutate_to,
                truncate_to,
                extend_with,
            },
        )
        .boxed()
}

fn is_one_of(name: &str, names: &[&str]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

fn check_signature(c: SigCase) -> Result<(), TestCaseError> {
    let secrets: Vec<Secret> = c.secrets.iter().map(Secret::new).collect();
    let api_key = Secret::new(c.api_key.clone());
    let signer = &c.secrets[c.signer.index(c.secrets.len())];
    let sig = webhook::hmac_hex(signer.as_bytes(), &c.body.0);
    prop_assert_eq!(sig.len(), 64);
    prop_assert!(
        sig.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let sig_name = mix_case(
        webhook::SIGNATURE_HEADERS[usize::from(c.use_vrf)],
        &c.name_mask,
    );
    let request = |headers: Vec<(String, String)>| HttpRequest {
        method: Some("POST".into()),
        headers,
        body: c.body.0.clone(),
    };
    // Noise that cannot authenticate nor fail the API-key check.
    let quiet: Vec<(String, String)> = c
        .noise
        .iter()
        .filter(|(n, _)| !is_one_of(n, &webhook::API_KEY_HEADERS))
        .cloned()
        .collect();
    // Noise with no signature header at all.
    let silent: Vec<(String, String)> = quiet
        .iter()
        .filter(|(n, _)| !is_one_of(n, &webhook::SIGNATURE_HEADERS))
        .cloned()
        .collect();
    let with = |base: &[(String, String)], value: String| {
        let mut headers = base.to_vec();
        let at = c.insert_at.index(headers.len() + 1);
        headers.insert(at, (sig_name.clone(), value));
        if c.send_api_key && c.api_key.trim() == c.api_key {
            headers.insert(0, ("X-Auth-Client".into(), format!(" {} ", c.api_key)));
        }
        request(headers)
    };
    let auth = |req: &HttpRequest| webhook::authenticate(req, &api_key, &secrets);

    // 1. Anything at all: no panic, and Ok only with a correct signature and no wrong key.
    let wild = request(c.noise.clone());
    if auth(&wild).is_ok() {
        let key_ok = wild
            .headers
            .iter()
            .filter(|(n, _)| is_one_of(n, &webhook::API_KEY_HEADERS))
            .all(|(_, v)| v.trim() == c.api_key);
        let signed = wild
            .headers
            .iter()
            .filter(|(n, _)| is_one_of(n, &webhook::SIGNATURE_HEADERS))
            .any(|(_, v)| {
                let v = v.trim().to_ascii_lowercase();
                c.secrets
                    .iter()
                    .any(|s| webhook::hmac_hex(s.as_bytes(), &c.body.0) == v)
            });
        prop_assert!(key_ok && signed, "accepted without authentication");
    }

    // 2. The right signature, lower, upper or mixed case, among any other headers.
    let mixed = mix_case(&sig, &c.hex_mask);
    for value in [sig.clone(), sig.to_ascii_uppercase(), mixed] {
        prop_assert_eq!(auth(&with(&quiet, value.clone())), Ok(()), "{}", value);
    }

    // 3. One hex digit changed (to a different value, not just a different case).
    let mut wrong = sig.clone().into_bytes();
    let old = char::from(wrong[c.mutate_at]).to_digit(16).expect("hex") as u8;
    let new = if c.mutate_to == old {
        (old + 1) % 16
    } else {
        c.mutate_to
    };
    wrong[c.mutate_at] = b"0123456789abcdef"[usize::from(new)];
    let wrong = String::from_utf8(wrong).expect("ascii");
    prop_assert_ne!(&wrong, &sig);
    prop_assert_eq!(
        auth(&with(&silent, wrong.clone())),
        Err(AuthError::SignatureMismatch)
    );
    prop_assert_eq!(
        auth(&with(&silent, wrong.to_ascii_uppercase())),
        Err(AuthError::SignatureMismatch)
    );

    // 4. Truncated or extended: not a 32-byte HMAC.
    prop_assert_eq!(
        auth(&with(&silent, sig[..c.truncate_to].to_string())),
        Err(AuthError::MalformedSignature)
    );
    prop_assert_eq!(
        auth(&with(&silent, format!("{sig}{}", c.extend_with))),
        Err(AuthError::MalformedSignature)
    );

    // 5. No signature header: missing (or the wrong API key, which is checked first).
    let none = request(silent.clone());
    prop_assert_eq!(auth(&none), Err(AuthError::MissingSignature));

    // 6. A wrong API key header fails even with the right signature.
    if c.api_key.trim() != c.api_key || c.api_key.is_empty() {
        return Ok(());
    }
    let mut bad_key = with(&quiet, sig.clone());
    bad_key
        .headers
        .push(("VRF-AUTH-CLIENT".into(), format!("{}x", c.api_key)));
    prop_assert_eq!(auth(&bad_key), Err(AuthError::ApiKeyMismatch));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. Classification
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum IdField {
    Absent,
    Text(String),
    Other(Value),
}

impl IdField {
    fn text(&self) -> Option<&str> {
        match self {
            IdField::Text(s) => Some(s),
            IdField::Other(v) => v.as_str(),
            IdField::Absent => None,
        }
    }

    /// Absent or JSON `null`: an attempt id the archive resolves itself.
    fn is_absent(&self) -> bool {
        matches!(self, IdField::Absent | IdField::Other(Value::Null))
    }
}

fn id_field() -> BoxedStrategy<IdField> {
    prop_oneof![
        1 => Just(IdField::Absent),
        8 => hostile_str().prop_map(IdField::Text),
        1 => json_leaf().prop_map(IdField::Other),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum ClassifyCase {
    Bytes(Bytes),
    Json(Value),
    Decision {
        id: IdField,
        attempt: IdField,
        status: Value,
        extra: Vec<(String, Value)>,
        top: Vec<(String, Value)>,
    },
    /// A Full Auto result: ids at the top level, the decision in `data.verification`.
    FullAuto {
        id: IdField,
        attempt: IdField,
        decision: Value,
        extra: Vec<(String, Value)>,
        top: Vec<(String, Value)>,
    },
}

/// Sets (or, when absent, removes) an id field of a JSON object.
fn put_id(object: &mut Map<String, Value>, name: &str, field: &IdField) {
    match field {
        IdField::Absent => {
            object.remove(name);
        }
        IdField::Text(s) => {
            object.insert(name.into(), json!(s));
        }
        IdField::Other(o) => {
            object.insert(name.into(), o.clone());
        }
    }
}

impl ClassifyCase {
    fn body(&self) -> Vec<u8> {
        match self {
            ClassifyCase::Bytes(b) => b.0.clone(),
            ClassifyCase::Json(v) => v.to_string().into_bytes(),
            ClassifyCase::Decision {
                id,
                attempt,
                status,
                extra,
                top,
            } => {
                let mut v: Map<String, Value> = extra.iter().cloned().collect();
                put_id(&mut v, "id", id);
                put_id(&mut v, "attemptId", attempt);
                v.insert("status".into(), status.clone());
                let mut doc: Map<String, Value> = top.iter().cloned().collect();
                doc.insert("verification".into(), Value::Object(v));
                Value::Object(doc).to_string().into_bytes()
            }
            ClassifyCase::FullAuto {
                id,
                attempt,
                decision,
                extra,
                top,
            } => {
                let mut v: Map<String, Value> = extra.iter().cloned().collect();
                v.insert("decision".into(), decision.clone());
                let mut doc: Map<String, Value> = top.iter().cloned().collect();
                doc.insert("eventType".into(), json!("fullauto"));
                put_id(&mut doc, "sessionId", id);
                put_id(&mut doc, "attemptId", attempt);
                doc.insert("data".into(), json!({ "verification": v }));
                Value::Object(doc).to_string().into_bytes()
            }
        }
    }
}

fn classify_case() -> BoxedStrategy<ClassifyCase> {
    let status = prop_oneof![
        4 => prop::sample::select(&["approved", "declined", "review", "expired", "x"][..])
            .prop_map(|s| json!(s)),
        1 => json_leaf(),
    ];
    let decision = (
        id_field(),
        id_field(),
        status,
        prop::collection::vec((json_key(), json_value()), 0..4),
        prop::collection::vec((json_key(), json_value()), 0..3),
    )
        .prop_map(|(id, attempt, status, extra, top)| ClassifyCase::Decision {
            id,
            attempt,
            status,
            extra,
            top,
        })
        .boxed();
    let full_auto = (
        id_field(),
        id_field(),
        prop_oneof![
            4 => prop::sample::select(&["approved", "declined", "resubmission_requested", "x"][..])
                .prop_map(|s| json!(s)),
            1 => json_leaf(),
        ],
        prop::collection::vec((json_key(), json_value()), 0..4),
        prop::collection::vec((json_key(), json_value()), 0..3),
    )
        .prop_map(
            |(id, attempt, decision, extra, top)| ClassifyCase::FullAuto {
                id,
                attempt,
                decision,
                extra,
                top,
            },
        )
        .boxed();
    prop_oneof![
        5 => decision.clone(),
        3 => full_auto.clone(),
        1 => mutated(full_auto.prop_map(|d| d.body())).prop_map(ClassifyCase::Bytes),
        2 => json_value().prop_map(ClassifyCase::Json),
        1 => raw_bytes().prop_map(ClassifyCase::Bytes),
        2 => mutated(decision.prop_map(|d| d.body())).prop_map(ClassifyCase::Bytes),
    ]
    .boxed()
}

/// The invariants of any decision `classify` returns. A decision without an attempt id is
/// archived under the session's newest attempt, which is checked the same way where it is
/// resolved; here a stand-in checks the session part.
fn check_decision_ids(session: &SafeId, attempt: Option<&SafeId>) -> Result<(), TestCaseError> {
    let resolved = SafeId::parse("resolved-attempt").unwrap();
    let attempt = attempt.unwrap_or(&resolved);
    prop_assert!(domain::is_safe_segment(session), "{session:?}");
    prop_assert!(domain::is_safe_segment(attempt), "{attempt:?}");
    for prefix in ["", "veriff/", "archive/veriff/"] {
        let folder = layout::attempt_folder(prefix, session, attempt);
        prop_assert!(folder.starts_with(prefix), "{folder:?}");
        prop_assert!(folder.ends_with('/'), "{folder:?}");
        prop_assert_eq!(
            folder.matches('/').count(),
            prefix.matches('/').count() + 2,
            "{:?}",
            folder
        );
        for bad in ["..", "//", "%", "\\"] {
            prop_assert!(!folder.contains(bad), "{folder:?} contains {bad:?}");
        }
        prop_assert!(
            !folder
                .bytes()
                .any(|b| b.is_ascii_control() || !b.is_ascii()),
            "{folder:?}"
        );
    }
    Ok(())
}

fn check_classify(case: ClassifyCase) -> Result<(), TestCaseError> {
    let body = case.body();
    let outcome = webhook::classify(&body);
    if let Ok(Webhook::Decision(d)) = &outcome {
        check_decision_ids(&d.session_id, d.attempt_id.as_ref())?;
    }
    let safe = |f: &IdField| f.text().filter(|s| domain::is_safe_segment(s)).is_some();
    if serde_json::from_slice::<Value>(&body).is_err() {
        if matches!(
            case,
            ClassifyCase::Decision { .. } | ClassifyCase::FullAuto { .. }
        ) {
            // Nested deeper than serde_json's recursion limit.
            prop_assert_eq!(outcome, Ok(Webhook::Other("not_json")));
        }
        return Ok(());
    }
    match &case {
        ClassifyCase::Decision {
            id,
            attempt,
            status,
            top,
            ..
        } => {
            let claims_full_auto = top
                .iter()
                .rev()
                .find(|(k, _)| k == "eventType")
                .is_some_and(|(_, v)| v == "fullauto");
            match &outcome {
                Ok(Webhook::Decision(d)) => {
                    prop_assert!(status.is_string());
                    prop_assert_eq!(d.record.webhook, domain::WebhookKind::Decision);
                    prop_assert_eq!(Some(d.session_id.as_str()), id.text());
                    if attempt.is_absent() {
                        prop_assert_eq!(d.attempt_id.as_deref(), None);
                    } else {
                        prop_assert_eq!(d.attempt_id.as_deref(), attempt.text());
                    }
                    prop_assert_eq!(Some(d.record.status.as_str()), status.as_str());
                }
                Ok(Webhook::Other(kind)) => {
                    prop_assert!(!status.is_string(), "decision classified as {kind}")
                }
                Err(webhook::PayloadError::AmbiguousKind) => prop_assert!(claims_full_auto),
                Err(webhook::PayloadError::BadSessionId(field)) => {
                    prop_assert_eq!(*field, "verification.id");
                    prop_assert!(!safe(id))
                }
                Err(webhook::PayloadError::BadAttemptId(field)) => {
                    prop_assert_eq!(*field, "verification.attemptId");
                    prop_assert!(safe(id) && !safe(attempt) && !attempt.is_absent())
                }
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
        ClassifyCase::FullAuto {
            id,
            attempt,
            decision,
            top,
            ..
        } => {
            let has_verification = top
                .iter()
                .rev()
                .find(|(k, _)| k == "verification")
                .is_some_and(|(_, v)| v.is_object());
            match &outcome {
                Ok(Webhook::Decision(d)) => {
                    prop_assert!(!has_verification);
                    prop_assert_eq!(d.record.webhook, domain::WebhookKind::FullAuto);
                    prop_assert_eq!(Some(d.session_id.as_str()), id.text());
                    if attempt.is_absent() {
                        prop_assert_eq!(d.attempt_id.as_deref(), None);
                    } else {
                        prop_assert_eq!(d.attempt_id.as_deref(), attempt.text());
                    }
                    prop_assert_eq!(Some(d.record.status.as_str()), decision.as_str());
                    prop_assert_eq!(
                        (d.record.code, &d.record.reason, &d.record.reason_code),
                        (None, &None, &None)
                    );
                }
                Ok(Webhook::Other(kind)) => prop_assert!(false, "Full Auto classified as {kind}"),
                Err(webhook::PayloadError::AmbiguousKind) => prop_assert!(has_verification),
                Err(webhook::PayloadError::BadSessionId(field)) => {
                    prop_assert_eq!(*field, "sessionId");
                    prop_assert!(!safe(id))
                }
                Err(webhook::PayloadError::BadAttemptId(field)) => {
                    prop_assert_eq!(*field, "attemptId");
                    prop_assert!(safe(id) && !safe(attempt) && !attempt.is_absent())
                }
                Err(webhook::PayloadError::BadFullAutoDecision) => {
                    prop_assert!(safe(id) && !decision.is_string())
                }
            }
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 4. Media metadata → selection → keys
// ---------------------------------------------------------------------------------------

fn mimetype() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(&[
            "image/jpeg", "image/jpg", "IMAGE/PNG", " image/png ", "image/heic", "image/webp",
            "video/mp4", "video/webm", "video/quicktime", "application/octet-stream",
            "application/pdf", "image/pdf", "text/html\r\nx: y", "a/b/c", "/", "image/",
            "/jpeg", "x/y;charset=utf-8", "image/jpeg\n", "image/\u{212a}", "",
        ][..]).prop_map(str::to_string),
        2 => hostile_str(),
        1 => "[a-z!#$&^_.+-]{1,8}/[a-z!#$&^_.+-]{1,8}",
    ]
    .boxed()
}

fn field(text: BoxedStrategy<String>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        1 => Just(None),
        8 => text.prop_map(|s| Some(Value::String(s))),
        1 => json_leaf().prop_map(Some),
        1 => json_value().prop_map(Some),
    ]
    .boxed()
}

fn size() -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        1 => Just(None),
        4 => (0u64..3000).prop_map(|n| Some(json!(n))),
        2 => number().prop_map(Some),
        1 => json_leaf().prop_map(Some),
    ]
    .boxed()
}

fn media_item() -> BoxedStrategy<Value> {
    let item = (
        // Ids and contexts from tiny pools, so that duplicates and `<context>-<id>` look-alikes
        // are frequent.
        field(
            prop_oneof![
                3 => prop::sample::select(&["a", "b", "1"][..]).prop_map(str::to_string),
                2 => small_safe(),
                2 => hostile_str(),
                1 => uuid_like(),
            ]
            .boxed(),
        ),
        field(
            prop_oneof![
                3 => small_safe(),
                3 => prop::sample::select(
                    &[
                        "manifest", "manifest-a", "manifest-1", "a", "a-b", "a-1", "face",
                        "document-nfc", "document-nfc-a",
                    ][..]
                )
                .prop_map(str::to_string),
                2 => hostile_str(),
            ]
            .boxed(),
        ),
        field(mimetype().boxed()),
        size(),
        prop::option::of(json_leaf()),
        prop::collection::vec((json_key(), json_value()), 0..2),
    )
        .prop_map(|(id, context, mimetype, size, duration, extra)| {
            let mut obj: Map<String, Value> = extra.into_iter().collect();
            for (k, v) in [
                ("id", id),
                ("context", context),
                ("mimetype", mimetype),
                ("size", size),
                ("duration", duration),
            ] {
                match v {
                    Some(v) => obj.insert(k.into(), v),
                    None => obj.remove(k),
                };
            }
            obj.insert("url".into(), json!("https://evil.example/../../x"));
            Value::Object(obj)
        });
    prop_oneof![9 => item, 1 => json_value()].boxed()
}

fn media_array() -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        8 => prop::collection::vec(media_item(), 0..10).prop_map(|v| Some(Value::Array(v))),
        1 => json_value().prop_map(Some),
    ]
    .boxed()
}

fn metadata_doc() -> BoxedStrategy<Value> {
    (
        prop_oneof![
            4 => Just(Some(json!("success"))),
            2 => Just(None),
            1 => json_leaf().prop_map(Some),
        ],
        media_array(),
        media_array(),
        media_array(),
    )
        .prop_map(|(status, images, videos, nfc)| {
            let mut obj = Map::new();
            for (k, v) in [
                ("status", status),
                ("images", images),
                ("videos", videos),
                ("nfcDocuments", nfc),
            ] {
                if let Some(v) = v {
                    obj.insert(k.into(), v);
                }
            }
            Value::Object(obj)
        })
        .boxed()
}

#[derive(Debug, Clone)]
struct MetadataCase {
    body: Bytes,
    /// The document the body was serialised from, when it was not mutated.
    doc: Option<Value>,
    videos: bool,
    max_file_bytes: u64,
}

fn metadata_case() -> BoxedStrategy<MetadataCase> {
    let body = prop_oneof![
        6 => metadata_doc().prop_map(|d| (Bytes(d.to_string().into_bytes()), Some(d))),
        2 => mutated(metadata_doc().prop_map(|d| d.to_string().into_bytes())).prop_map(|b| (b, None)),
        1 => raw_bytes().prop_map(|b| (b, None)),
        1 => json_value().prop_map(|d| (Bytes(d.to_string().into_bytes()), Some(d))),
    ];
    (
        body,
        any::<bool>(),
        prop_oneof![Just(u64::MAX), 0u64..4000, Just(0)],
    )
        .prop_map(|((body, doc), videos, max_file_bytes)| MetadataCase {
            body,
            doc,
            videos,
            max_file_bytes,
        })
        .boxed()
}

const FOLDER_PREFIX: &str = "veriff/";

/// Keys of the chosen files, as the archive derives them.
fn plan_keys(chosen: &[select::Chosen]) -> Vec<String> {
    let (s1, a1) = (SafeId::parse("s1").unwrap(), SafeId::parse("a1").unwrap());
    layout::keys_for(&layout::attempt_folder(FOLDER_PREFIX, &s1, &a1), chosen)
}

fn check_content_type(mimetype: Option<&str>) -> Result<(), TestCaseError> {
    let ct = layout::content_type_for(mimetype);
    prop_assert!(!ct.contains('\r') && !ct.contains('\n'), "{ct:?}");
    let (t, sub) = ct
        .split_once('/')
        .ok_or_else(|| TestCaseError::fail(format!("{ct:?}")))?;
    for part in [t, sub] {
        prop_assert!(!part.is_empty(), "{ct:?}");
        prop_assert!(
            part.bytes()
                .all(|b| b.is_ascii_graphic() && !b"/\\;,\"()<>@:[]?={}".contains(&b)),
            "{ct:?}"
        );
    }
    Ok(())
}

fn check_metadata(case: MetadataCase) -> Result<(), TestCaseError> {
    let parsed = MediaList::parse(&case.body.0);
    // A well-typed document (an object, status success or absent, arrays or absent) parses,
    // unless it is nested deeper than serde_json's recursion limit (128).
    if let Some(Value::Object(doc)) = case.doc.as_ref().filter(|d| depth(d) < 120) {
        let status_ok = matches!(doc.get("status"), None | Some(Value::Null))
            || doc.get("status") == Some(&json!("success"));
        let arrays = ["images", "videos", "nfcDocuments"]
            .iter()
            .map(|k| doc.get(*k));
        let arrays_ok = arrays
            .clone()
            .all(|a| matches!(a, None | Some(Value::Null | Value::Array(_))));
        prop_assert_eq!(parsed.is_ok(), status_ok && arrays_ok, "{:?}", parsed);
        if let Ok(list) = &parsed {
            let total: usize = arrays
                .map(|a| a.and_then(Value::as_array).map_or(0, Vec::len))
                .sum();
            prop_assert_eq!(list.len(), total);
        }
    }
    let Ok(list) = parsed else { return Ok(()) };
    let selection = select::select(
        &list,
        SelectOptions {
            videos: case.videos,
            max_file_bytes: case.max_file_bytes,
        },
    );
    prop_assert_eq!(selection.chosen.len() + selection.skipped.len(), list.len());
    let mut ids = HashSet::new();
    for c in &selection.chosen {
        prop_assert!(domain::is_safe_segment(&c.media_id), "{:?}", c.media_id);
        prop_assert!(domain::is_safe_segment(&c.context), "{:?}", c.context);
        prop_assert!(
            ids.insert(c.media_id.as_str()),
            "media id {:?} chosen twice",
            c.media_id
        );
        prop_assert!(c.size.is_none_or(|s| s <= case.max_file_bytes));
        check_content_type(c.mimetype.as_deref())?;
    }
    for s in &selection.skipped {
        for text in [&s.media_id, &s.context].into_iter().flatten() {
            prop_assert!(text.chars().count() <= domain::MAX_SEGMENT_LEN);
        }
    }

    let keys = plan_keys(&selection.chosen);
    prop_assert_eq!(keys.len(), selection.chosen.len());
    let folder = format!("{FOLDER_PREFIX}s1/a1/");
    let manifest = layout::legacy_manifest_key(&folder);
    let mut unique = HashSet::new();
    for key in &keys {
        prop_assert!(key.starts_with(&folder), "{key:?}");
        prop_assert_eq!(key.matches('/').count(), 3, "{:?}", key);
        prop_assert!(!key.contains(".."), "{key:?}");
        prop_assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b)),
            "{key:?}"
        );
        prop_assert_ne!(key, &manifest);
        prop_assert!(
            layout::parse_manifest_key(&folder, key).is_none(),
            "{key:?}"
        );
        prop_assert!(
            unique.insert(key.as_str()),
            "key {key:?} used twice: {keys:?}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn envelopes_decode_or_are_4xx(case in envelope_case()) {
        check_envelope(case)?;
    }

    #[test]
    fn only_the_right_signature_authenticates(case in sig_case()) {
        check_signature(case)?;
    }

    #[test]
    fn decisions_only_carry_safe_ids(case in classify_case()) {
        check_classify(case)?;
    }

    #[test]
    fn content_types_are_single_header_tokens(
        m in prop_oneof![mimetype(), hostile_str(), any::<String>()],
    ) {
        check_content_type(Some(&m))?;
        let ext = layout::extension_for(Some(&m), veriff_archiver::veriff::media::MediaKind::Image);
        prop_assert!(!ext.is_empty() && ext.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }
}

proptest! {
    // Key collisions need two look-alike items in one list: more cases than the others.
    #![proptest_config(config(METADATA_CASES))]

    #[test]
    fn metadata_keys_stay_in_the_attempt_folder(case in metadata_case()) {
        check_metadata(case)?;
    }
}

/// Runs `count` seeded inputs of `strategy` through `check`: how many passed, and the
/// (shrunk) failure if one failed.
fn seeded<S: Strategy>(
    count: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> (usize, Option<String>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new_with_rng(
        config(count),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let tried = Cell::new(0usize);
    let result = runner.run(&strategy, |input| {
        check(input)?;
        tried.set(tried.get() + 1);
        Ok(())
    });
    (tried.get(), result.err().map(|e| e.to_string()))
}

#[test]
fn hostile_inputs_seeded() {
    let (envelope, e1) = seeded(SEEDED_CASES, envelope_case(), check_envelope);
    let (signature, e2) = seeded(SEEDED_CASES, sig_case(), check_signature);
    let (classify, e3) = seeded(SEEDED_CASES, classify_case(), check_classify);
    let (metadata, e4) = seeded(SEEDED_CASES, metadata_case(), check_metadata);
    println!(
        "hostile inputs tried: envelope={envelope} signature={signature} classify={classify} metadata={metadata}"
    );
    let failures: Vec<String> = [e1, e2, e3, e4].into_iter().flatten().collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for n in [envelope, signature, classify, metadata] {
        assert_eq!(n, SEEDED_CASES as usize);
    }
}

// ---------------------------------------------------------------------------------------
// Fixed hostile inputs
// ---------------------------------------------------------------------------------------

#[test]
fn deep_nesting_returns_without_overflow() {
    for body in [
        "[".repeat(100_000),
        "{\"a\":".repeat(100_000),
        format!("{{\"verification\":{}", "[".repeat(100_000)),
        format!("{{\"images\":[{}", "{\"x\":[".repeat(50_000)),
    ] {
        assert_eq!(
            webhook::classify(body.as_bytes()),
            Ok(Webhook::Other("not_json"))
        );
        assert!(MediaList::parse(body.as_bytes()).is_err());
    }
    // A deep (but droppable) envelope value: decode only looks at the top level.
    for field in ["headers", "body", "isBase64Encoded"] {
        let mut ev = Map::new();
        ev.insert(field.to_string(), nest(json!("x"), &[true; 2000]));
        let ev = Value::Object(ev);
        assert!(matches!(
            event::decode(&ev, 1024).unwrap_err(),
            event::EnvelopeError::Malformed(_)
        ));
    }
}

#[test]
fn documented_non_hex_id_is_a_decision() {
    let body = json!({"verification": {
        "id": "e7ab18d1-5545-5e47-af7b-e23gb6247f80",
        "attemptId": "f04bdb47-d3be-4b28-b028-a652feb060b5",
        "status": "approved",
    }});
    let Ok(Webhook::Decision(d)) = webhook::classify(body.to_string().as_bytes()) else {
        panic!("not a decision");
    };
    check_decision_ids(&d.session_id, d.attempt_id.as_ref()).unwrap();
}

/// Two chosen files must never share a key: the second upload would overwrite the first,
/// and the manifest would list two different SHA-256 sums for one object.
#[test]
fn chosen_files_never_share_a_key() {
    for body in [
        // An image of context `manifest` (forced to `manifest-<id>`) and one of context
        // `manifest-<that id>`.
        r#"{"images":[{"id":"x","context":"manifest"},{"id":"y","context":"manifest-x"}]}"#,
        // Two NFC documents of one context (named `<context>-<id>`) and an image whose
        // context is `<context>-<id>`, all with the `bin` extension.
        r#"{"images":[{"id":"i","context":"a-b"}],"nfcDocuments":[{"id":"b","context":"a"},{"id":"c","context":"a"}]}"#,
    ] {
        let case = MetadataCase {
            body: Bytes(body.as_bytes().to_vec()),
            doc: None,
            videos: true,
            max_file_bytes: u64::MAX,
        };
        if let Err(e) = check_metadata(case) {
            panic!("{body}: {e}");
        }
    }
}
