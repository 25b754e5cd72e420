//! End-to-end tests of the Veriff fake over real HTTP.

use std::time::{Duration, Instant};

use archiver_devkit::fixtures::{self, ATTEMPT_STANDARD, NO_MEDIA_UPLOADED, STANDARD_VERIFICATION};
use archiver_devkit::signing::sha256_hex;
use archiver_devkit::{
    DemoMedia, DemoMediaKind, FakeConfig, FakeVeriff, Fault, FaultKind, MediaContent,
    RecordedRequest, decision_webhook, demo_scenario, deterministic_bytes,
    deterministic_sha256_hex, hmac_sha256_hex, resubmitted_decision_webhook, resubmitted_scenario,
};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

const KEY: &str = "test-api-key";
const SECRET: &str = "current-secret";
const OLD_SECRET: &str = "previous-secret";
const SESSION: &str = "f04bdb47-d3be-4b28-b028-a652feb060b5";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn start(sign_media: bool) -> FakeVeriff {
    FakeVeriff::start(FakeConfig {
        api_key: KEY.into(),
        secrets: vec![SECRET.into(), OLD_SECRET.into()],
        sign_media,
    })
    .await
    .unwrap()
}

/// GET `path` signed over `id` with `secret`.
async fn get(fake: &FakeVeriff, path: &str, id: &str, secret: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", fake.base_url()))
        .header("X-AUTH-CLIENT", KEY)
        .header(
            "X-HMAC-SIGNATURE",
            hmac_sha256_hex(secret.as_bytes(), id.as_bytes()),
        )
        .send()
        .await
        .unwrap()
}

fn signature_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("x-hmac-signature")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Reads the body chunk by chunk; returns the bytes received and whether it ended in error.
async fn read_body(resp: reqwest::Response) -> (Vec<u8>, bool) {
    let mut stream = resp.bytes_stream();
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(_) => return (data, true),
        }
    }
    (data, false)
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["status"], "fail");
    v["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn serves_fixtures_verbatim_and_signed() {
    let fake = start(false).await;
    fake.set_session_media(SESSION, STANDARD_VERIFICATION);
    fake.set_attempt_media("att-1", ATTEMPT_STANDARD);
    fake.set_session_attempts(SESSION, r#"{"status":"success","verifications":[]}"#);

    let resp = get(
        &fake,
        &format!("/v1/sessions/{SESSION}/media"),
        SESSION,
        SECRET,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["x-auth-client"], KEY);
    let sig = signature_of(&resp).unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(&body[..], STANDARD_VERIFICATION.as_bytes());
    assert_eq!(sig, hmac_sha256_hex(SECRET.as_bytes(), &body));

    // Signed with the older secret: still accepted (rotation); response signed with secrets[0].
    let resp = get(&fake, "/v1/attempts/att-1/media", "att-1", OLD_SECRET).await;
    assert_eq!(resp.status(), 200);
    let sig = signature_of(&resp).unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(&body[..], ATTEMPT_STANDARD.as_bytes());
    assert_eq!(sig, hmac_sha256_hex(SECRET.as_bytes(), &body));

    let resp = get(
        &fake,
        &format!("/v1/sessions/{SESSION}/attempts"),
        SESSION,
        SECRET,
    )
    .await;
    assert_eq!(resp.status(), 200);

    assert_eq!(fake.count(&format!("/v1/sessions/{SESSION}/media")), 1);
    assert_eq!(fake.requests().len(), 3);
    assert!(fake.requests().iter().all(|r| r.auth_ok && r.status == 200));
    fake.reset_requests();
    assert!(fake.requests().is_empty());
    fake.shutdown().await;
}

#[tokio::test]
async fn authentication_errors() {
    let fake = start(false).await;
    fake.set_session_media(SESSION, NO_MEDIA_UPLOADED);
    let url = format!("{}/v1/sessions/{SESSION}/media", fake.base_url());
    let good_sig = hmac_sha256_hex(SECRET.as_bytes(), SESSION.as_bytes());

    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("x-hmac-signature", good_sig.clone())], "1801"),
        (
            vec![
                ("x-auth-client", "other".into()),
                ("x-hmac-signature", good_sig.clone()),
            ],
            "1803",
        ),
        (vec![("x-auth-client", KEY.into())], "1812"),
        (
            vec![
                ("x-auth-client", KEY.into()),
                ("x-hmac-signature", "abc".into()),
            ],
            "1812",
        ),
        (
            vec![
                ("x-auth-client", KEY.into()),
                (
                    "x-hmac-signature",
                    hmac_sha256_hex(b"wrong", SESSION.as_bytes()),
                ),
            ],
            "1818",
        ),
        (
            vec![
                ("x-auth-client", KEY.into()),
                // Signed over the whole path instead of the id.
                (
                    "x-hmac-signature",
                    hmac_sha256_hex(
                        SECRET.as_bytes(),
                        format!("/v1/sessions/{SESSION}/media").as_bytes(),
                    ),
                ),
            ],
            "1818",
        ),
    ];
    for (headers, expected) in cases {
        let mut req = client().get(&url);
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{expected}");
        assert_eq!(resp.headers()["x-auth-client"], KEY);
        let sig = signature_of(&resp).unwrap();
        let body = resp.bytes().await.unwrap();
        assert_eq!(
            sig,
            hmac_sha256_hex(SECRET.as_bytes(), &body),
            "errors are signed"
        );
        assert_eq!(error_code(&body), expected);
    }

    // Upper-case hex and mixed-case header names are fine.
    let resp = client()
        .get(&url)
        .header("X-Auth-Client", KEY)
        .header("x-HMAC-signature", good_sig.to_uppercase())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let log = fake.requests();
    assert_eq!(log.len(), 7);
    assert!(log[..6].iter().all(|r| !r.auth_ok && r.status == 401));
    assert_eq!(
        log[6],
        RecordedRequest {
            method: "GET".into(),
            path: format!("/v1/sessions/{SESSION}/media"),
            status: 200,
            auth_ok: true,
        }
    );

    // Non-GET: the HMAC covers the body.
    let post = |body: &'static str, signed: &'static str| {
        client()
            .post(&url)
            .header("x-auth-client", KEY)
            .header(
                "x-hmac-signature",
                hmac_sha256_hex(SECRET.as_bytes(), signed.as_bytes()),
            )
            .body(body)
            .send()
    };
    let resp = post("{\"a\":1}", "{\"a\":2}").await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(error_code(&resp.bytes().await.unwrap()), "1819");
    let resp = post("{\"a\":1}", "{\"a\":1}").await.unwrap();
    assert_eq!(resp.status(), 405);
    fake.shutdown().await;
}

#[tokio::test]
async fn not_found() {
    let fake = start(false).await;
    let resp = get(&fake, "/v1/sessions/nope/media", "nope", SECRET).await;
    assert_eq!(resp.status(), 404);
    let body = resp.bytes().await.unwrap();
    assert_eq!(
        &body[..],
        br#"{"code":"1101","message":"Resource not found","status":"fail"}"#
    );
    let resp = get(&fake, "/v1/media/x", "x", SECRET).await;
    assert_eq!(resp.status(), 404);
    let resp = get(&fake, "/v2/whatever", "whatever", SECRET).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(error_code(&resp.bytes().await.unwrap()), "1101");
    fake.shutdown().await;
}

#[tokio::test]
async fn media_bytes_and_generated() {
    let fake = start(true).await;
    let jpeg = Bytes::from(deterministic_bytes(9, 100_000));
    fake.set_media("img-1", MediaContent::bytes(jpeg.clone(), "image/jpeg"));
    let len = 5 * 1024 * 1024 + 123;
    fake.set_media("vid-1", MediaContent::generated(len, 77, "video/mp4"));

    let resp = get(&fake, "/v1/media/img-1", "img-1", SECRET).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.headers()["content-length"], "100000");
    let sig = signature_of(&resp).expect("sign_media signs in-memory media");
    let body = resp.bytes().await.unwrap();
    assert_eq!(body, jpeg);
    assert_eq!(sig, hmac_sha256_hex(SECRET.as_bytes(), &body));

    let resp = get(&fake, "/v1/media/vid-1", "vid-1", SECRET).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    assert_eq!(resp.headers()["content-length"], len.to_string());
    assert!(
        signature_of(&resp).is_none(),
        "generated media is never signed"
    );
    let (data, failed) = read_body(resp).await;
    assert!(!failed);
    assert_eq!(data.len() as u64, len);
    assert_eq!(sha256_hex(&data), deterministic_sha256_hex(77, len));
    fake.shutdown().await;

    // Without sign_media, in-memory media is unsigned too.
    let fake = start(false).await;
    fake.set_media("img-1", MediaContent::bytes(jpeg, "image/png"));
    let resp = get(&fake, "/v1/media/img-1", "img-1", SECRET).await;
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(signature_of(&resp).is_none());
    fake.shutdown().await;
}

#[tokio::test]
async fn status_faults_and_ordering() {
    let fake = start(false).await;
    fake.set_session_media(SESSION, NO_MEDIA_UPLOADED);
    let path = format!("/v1/sessions/{SESSION}/media");
    fake.inject(Fault::new(path.clone(), FaultKind::Status(503), 1));
    fake.inject(Fault::new(
        "*",
        FaultKind::TooManyRequests {
            retry_after_secs: 3,
        },
        1,
    ));
    fake.inject(Fault::new("/other", FaultKind::Status(500), 5));

    // A badly authenticated request is rejected before faults and consumes none.
    let resp = client()
        .get(format!("{}{path}", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let resp = get(&fake, &path, SESSION, SECRET).await;
    assert_eq!(resp.status(), 503);
    let sig = signature_of(&resp).unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(sig, hmac_sha256_hex(SECRET.as_bytes(), &body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["message"], "Something went wrong");
    assert_eq!(v["code"], "1101");

    let resp = get(&fake, &path, SESSION, SECRET).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");

    let resp = get(&fake, &path, SESSION, SECRET).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        &resp.bytes().await.unwrap()[..],
        NO_MEDIA_UPLOADED.as_bytes()
    );

    fake.inject(Fault::new(path.clone(), FaultKind::Status(500), 1));
    fake.clear_faults();
    let resp = get(&fake, &path, SESSION, SECRET).await;
    assert_eq!(resp.status(), 200);

    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 503, 429, 200, 200]);
    fake.shutdown().await;
}

#[tokio::test]
async fn truncation_and_reset() {
    let fake = start(true).await;
    let data = Bytes::from(deterministic_bytes(5, 300_000));
    fake.set_media("m", MediaContent::bytes(data.clone(), "image/jpeg"));
    fake.set_media("g", MediaContent::generated(1_000_000, 6, "video/mp4"));
    fake.set_session_media(SESSION, STANDARD_VERIFICATION);

    fake.inject(Fault::new(
        "/v1/media/m",
        FaultKind::Truncate { after: 100_000 },
        1,
    ));
    let resp = get(&fake, "/v1/media/m", "m", SECRET).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], "300000");
    assert_eq!(
        signature_of(&resp).unwrap(),
        hmac_sha256_hex(SECRET.as_bytes(), &data),
        "signature of the full body"
    );
    let (got, failed) = read_body(resp).await;
    assert!(failed, "truncated body must end in an error");
    assert_eq!(got.len(), 100_000);
    assert_eq!(&got[..], &data[..100_000]);

    fake.inject(Fault::new(
        "/v1/media/g",
        FaultKind::ResetMidBody { after: 200_000 },
        1,
    ));
    let resp = get(&fake, "/v1/media/g", "g", SECRET).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("content-length").is_none());
    let (got, failed) = read_body(resp).await;
    assert!(failed, "reset body must end in an error");
    assert_eq!(got.len(), 200_000);
    assert_eq!(got, deterministic_bytes(6, 200_000));

    // JSON can be truncated too.
    let path = format!("/v1/sessions/{SESSION}/media");
    fake.inject(Fault::new(
        path.clone(),
        FaultKind::Truncate { after: 10 },
        1,
    ));
    let resp = get(&fake, &path, SESSION, SECRET).await;
    let (got, failed) = read_body(resp).await;
    assert!(failed);
    assert_eq!(&got[..], &STANDARD_VERIFICATION.as_bytes()[..10]);

    // The next request works again (the fault was used up).
    let resp = get(&fake, "/v1/media/m", "m", SECRET).await;
    let (got, failed) = read_body(resp).await;
    assert!(!failed);
    assert_eq!(got, data);
    fake.shutdown().await;
}

#[tokio::test]
async fn signature_and_body_faults() {
    let fake = start(false).await;
    fake.set_session_media(SESSION, STANDARD_VERIFICATION);
    fake.set_media("g", MediaContent::generated(1000, 1, "video/mp4"));
    let path = format!("/v1/sessions/{SESSION}/media");

    fake.inject(Fault::new(path.clone(), FaultKind::WrongSignature, 1));
    let resp = get(&fake, &path, SESSION, SECRET).await;
    let sig = signature_of(&resp).unwrap();
    assert_eq!(sig.len(), 64);
    let body = resp.bytes().await.unwrap();
    assert_eq!(&body[..], STANDARD_VERIFICATION.as_bytes());
    assert_ne!(sig, hmac_sha256_hex(SECRET.as_bytes(), &body));

    fake.inject(Fault::new("/v1/media/g", FaultKind::WrongSignature, 1));
    let resp = get(&fake, "/v1/media/g", "g", SECRET).await;
    assert!(
        signature_of(&resp).is_some(),
        "wrong signature is added to unsigned media"
    );

    let garbage = Bytes::from_static(b"{\"status\":\"success\",\"images\":[{\"id\":");
    fake.inject(Fault::new(
        path.clone(),
        FaultKind::Body(garbage.clone()),
        1,
    ));
    let resp = get(&fake, &path, SESSION, SECRET).await;
    assert_eq!(resp.status(), 200);
    let sig = signature_of(&resp).unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(body, garbage);
    assert_eq!(sig, hmac_sha256_hex(SECRET.as_bytes(), &body));
    fake.shutdown().await;
}

#[tokio::test]
async fn latency() {
    let fake = start(false).await;
    fake.set_session_media(SESSION, NO_MEDIA_UPLOADED);
    let path = format!("/v1/sessions/{SESSION}/media");

    fake.inject(Fault::new(
        "*",
        FaultKind::Latency(Duration::from_millis(300)),
        1,
    ));
    let t0 = Instant::now();
    let resp = get(&fake, &path, SESSION, SECRET).await;
    assert_eq!(resp.status(), 200);
    assert!(t0.elapsed() >= Duration::from_millis(300));

    fake.set_latency(Duration::from_millis(150));
    let t0 = Instant::now();
    let resp = get(&fake, &path, SESSION, SECRET).await;
    assert_eq!(resp.status(), 200);
    assert!(t0.elapsed() >= Duration::from_millis(150));
    fake.set_latency(Duration::ZERO);
    fake.shutdown().await;
}

#[tokio::test]
async fn demo_scenario_is_consistent() {
    let fake = start(false).await;
    let video_len = 3 * 1024 * 1024 + 7;
    let scenario = demo_scenario(&fake, video_len);

    let resp = get(
        &fake,
        &format!("/v1/sessions/{SESSION}/media"),
        SESSION,
        SECRET,
    )
    .await;
    let listed: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let images = listed["images"].as_array().unwrap();
    let contexts: Vec<&str> = images
        .iter()
        .map(|i| i["context"].as_str().unwrap())
        .collect();
    assert_eq!(
        contexts,
        [
            "document-front",
            "document-front",
            "document-back",
            "document-back",
            "document-front-pre",
            "face",
            "face",
            "face",
            "face-pre"
        ]
    );
    assert_eq!(listed["videos"][0]["size"], video_len);
    assert_eq!(listed["videos"][0]["mimetype"], "video/mp4");
    assert_eq!(listed["nfcDocuments"][0]["context"], "document-nfc");
    assert_eq!(
        listed["nfcDocuments"][0]["mimetype"],
        "application/octet-stream"
    );

    let attempt = &scenario.attempt_id;
    let resp = get(
        &fake,
        &format!("/v1/attempts/{attempt}/media"),
        attempt,
        SECRET,
    )
    .await;
    let att: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(att.get("nfcDocuments").is_none());
    assert_eq!(att["images"], listed["images"]);
    let resp = get(
        &fake,
        &format!("/v1/sessions/{SESSION}/attempts"),
        SESSION,
        SECRET,
    )
    .await;
    let attempts: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(attempts["verifications"][0]["id"], attempt.as_str());

    for m in &scenario.media {
        let resp = get(&fake, &format!("/v1/media/{}", m.id), &m.id, SECRET).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], m.mimetype());
        let (data, failed) = read_body(resp).await;
        assert!(!failed);
        assert_eq!(data.len() as u64, m.size());
        assert_eq!(sha256_hex(&data), m.content.sha256_hex());
        if m.kind == DemoMediaKind::Image {
            assert_eq!(&data[..3], &[0xFF, 0xD8, 0xFF]);
        }
        let listed_obj = listed
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .find(|o| o["id"] == m.id.as_str())
            .unwrap();
        assert_eq!(listed_obj["size"], m.size());
        assert_eq!(
            listed_obj["url"],
            format!("https://exampleURL.com/v1/media/{}", m.id)
        );
    }
    fake.shutdown().await;
}

#[tokio::test]
async fn documented_examples_round_trip() {
    let fake = start(false).await;
    for (i, body) in [
        fixtures::STANDARD_VERIFICATION,
        fixtures::PROOF_OF_ADDRESS,
        fixtures::VIDEO_VERIFICATION,
        fixtures::NFC_DOCUMENTS_VERIFICATION,
        fixtures::NO_MEDIA_UPLOADED,
    ]
    .iter()
    .enumerate()
    {
        let id = format!("s{i}");
        fake.set_session_media(&id, *body);
        let resp = get(&fake, &format!("/v1/sessions/{id}/media"), &id, SECRET).await;
        assert_eq!(resp.text().await.unwrap(), *body);
    }
    // Ids that are not valid UUIDs are served like any other.
    let odd = "e7ab18d1-5545-5e47-af7b-e23gb6247f80";
    fake.set_media(odd, MediaContent::bytes(vec![1, 2, 3], "image/jpeg"));
    let resp = get(&fake, &format!("/v1/media/{odd}"), odd, SECRET).await;
    assert_eq!(&resp.bytes().await.unwrap()[..], &[1, 2, 3]);
    fake.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections() {
    let fake = start(false).await;
    fake.set_media(
        "big",
        MediaContent::generated(200 * 1024 * 1024, 1, "video/mp4"),
    );
    let base = fake.base_url();
    let resp = get(&fake, "/v1/media/big", "big", SECRET).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    assert!(stream.next().await.unwrap().is_ok());
    tokio::time::timeout(Duration::from_secs(5), fake.shutdown())
        .await
        .expect("shutdown does not wait for in-flight downloads");
    // The in-flight download breaks...
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        if chunk.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed);
    // ...and nothing listens any more.
    assert!(
        client()
            .get(format!("{base}/v1/media/big"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn unsigned_fault() {
    let fake = start(false).await;
    fake.set_session_media(SESSION, STANDARD_VERIFICATION);
    fake.set_attempt_media("att-1", ATTEMPT_STANDARD);
    let path = format!("/v1/sessions/{SESSION}/media");

    fake.inject(Fault::new(path.clone(), FaultKind::Unsigned, 1));
    let resp = get(&fake, &path, SESSION, SECRET).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-auth-client"], KEY);
    assert_eq!(signature_of(&resp), None);
    assert_eq!(
        &resp.bytes().await.unwrap()[..],
        STANDARD_VERIFICATION.as_bytes()
    );

    // Used up: signed again. Other paths were never affected.
    let resp = get(&fake, &path, SESSION, SECRET).await;
    let sig = signature_of(&resp).unwrap();
    assert_eq!(
        sig,
        hmac_sha256_hex(SECRET.as_bytes(), &resp.bytes().await.unwrap())
    );

    // Any path, also error answers.
    fake.inject(Fault::new("*", FaultKind::Unsigned, 2));
    let resp = get(&fake, "/v1/attempts/att-1/media", "att-1", SECRET).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(signature_of(&resp), None);
    let resp = get(&fake, "/v1/attempts/none/media", "none", SECRET).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(signature_of(&resp), None);
    assert_eq!(error_code(&resp.bytes().await.unwrap()), "1101");
    fake.shutdown().await;
}

#[tokio::test]
async fn decision_endpoint() {
    let fake = start(false).await;
    let decided = decision_webhook(
        SESSION,
        "e30122d1-740b-4764-853f-470374a7abf4",
        "approved",
        "2025-03-04T10:21:07.412Z",
    );
    fake.set_session_decision(SESSION, decided.clone());
    fake.set_session_decision("pending-session", fixtures::PENDING_DECISION);

    let path = format!("/v1/sessions/{SESSION}/decision");
    let resp = get(&fake, &path, SESSION, SECRET).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let sig = signature_of(&resp).unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(&body[..], decided.as_bytes());
    assert_eq!(sig, hmac_sha256_hex(SECRET.as_bytes(), &body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["verification"]["status"], "approved");

    let resp = get(
        &fake,
        "/v1/sessions/pending-session/decision",
        "pending-session",
        OLD_SECRET,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let sig = signature_of(&resp).unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(sig, hmac_sha256_hex(SECRET.as_bytes(), &body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert!(v["verification"].is_null());

    // Signed over another id: 1818. Unknown session: 404.
    let resp = get(&fake, &path, "pending-session", SECRET).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(error_code(&resp.bytes().await.unwrap()), "1818");
    let resp = get(&fake, "/v1/sessions/other/decision", "other", SECRET).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(error_code(&resp.bytes().await.unwrap()), "1101");

    // Faults apply like on any endpoint; clear_resources forgets decisions.
    fake.inject(Fault::new(path.clone(), FaultKind::Status(503), 1));
    assert_eq!(get(&fake, &path, SESSION, SECRET).await.status(), 503);
    assert_eq!(get(&fake, &path, SESSION, SECRET).await.status(), 200);
    fake.clear_resources();
    assert_eq!(get(&fake, &path, SESSION, SECRET).await.status(), 404);
    assert_eq!(fake.count(&path), 5);
    fake.shutdown().await;
}

/// GETs `path` (signed over `id`) and parses the JSON body, checking its signature.
async fn get_json(fake: &FakeVeriff, path: &str, id: &str) -> Value {
    let resp = get(fake, path, id, SECRET).await;
    assert_eq!(resp.status(), 200, "{path}");
    let sig = signature_of(&resp).unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(sig, hmac_sha256_hex(SECRET.as_bytes(), &body));
    serde_json::from_slice(&body).unwrap()
}

fn listed_ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect()
}

fn media_ids(media: &[DemoMedia]) -> Vec<&str> {
    media.iter().map(|m| m.id.as_str()).collect()
}

#[tokio::test]
async fn resubmitted_scenario_is_consistent() {
    let fake = start(false).await;
    let demo = demo_scenario(&fake, 1000);
    let sc = resubmitted_scenario(&fake);
    let session = sc.session_id.as_str();
    let (decided, latest) = (
        sc.decided_attempt_id.as_str(),
        sc.latest_attempt_id.as_str(),
    );
    assert_ne!(session, demo.session_id);
    assert_ne!(decided, latest);

    // The session listing is attempt 2's: its images and an NFC document.
    let listed = get_json(&fake, &format!("/v1/sessions/{session}/media"), session).await;
    assert_eq!(listed.to_string(), sc.session_media_json);
    assert_eq!(listed_ids(&listed["images"]), media_ids(&sc.latest_media));
    assert_eq!(listed["videos"], Value::Array(vec![]));
    assert_eq!(listed_ids(&listed["nfcDocuments"]), [sc.nfc.id.as_str()]);
    assert_eq!(listed["nfcDocuments"][0]["context"], "document-nfc");
    assert_eq!(sc.nfc.kind, DemoMediaKind::Nfc);

    // Each attempt listing is that attempt's images, without nfcDocuments.
    let one = get_json(&fake, &format!("/v1/attempts/{decided}/media"), decided).await;
    assert_eq!(listed_ids(&one["images"]), media_ids(&sc.decided_media));
    assert!(one.get("nfcDocuments").is_none());
    let two = get_json(&fake, &format!("/v1/attempts/{latest}/media"), latest).await;
    assert_eq!(listed_ids(&two["images"]), media_ids(&sc.latest_media));
    assert!(two.get("nfcDocuments").is_none());
    assert_eq!(two["images"], listed["images"]);
    for media in [&sc.decided_media, &sc.latest_media] {
        let contexts: Vec<&str> = media.iter().map(|m| m.context.as_str()).collect();
        assert_eq!(contexts, ["document-front", "document-back", "face"]);
    }
    for (a, b) in sc.decided_media.iter().zip(&sc.latest_media) {
        assert_ne!(a.id, b.id);
        assert_ne!(a.content.sha256_hex(), b.content.sha256_hex());
    }

    // Both attempts, attempt 2 created after the decision of attempt 1.
    let attempts = get_json(&fake, &format!("/v1/sessions/{session}/attempts"), session).await;
    let list = attempts["verifications"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let find = |id: &str| list.iter().find(|a| a["id"] == id).unwrap();
    assert_eq!(find(decided)["status"], "resubmission_requested");
    assert_eq!(find(latest)["status"], "submitted");
    let created = |id: &str| find(id)["createdTime"].as_str().unwrap().to_owned();
    assert!(created(latest) > created(decided));

    // The decision is about attempt 1, and the decision endpoint serves it.
    assert_eq!(sc.decision_webhook, resubmitted_decision_webhook());
    let decision: Value = serde_json::from_str(&sc.decision_webhook).unwrap();
    assert_eq!(decision["verification"]["id"], session);
    assert_eq!(decision["verification"]["attemptId"], decided);
    assert_eq!(decision["verification"]["status"], "resubmission_requested");
    let time = decision["verification"]["decisionTime"].as_str().unwrap();
    assert!(created(decided).as_str() < time && time < created(latest).as_str());
    let polled = get_json(&fake, &format!("/v1/sessions/{session}/decision"), session).await;
    assert_eq!(polled, decision);

    // Every file is served with its listed size; the demo is still there.
    assert_eq!(sc.all_media().count(), 7);
    for m in sc.all_media() {
        let resp = get(&fake, &format!("/v1/media/{}", m.id), &m.id, SECRET).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], m.mimetype());
        let data = resp.bytes().await.unwrap();
        assert_eq!(sha256_hex(&data), m.content.sha256_hex());
        if m.kind == DemoMediaKind::Image {
            assert!((40_000..=100_000).contains(&data.len()), "{}", data.len());
            assert_eq!(&data[..3], &[0xFF, 0xD8, 0xFF]);
        }
        let listing = if sc.decided_media.iter().any(|d| d.id == m.id) {
            &one
        } else {
            &listed
        };
        let obj = listing
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .find(|o| o["id"] == m.id.as_str())
            .unwrap();
        assert_eq!(obj["size"], m.size());
        assert_eq!(obj["sessionId"], session);
    }
    let resp = get(
        &fake,
        &format!("/v1/sessions/{}/media", demo.session_id),
        &demo.session_id,
        SECRET,
    )
    .await;
    assert_eq!(resp.status(), 200);
    fake.shutdown().await;
}

/// DELETE `path` signed over `id` (Veriff signs the session id of a DELETE, as for a GET).
async fn delete(fake: &FakeVeriff, path: &str, id: &str) -> reqwest::Response {
    client()
        .delete(format!("{}{path}", fake.base_url()))
        .header("X-AUTH-CLIENT", KEY)
        .header(
            "X-HMAC-SIGNATURE",
            hmac_sha256_hex(SECRET.as_bytes(), id.as_bytes()),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_deleted_session_is_gone_from_every_endpoint_at_once() {
    let fake = start(true).await;
    let demo = demo_scenario(&fake, 1000);
    let other = resubmitted_scenario(&fake);
    let session = demo.session_id.as_str();

    // A DELETE signed over the body (empty), not the session id, is refused.
    let resp = client()
        .delete(format!("{}/v1/sessions/{session}", fake.base_url()))
        .header("X-AUTH-CLIENT", KEY)
        .header("X-HMAC-SIGNATURE", hmac_sha256_hex(SECRET.as_bytes(), b""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(error_code(&resp.bytes().await.unwrap()), "1818");
    // A GET of the session itself is not an endpoint.
    assert_eq!(
        get(&fake, &format!("/v1/sessions/{session}"), session, SECRET)
            .await
            .status(),
        405
    );

    let resp = delete(&fake, &format!("/v1/sessions/{session}"), session).await;
    assert_eq!(resp.status(), 200);
    assert!(signature_of(&resp).is_some(), "the answer is signed");
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["status"], "success");

    // Every endpoint of the session answers Veriff's signed 404 now.
    let attempt = demo.attempt_id.as_str();
    let mut gone = vec![
        (format!("/v1/sessions/{session}/media"), session.to_owned()),
        (
            format!("/v1/sessions/{session}/attempts"),
            session.to_owned(),
        ),
        (
            format!("/v1/sessions/{session}/decision"),
            session.to_owned(),
        ),
        (format!("/v1/attempts/{attempt}/media"), attempt.to_owned()),
    ];
    for m in &demo.media {
        gone.push((format!("/v1/media/{}", m.id), m.id.clone()));
    }
    for (path, id) in &gone {
        let resp = get(&fake, path, id, SECRET).await;
        assert_eq!(resp.status(), 404, "{path}");
        assert!(signature_of(&resp).is_some(), "{path}: signed 404");
        assert_eq!(error_code(&resp.bytes().await.unwrap()), "1101", "{path}");
    }
    // Deleting it again, or a session never created, is a 404.
    for id in [session, "0badc0de-0000-4000-8000-000000000000"] {
        let resp = delete(&fake, &format!("/v1/sessions/{id}"), id).await;
        assert_eq!(resp.status(), 404, "{id}");
    }
    // Other sessions are untouched.
    let resp = get(
        &fake,
        &format!("/v1/sessions/{}/media", other.session_id),
        &other.session_id,
        SECRET,
    )
    .await;
    assert_eq!(resp.status(), 200);
    fake.shutdown().await;
}

#[tokio::test]
async fn essential_scenario_is_decided_by_full_auto_webhooks() {
    let fake = start(false).await;
    let demo = demo_scenario(&fake, 1000);
    let sc = archiver_devkit::essential_scenario(&fake);
    let session = sc.session_id.as_str();
    assert_ne!(session, demo.session_id);
    let listed = get_json(&fake, &format!("/v1/sessions/{session}/media"), session).await;
    let images: Vec<&DemoMedia> = sc
        .media
        .iter()
        .filter(|m| m.kind == DemoMediaKind::Image)
        .collect();
    assert_eq!(
        listed_ids(&listed["images"]),
        images.iter().map(|m| m.id.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(listed["nfcDocuments"].as_array().unwrap().len(), 1);
    let attempt = sc.attempt_id.as_str();
    let one = get_json(&fake, &format!("/v1/attempts/{attempt}/media"), attempt).await;
    assert_eq!(one["images"], listed["images"]);
    // An Essential-plan session has no decision webhook, and the fake serves no decision.
    let resp = get(
        &fake,
        &format!("/v1/sessions/{session}/decision"),
        session,
        SECRET,
    )
    .await;
    assert_eq!(resp.status(), 404);
    for (body, decision, score) in [
        (&sc.approved_webhook, "approved", 0.97),
        (&sc.declined_webhook, "declined", 0.12),
    ] {
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["eventType"], "fullauto");
        assert_eq!(v["sessionId"], session);
        assert_eq!(v["attemptId"], attempt);
        assert_eq!(v["data"]["verification"]["decision"], decision);
        assert_eq!(v["data"]["verification"]["decisionScore"], score);
        assert!(v.get("verification").is_none());
        for value in fixtures::FULL_AUTO_PERSONAL_VALUES {
            if value != "DRIVERS_LICENSE" {
                assert!(body.contains(value), "{value}: the fixture carries it");
            }
        }
    }
    for m in &sc.media {
        let resp = get(&fake, &format!("/v1/media/{}", m.id), &m.id, SECRET).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            sha256_hex(&resp.bytes().await.unwrap()),
            m.content.sha256_hex()
        );
    }
    fake.shutdown().await;
}

#[test]
fn the_full_auto_event_bodies_are_the_essential_scenarios_webhooks() {
    use archiver_devkit::demo::{
        ESSENTIAL_APPROVED_TIME, ESSENTIAL_ATTEMPT_ID, ESSENTIAL_DECLINED_TIME,
        ESSENTIAL_SESSION_ID,
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/bodies");
    for (file, decision, time, score) in [
        (
            "fullauto-approved.json",
            "approved",
            ESSENTIAL_APPROVED_TIME,
            0.97,
        ),
        (
            "fullauto-declined.json",
            "declined",
            ESSENTIAL_DECLINED_TIME,
            0.12,
        ),
    ] {
        let body = std::fs::read_to_string(root.join(file)).unwrap();
        assert_eq!(
            body,
            archiver_devkit::full_auto_webhook(
                ESSENTIAL_SESSION_ID,
                ESSENTIAL_ATTEMPT_ID,
                decision,
                time,
                Some(score)
            ),
            "events/bodies/{file} (regenerate it from the fixture)"
        );
    }
}
