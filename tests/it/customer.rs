//! Evidence by customer, through the CLI against real S3 servers: `find` returns exactly one
//! customer's sessions among many (by `vendorData` and by `endUserId`), with the index off it
//! says so; `reindex` indexes an archive made before the index; `export` writes one pack per
//! session and an index page; no customer reference, hostile or not, reaches a key in clear.
//! On moto_server (Object Lock): `retain` extends and never shortens, `hold`/`release`
//! record why, `erase` refuses while locked or held and then deletes every version, and
//! `verify` reports the erased sessions as erased, not missing.

use std::time::{Duration, SystemTime};

use archiver_devkit::{FakeVeriff, MediaContent, deterministic_bytes};
use serde_json::{Value, json};

use crate::support::*;

/// The index key every test uses (32 bytes, hex).
const INDEX_KEY: &str = "8f1e6c2a9b7d4e3f0a1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778";

/// A reference no key may hold in clear: path separators, a newline, markup, a null-ish
/// Unicode mix.
const HOSTILE: &str = "../../evil/\n<script>alert(1)</script>%2F..\u{202e}cust-Ω";

/// The `n`-th test session id.
fn session(n: usize) -> String {
    format!("5e55104e-0000-4000-8000-{n:012}")
}

/// Registers a small session in the fake (two images, one attempt `<session>-a`).
fn register(fake: &FakeVeriff, session: &str) -> String {
    let attempt = format!("{session}-a");
    let mut images = Vec::new();
    for i in 0..2 {
        let id = format!("{session}-img-{i}");
        let size = 1_500 + 31 * i;
        fake.set_media(
            &id,
            MediaContent::bytes(
                deterministic_bytes(session.len() as u64 * 7 + i as u64, size),
                "image/jpeg",
            ),
        );
        images.push(json!({
            "id": id, "name": format!("face-{i}"), "context": format!("face-{i}"),
            "timestamp": null, "size": size, "mimetype": "image/jpeg",
            "url": format!("https://example.com/v1/media/{id}"), "sessionId": session,
        }));
    }
    let document = json!({"status": "success", "images": images, "videos": [], "nfcDocuments": []})
        .to_string();
    fake.set_session_media(session, document.clone());
    fake.set_attempt_media(&attempt, document);
    attempt
}

/// A decision webhook of `session` for the customer (`vendorData`, `endUserId`).
fn decision_of(
    session: &str,
    attempt: &str,
    status: &str,
    time: &str,
    vendor_data: &str,
    end_user_id: Option<&str>,
) -> String {
    let mut body: Value = serde_json::from_str(&archiver_devkit::decision_webhook(
        session, attempt, status, time,
    ))
    .unwrap();
    body["verification"]["vendorData"] = Value::from(vendor_data);
    body["verification"]["endUserId"] = end_user_id.map_or(Value::Null, Value::from);
    body.to_string()
}

/// Archives session `n` for the customer through the webhook.
async fn archive(h: &Harness, n: usize, vendor_data: &str, end_user_id: Option<&str>) {
    let id = session(n);
    let attempt = register(&h.fake, &id);
    let body = decision_of(
        &id,
        &attempt,
        "approved",
        "2025-03-04T10:21:07.412Z",
        vendor_data,
        end_user_id,
    );
    // Redelivered as Veriff would when a busy machine makes a delivery time out (archiving
    // is not what these tests are about; other tests hold it to a single delivery).
    let mut reply = h.deliver_body(&body).await;
    for _ in 0..2 {
        if reply.status == 200 {
            break;
        }
        reply = h.deliver_body(&body).await;
    }
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Runs the CLI with the harness's S3 (and, on moto, STS) in its environment and the index
/// key set unless `without_key`.
async fn cli_with(h: &Harness, args: &[&str], without_key: bool) -> CliRun {
    let env = cli_env(h);
    let endpoint = env
        .iter()
        .find(|(k, _)| *k == "AWS_ENDPOINT_URL_S3")
        .map(|(_, v)| v.clone())
        .unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_veriff-archiver"));
    command
        .args(args)
        .env_clear()
        .envs(env)
        .env("AWS_ENDPOINT_URL_STS", endpoint)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if !without_key {
        command.env("ARCHIVE_INDEX_KEY", INDEX_KEY);
    }
    let out = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("the CLI finishes within 3 minutes")
        .expect("run veriff-archiver");
    CliRun::from_output(out)
}

async fn cli(h: &Harness, args: &[&str]) -> CliRun {
    cli_with(h, args, false).await
}

/// The session ids of a `find --json` document.
fn found_sessions(found: &Value) -> Vec<String> {
    found["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["sessionId"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts that no key in the bucket holds any of `references` in clear.
async fn assert_no_reference_in_keys(h: &Harness, references: &[&str]) {
    for key in h.all_keys().await {
        for reference in references {
            assert!(!key.contains(reference), "{reference:?} in the key {key:?}");
        }
        assert!(
            !key.contains("..") && !key.contains('\n') && !key.contains('<'),
            "a hostile reference's characters reached the key {key:?}"
        );
    }
}

/// Twelve sessions of four customers: A has sessions 0..4 (session 0 decided twice), B
/// (with an end-user id) 4..7, the hostile reference 7..9, C 9..12.
async fn many_customers(h: &Harness) {
    for n in 0..12 {
        let (vendor, user) = match n {
            0..4 => ("cust-A", None),
            4..7 => ("cust-B", Some("user-b-77")),
            7..9 => (HOSTILE, None),
            _ => ("cust-C", None),
        };
        archive(h, n, vendor, user).await;
    }
    let id = session(0);
    let body = decision_of(
        &id,
        &format!("{id}-a"),
        "declined",
        "2025-03-05T08:00:00.000Z",
        "cust-A",
        None,
    );
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn find_returns_exactly_one_customers_sessions_among_many() {
    let h = Harness::with(&[("ARCHIVE_INDEX_KEY", INDEX_KEY)]).await;
    many_customers(&h).await;

    let a = cli(&h, &["find", "--vendor-data", "cust-A", "--json"]).await;
    a.assert_code(0);
    let found = a.json();
    assert_eq!(
        found_sessions(&found),
        (0..4).map(session).collect::<Vec<_>>()
    );
    let first = &found["sessions"][0]["decisions"];
    assert_eq!(
        first.as_array().unwrap().len(),
        2,
        "both decisions of session 0"
    );
    let statuses: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["approved", "declined"]);
    assert!(
        first
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["present"] == true && d["files"] == 2)
    );
    assert_eq!(found["customer"]["field"], "vendor-data");
    assert!(
        !a.stdout.contains("cust-A"),
        "the reference is never printed"
    );

    let b = cli(&h, &["find", "--end-user-id", "user-b-77", "--json"]).await;
    b.assert_code(0);
    assert_eq!(
        found_sessions(&b.json()),
        (4..7).map(session).collect::<Vec<_>>()
    );
    let b_vendor = cli(&h, &["find", "--vendor-data", "cust-B"]).await;
    b_vendor.assert_code(0);
    assert!(
        b_vendor.stdout.contains("3 session(s), 3 decision(s)"),
        "{}",
        b_vendor.stdout
    );

    let hostile = cli(&h, &["find", "--vendor-data", HOSTILE, "--json"]).await;
    hostile.assert_code(0);
    assert_eq!(found_sessions(&hostile.json()), [session(7), session(8)]);

    let nobody = cli(&h, &["find", "--vendor-data", "cust-Z"]).await;
    nobody.assert_code(1);
    let off = cli_with(&h, &["find", "--vendor-data", "cust-A"], true).await;
    off.assert_code(2);
    assert!(off.stderr.contains("the index is off"), "{}", off.stderr);

    assert_no_reference_in_keys(&h, &["cust-A", "cust-B", "cust-C", "user-b-77", "evil"]).await;
}

#[tokio::test]
async fn reindex_indexes_an_archive_made_before_the_index_and_resumes() {
    let h = Harness::start().await;
    for n in 0..5 {
        archive(&h, n, if n < 3 { "cust-A" } else { "cust-B" }, None).await;
    }
    let index_prefix = format!("{PREFIX}index/");
    assert!(
        !h.all_keys()
            .await
            .iter()
            .any(|k| k.starts_with(&index_prefix)),
        "no index without a key"
    );
    cli(&h, &["find", "--vendor-data", "cust-A"])
        .await
        .assert_code(1);

    let run = cli(&h, &["reindex"]).await;
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("Indexed 5 manifest(s): 5 entries written, 0 already there"),
        "{}",
        run.stdout
    );
    let found = cli(&h, &["find", "--vendor-data", "cust-A", "--json"]).await;
    found.assert_code(0);
    assert_eq!(
        found_sessions(&found.json()),
        (0..3).map(session).collect::<Vec<_>>()
    );

    let again = cli(&h, &["reindex"]).await;
    again.assert_code(0);
    assert!(
        again.stdout.contains("0 entries written, 5 already there"),
        "{}",
        again.stdout
    );
    let last = format!("{PREFIX}{}/", session(2));
    let resumed = cli(&h, &["reindex", "--start-after", &last]).await;
    resumed.assert_code(0);
    // Keys after the folder: session 2's manifest and the two after it.
    assert!(
        resumed.stdout.contains("Indexed 3 manifest(s)"),
        "{}",
        resumed.stdout
    );
}

#[tokio::test]
async fn export_writes_each_sessions_report_and_an_index_page() {
    let h = Harness::with(&[("ARCHIVE_INDEX_KEY", INDEX_KEY)]).await;
    many_customers(&h).await;
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("pack");
    let run = cli(
        &h,
        &[
            "export",
            "--vendor-data",
            "cust-B",
            "--out",
            dir.to_str().unwrap(),
        ],
    )
    .await;
    run.assert_code(0);
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for n in 4..7 {
        let id = session(n);
        assert!(
            index.contains(&format!("href=\"{id}/report.html\"")),
            "{index}"
        );
        assert!(dir.join(&id).join("report.html").is_file());
    }
    assert!(!index.contains(&session(0)), "another customer's session");
    assert!(!index.contains("cust-B") && !index.contains("user-b-77"));
    assert!(
        !index.contains("http://") && !index.contains("https://"),
        "offline"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("index.html")), 0o600);
}

// ------------------------------------------------------------------------------------------
// Object Lock, on moto_server.

/// Every version of every key under `prefix`: (key, version id).
async fn versions_under(h: &Harness, prefix: &str) -> Vec<(String, String)> {
    let out = h
        .client
        .list_object_versions()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut all: Vec<(String, String)> = out
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap().to_string(),
                v.version_id().unwrap().to_string(),
            )
        })
        .chain(out.delete_markers().iter().map(|v| {
            (
                v.key().unwrap().to_string(),
                v.version_id().unwrap().to_string(),
            )
        }))
        .collect();
    all.sort();
    all
}

/// A version's retain-until date, read back (HeadObject: moto_server does not implement
/// GetObjectRetention).
async fn retained_until(h: &Harness, key: &str, version: &str) -> Option<SystemTime> {
    let out = h
        .client
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap();
    out.object_lock_retain_until_date()
        .and_then(|d| SystemTime::try_from(*d).ok())
}

/// The index entry versions of the customer's sessions (found through their manifests' keys).
async fn index_versions_of(h: &Harness, sessions: &[String]) -> Vec<(String, String)> {
    versions_under(h, &format!("{PREFIX}index/"))
        .await
        .into_iter()
        .filter(|(k, _)| sessions.iter().any(|s| k.contains(&format!("/{s}~"))))
        .collect()
}

fn date(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

#[tokio::test]
#[ignore = "needs moto_server (scripts/test.sh runs it)"]
async fn retain_extends_every_version_and_never_shortens() {
    let h = Harness::on_moto(&[("ARCHIVE_INDEX_KEY", INDEX_KEY)], Some(("GOVERNANCE", 1))).await;
    for n in 0..3 {
        archive(&h, n, if n < 2 { "cust-A" } else { "cust-B" }, None).await;
    }
    let a_sessions = [session(0), session(1)];
    let mut a_versions = Vec::new();
    for s in &a_sessions {
        a_versions.extend(versions_under(&h, &format!("{PREFIX}{s}/")).await);
    }
    a_versions.extend(index_versions_of(&h, &a_sessions).await);
    assert!(
        a_versions.len() >= 8,
        "files, manifests, index entries: {a_versions:?}"
    );
    let b_versions = versions_under(&h, &format!("{PREFIX}{}/", session(2))).await;
    let before = retained_until(&h, &b_versions[0].0, &b_versions[0].1)
        .await
        .unwrap();

    let two_years = SystemTime::now() + Duration::from_secs(2 * 365 * 86_400);
    let until = date(two_years);
    let dry = cli(
        &h,
        &[
            "retain",
            "--vendor-data",
            "cust-A",
            "--until",
            &until,
            "--dry-run",
        ],
    )
    .await;
    dry.assert_code(0);
    assert!(dry.stdout.contains("would extend"), "{}", dry.stdout);
    for (k, v) in &a_versions {
        let at = retained_until(&h, k, v).await.unwrap();
        assert!(at < two_years, "a dry run changed {k}");
    }

    let run = cli(
        &h,
        &["retain", "--vendor-data", "cust-A", "--until", &until],
    )
    .await;
    run.assert_code(0);
    let expected = format!(
        "{} version(s): extended {}",
        a_versions.len(),
        a_versions.len()
    );
    assert!(
        run.stdout.contains(&expected),
        "{expected:?} in {}",
        run.stdout
    );
    let whole = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    for (k, v) in &a_versions {
        let at = retained_until(&h, k, v).await.unwrap();
        assert_eq!(whole(at), whole(two_years), "{k} kept until the date");
    }
    for (k, v) in &b_versions {
        let at = retained_until(&h, k, v).await.unwrap();
        assert_eq!(whole(at), whole(before), "another customer's {k} untouched");
    }

    let again = cli(
        &h,
        &["retain", "--vendor-data", "cust-A", "--until", &until],
    )
    .await;
    again.assert_code(0);
    assert!(
        again.stdout.contains("extended 0"),
        "idempotent: {}",
        again.stdout
    );

    let one_year = date(SystemTime::now() + Duration::from_secs(365 * 86_400));
    let shorter = cli(
        &h,
        &["retain", "--vendor-data", "cust-A", "--until", &one_year],
    )
    .await;
    shorter.assert_code(0);
    assert!(shorter.stdout.contains("extended 0"), "{}", shorter.stdout);
    for (k, v) in &a_versions {
        let at = retained_until(&h, k, v).await.unwrap();
        assert_eq!(whole(at), whole(two_years), "{k} never shortened");
    }
}

/// Sets every listed version's retention to `until` as a test's shortcut for time passing
/// (moto accepts shortening a retention, which AWS refuses without the bypass).
async fn expire_at(h: &Harness, versions: &[(String, String)], until: SystemTime) {
    use aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};
    for (k, v) in versions {
        h.client
            .put_object_retention()
            .bucket(BUCKET)
            .key(k)
            .version_id(v)
            .bypass_governance_retention(true)
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Governance)
                    .retain_until_date(aws_sdk_s3::primitives::DateTime::from(until))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
#[ignore = "needs moto_server (scripts/test.sh runs it)"]
async fn erase_refuses_while_locked_or_held_then_deletes_every_version_and_verify_says_erased() {
    let h = Harness::on_moto(&[("ARCHIVE_INDEX_KEY", INDEX_KEY)], Some(("GOVERNANCE", 1))).await;
    for n in 0..3 {
        archive(
            &h,
            n,
            if n < 2 { "cust-A" } else { "cust-B" },
            Some("user-a"),
        )
        .await;
    }
    cli(&h, &["seal", "--json"]).await.assert_code(0);
    let a_sessions = [session(0), session(1)];
    let mut a_versions = Vec::new();
    for s in &a_sessions {
        a_versions.extend(versions_under(&h, &format!("{PREFIX}{s}/")).await);
    }
    a_versions.extend(index_versions_of(&h, &a_sessions).await);
    let others_before = versions_under(&h, &format!("{PREFIX}{}/", session(2))).await;

    // Locked: refused, nothing deleted, each version named with its date.
    let locked = cli(&h, &["erase", "--vendor-data", "cust-A"]).await;
    locked.assert_code(1);
    assert!(
        locked.stdout.contains("Refused: nothing deleted"),
        "{}",
        locked.stdout
    );
    assert!(locked.stdout.contains("locked until"), "{}", locked.stdout);

    // Retention over, but a legal hold: still refused.
    expire_at(&h, &a_versions, SystemTime::now() + Duration::from_secs(3)).await;
    let hold = cli(
        &h,
        &[
            "hold",
            "--vendor-data",
            "cust-A",
            "--reason",
            "case 2026-118",
        ],
    )
    .await;
    hold.assert_code(0);
    assert!(hold.stdout.contains("legal hold set on"), "{}", hold.stdout);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let held = cli(&h, &["erase", "--vendor-data", "cust-A"]).await;
    held.assert_code(1);
    assert!(held.stdout.contains("under legal hold"), "{}", held.stdout);
    assert!(
        !held.stdout.contains("locked until"),
        "retention is over: {}",
        held.stdout
    );
    let record = h
        .ledger_keys()
        .await
        .into_iter()
        .find(|k| k.contains("/holds/"))
        .expect("the hold is recorded");
    let record: Value = serde_json::from_slice(&h.object(&record).await.0).unwrap();
    assert_eq!(record["reason"], "case 2026-118");
    assert_eq!(record["action"], "hold");
    assert!(
        record["by"].as_str().unwrap().starts_with("arn:aws:"),
        "{record}"
    );

    cli(
        &h,
        &[
            "release",
            "--vendor-data",
            "cust-A",
            "--reason",
            "case closed",
        ],
    )
    .await
    .assert_code(0);
    let dry = cli(&h, &["erase", "--vendor-data", "cust-A", "--dry-run"]).await;
    dry.assert_code(0);
    assert!(dry.stdout.contains("Would delete"), "{}", dry.stdout);
    let run = cli(&h, &["erase", "--vendor-data", "cust-A"]).await;
    run.assert_code(0);
    assert!(run.stdout.contains("Erased"), "{}", run.stdout);

    for s in &a_sessions {
        assert_eq!(
            versions_under(&h, &format!("{PREFIX}{s}/")).await,
            [],
            "every version of {s}"
        );
    }
    assert_eq!(
        index_versions_of(&h, &a_sessions).await,
        [],
        "every index entry"
    );
    assert_eq!(
        versions_under(&h, &format!("{PREFIX}{}/", session(2))).await,
        others_before,
        "another customer's evidence untouched"
    );
    let erasure = h
        .ledger_keys()
        .await
        .into_iter()
        .find(|k| k.contains("erasure"))
        .expect("an erasure record");
    let erasure_text = String::from_utf8(h.object(&erasure).await.0).unwrap();
    assert!(!erasure_text.contains("cust-A") && !erasure_text.contains("user-a"));
    for s in &a_sessions {
        assert!(erasure_text.contains(s.as_str()), "{erasure_text}");
    }
    cli(&h, &["find", "--vendor-data", "cust-A"])
        .await
        .assert_code(1);

    cli(&h, &["seal", "--json"]).await.assert_code(0);
    let verify = cli(&h, &["verify", "--json"]).await;
    verify.assert_code(0);
    let report = verify.json();
    let erased = report["ledger"]["erasedSessions"]
        .as_array()
        .expect("erasedSessions");
    let erased: Vec<&str> = erased.iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(
        erased,
        a_sessions.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_no_reference_in_keys(&h, &["cust-A", "cust-B", "user-a"]).await;
}

#[tokio::test]
#[ignore = "needs moto_server (scripts/test.sh runs it)"]
async fn without_object_lock_retain_and_hold_say_so_and_erase_needs_no_lock() {
    let h = Harness::on_moto(&[("ARCHIVE_INDEX_KEY", INDEX_KEY)], None).await;
    archive(&h, 0, "cust-A", None).await;
    let until = date(SystemTime::now() + Duration::from_secs(86_400 * 400));
    let retain = cli(
        &h,
        &["retain", "--vendor-data", "cust-A", "--until", &until],
    )
    .await;
    retain.assert_code(2);
    assert!(
        retain.stderr.contains("no Object Lock"),
        "{}",
        retain.stderr
    );
    let hold = cli(&h, &["hold", "--vendor-data", "cust-A", "--reason", "x"]).await;
    hold.assert_code(2);
    assert!(hold.stderr.contains("no Object Lock"), "{}", hold.stderr);
    let erase = cli(&h, &["erase", "--vendor-data", "cust-A"]).await;
    erase.assert_code(0);
    assert_eq!(
        versions_under(&h, &format!("{PREFIX}{}/", session(0))).await,
        []
    );
}

#[tokio::test]
#[ignore = "needs moto_server (scripts/test.sh runs it)"]
async fn an_archived_storage_class_is_named_with_its_restore_and_restore_asks_for_it() {
    use aws_sdk_s3::types::StorageClass;
    use veriff_archiver::store::Store;
    let h = Harness::on_moto(&[], None).await;
    archive(&h, 0, "cust-A", None).await;
    let folder = format!("{PREFIX}{}/{}-a/", session(0), session(0));
    let cold = format!("{folder}cold.jpg");
    h.client
        .put_object()
        .bucket(BUCKET)
        .key(&cold)
        .storage_class(StorageClass::Glacier)
        .body(b"frozen".to_vec().into())
        .send()
        .await
        .unwrap();
    let store = Store::new(h.client.clone(), BUCKET, 5 << 20);
    let error = store
        .read(&cold, 1 << 20)
        .await
        .expect_err("archived")
        .to_string();
    assert!(error.contains("archived storage class"), "{error}");
    assert!(
        error.contains(&format!(
            "aws s3api restore-object --bucket {BUCKET} --key '{cold}'"
        )),
        "{error}"
    );

    let run = cli(&h, &["restore", "--session", &session(0), "--days", "2"]).await;
    run.assert_code(0);
    // The manifest and both images are STANDARD: only the cold object is asked for.
    assert!(
        run.stdout.contains("Restore requested for 1 version(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("3 version(s) need none"),
        "{}",
        run.stdout
    );
    // moto_server restores at once; S3 takes hours.
    assert_eq!(
        store.read(&cold, 1 << 20).await.unwrap().unwrap().as_ref(),
        b"frozen"
    );
    let bad = cli(&h, &["restore", "--session", "../x"]).await;
    bad.assert_code(2);
}
