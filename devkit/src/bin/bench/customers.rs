//! Items 12 and 13: evidence by customer. Item 12 times `find` for one customer in an
//! archive of many sessions (s3s-fs), against reading the whole archive's listing, which
//! is what finding a customer costs without the index, and counts the S3 requests one
//! decision costs to archive with the index on (the cost table of docs/customers.md).
//! Item 13 times `retain` on a customer of many sessions on moto_server (Object Lock),
//! against a one-request-at-a-time script.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;
use tokio::time::Instant;
use veriff_archiver::customer::CustomerArchive;
use veriff_archiver::customer::locks::{Locks, Mode};
use veriff_archiver::customer::ops::Pace;
use veriff_archiver::index::{Field, entry_key};
use veriff_archiver::store::Store;

use super::{
    BUCKET, Env, MediaEntry, Params, Res, Table, deterministic_bytes, handle, ms, request_mix,
};
use archiver_devkit::MediaContent;

/// The index key of items 12 and 13.
const INDEX_KEY: &str = "8f1e6c2a9b7d4e3f0a1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778";
/// Every bench decision's `vendorData` (the decision webhook example's).
const CUSTOMER: &str = "cust-8d1c2f";

fn key() -> Res<veriff_archiver::index::IndexKey> {
    veriff_archiver::config::parse_index_key(INDEX_KEY).map_err(|e| e.to_string())
}

/// Two small images, registered in the fake.
fn images(env: &Env) -> Vec<MediaEntry> {
    let images: Vec<MediaEntry> = (0..2)
        .map(|i| MediaEntry {
            id: format!("bench-customer-image-{i}"),
            kind: "image",
            context: format!("img-{i}"),
            size: 20_000,
            mimetype: "image/jpeg",
        })
        .collect();
    for (i, m) in images.iter().enumerate() {
        let data = deterministic_bytes(0xC0 + i as u64, 20_000);
        env.fake
            .set_media(&m.id, MediaContent::bytes(data, "image/jpeg"));
    }
    images
}

/// Writes `count` other customers' sessions straight into the local server's folder: one
/// index entry and one manifest-named object each (find never reads them).
fn fill_others(env: &Env, prefix: &str, count: usize) -> Res<()> {
    let key = key()?;
    let bucket = env.root.path().join("s3").join(BUCKET);
    for n in 0..count {
        let session = format!("other-{n:07}");
        let manifest =
            format!("{prefix}{session}/{session}-a/manifest-20250304T102107412000Z-{n:016x}.json");
        let subject = key.subject(Field::VendorData, &format!("customer-{n}"));
        let entry = entry_key(prefix, Field::VendorData, &subject, &manifest);
        for path in [entry, manifest] {
            let file = bucket.join(&path);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&file, b"{}").map_err(|e| format!("fill: {e}"))?;
        }
    }
    Ok(())
}

pub(super) async fn bench_find(env: &Env, p: &Params) -> Res<Vec<Table>> {
    let prefix = "customers/";
    let images = images(env);
    let app = env
        .app(&[("ARCHIVE_PREFIX", prefix), ("ARCHIVE_INDEX_KEY", INDEX_KEY)])
        .await?;
    let mut cost = Table::new(
        "Item 12: S3 requests to archive one decision (2 images), index on (vendorData only)",
        &["decision", "S3 requests"],
    );
    for i in 0..p.find_customer_sessions {
        env.s3.reset_requests();
        handle(&app, &env.decision("customer", &images).0, images.len()).await?;
        if i == 0 {
            cost.row(vec!["first".into(), request_mix(&env.s3.requests())]);
        }
    }
    let filling = Instant::now();
    fill_others(env, prefix, p.find_sessions)?;
    eprintln!(
        "(item 12: {} sessions written in {:.1} s)",
        p.find_sessions,
        filling.elapsed().as_secs_f64()
    );

    let store = Store::new(env.client.clone(), BUCKET, 5 << 20);
    let archive = CustomerArchive::new(
        store.clone(),
        Locks::new(env.client.clone(), BUCKET),
        prefix,
        key()?,
    );
    let mut table = Table::new(
        format!(
            "Item 12: find one customer ({} sessions) among {} (local s3s-fs)",
            p.find_customer_sessions,
            p.find_sessions + p.find_customer_sessions
        ),
        &["case", "sessions found", "time", "S3 requests"],
    );
    env.s3.reset_requests();
    let started = Instant::now();
    let found = archive
        .find(archive.customer(Field::VendorData, CUSTOMER))
        .await
        .map_err(|e| format!("find: {e}"))?;
    let elapsed = started.elapsed();
    if found.sessions.len() != p.find_customer_sessions {
        return Err(format!(
            "find found {} sessions, expected {}",
            found.sessions.len(),
            p.find_customer_sessions
        ));
    }
    table.row(vec![
        "find, through the index".into(),
        found.sessions.len().to_string(),
        ms(elapsed),
        request_mix(&env.s3.requests()),
    ]);
    // The baseline, finding a customer without the index: every manifest of the archive
    // read. One page of the listing is timed (s3s-fs walks the whole bucket for each page,
    // so timing all of them here measures the local server, not S3); the rest is computed.
    let objects = 2 * (p.find_sessions + p.find_customer_sessions);
    let started = Instant::now();
    let page = env
        .client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .max_keys(1000)
        .send()
        .await
        .map_err(|e| format!("list: {e}"))?;
    let page_time = started.elapsed();
    let pages = objects.div_ceil(1000);
    let manifests = p.find_sessions + p.find_customer_sessions;
    table.row(vec![
        "  baseline: list the archive, read every manifest".into(),
        "-".into(),
        format!(
            "{} a page ({} keys) x {pages} pages + {manifests} GETs",
            ms(page_time),
            page.key_count().unwrap_or(0)
        ),
        format!("{pages} LIST + {manifests} GET (computed)"),
    ]);
    Ok(vec![cost, table])
}

pub(super) async fn bench_retain(env: &Env, p: &Params) -> Res<Vec<Table>> {
    use aws_sdk_s3::types::{
        BucketVersioningStatus, DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled,
        ObjectLockRetentionMode, ObjectLockRule, VersioningConfiguration,
    };
    let moto = archiver_devkit::MotoServer::start()
        .await
        .map_err(|e| format!("moto_server: {e}"))?;
    let client = super::s3_client(&moto.endpoint());
    let sdk = |e: &dyn std::fmt::Display| e.to_string();
    client
        .create_bucket()
        .bucket(BUCKET)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .map_err(|e| sdk(&e))?;
    client
        .put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk(&e))?;
    let rule = ObjectLockRule::builder()
        .default_retention(
            DefaultRetention::builder()
                .mode(ObjectLockRetentionMode::Governance)
                .days(1)
                .build(),
        )
        .build();
    client
        .put_object_lock_configuration()
        .bucket(BUCKET)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(rule)
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk(&e))?;
    let prefix = "retain/";
    let images = images(env);
    let app = env
        .app_with(
            &[("ARCHIVE_PREFIX", prefix), ("ARCHIVE_INDEX_KEY", INDEX_KEY)],
            client.clone(),
        )
        .await?;
    for _ in 0..p.retain_sessions {
        handle(&app, &env.decision("retain", &images).0, images.len()).await?;
    }
    let store = Store::new(client.clone(), BUCKET, 5 << 20);
    let locks = Locks::new(client.clone(), BUCKET);
    let archive = CustomerArchive::new(store, locks.clone(), prefix, key()?);
    let found = archive
        .find(archive.customer(Field::VendorData, CUSTOMER))
        .await
        .map_err(|e| format!("find: {e}"))?;
    let versions = archive
        .versions(&found)
        .await
        .map_err(|e| format!("versions: {e}"))?;
    let year = Duration::from_secs(365 * 86_400);
    let mut table = Table::new(
        format!(
            "Item 13: retain one customer's {} sessions ({} versions) (local moto_server)",
            found.sessions.len(),
            versions.len()
        ),
        &["case", "versions extended", "time", "per version"],
    );
    let five_years = SystemTime::now() + 5 * year;
    let started = Instant::now();
    let report = archive
        .retain(&found, five_years, None, &Pace::default())
        .await
        .map_err(|e| format!("retain: {e}"))?;
    let elapsed = started.elapsed();
    table.row(vec![
        "retain (8 requests in flight)".into(),
        report.extended.to_string(),
        ms(elapsed),
        format!(
            "{:.1} ms",
            elapsed.as_secs_f64() * 1e3 / versions.len() as f64
        ),
    ]);
    let started = Instant::now();
    let report = archive
        .retain(&found, five_years, None, &Pace::default())
        .await
        .map_err(|e| format!("retain again: {e}"))?;
    let elapsed = started.elapsed();
    table.row(vec![
        "retain again (nothing to extend: reads only)".into(),
        report.extended.to_string(),
        ms(elapsed),
        format!(
            "{:.1} ms",
            elapsed.as_secs_f64() * 1e3 / versions.len() as f64
        ),
    ]);
    // The baseline: what a script does one request at a time (read, then extend).
    let until = SystemTime::now() + 6 * year;
    let started = Instant::now();
    let sequential: Vec<Res<()>> = futures_util::stream::iter(&versions)
        .map(|v| {
            let locks = locks.clone();
            async move {
                locks
                    .state(&v.key, &v.version_id)
                    .await
                    .map_err(|e| e.to_string())?;
                let retention = veriff_archiver::customer::locks::Retention {
                    mode: Mode::Governance,
                    until,
                };
                locks
                    .set_retention(&v.key, &v.version_id, retention)
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .buffered(1)
        .collect()
        .await;
    sequential.into_iter().collect::<Res<Vec<_>>>()?;
    let elapsed = started.elapsed();
    table.row(vec![
        "  baseline: one request at a time".into(),
        versions.len().to_string(),
        ms(elapsed),
        format!(
            "{:.1} ms",
            elapsed.as_secs_f64() * 1e3 / versions.len() as f64
        ),
    ]);
    Ok(vec![table])
}
