//! `veriff-archiver backfill` with the credentials in Secrets Manager (`VERIFF_SECRET_ARN`,
//! moto_server): read once for the run, as the function reads them; a secret that cannot be
//! read stops the tool before any request (exit 2). The function's own reading (cold start,
//! refresh, failures) is tested on the release bootstrap in `tests/it/e2e_bootstrap.rs`.
//!
//! `#[ignore]`d in a plain `cargo test` (moto_server is installed by scripts/test.sh, which
//! runs them with `--ignored`).

use crate::support::*;
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{MotoServer, demo_scenario};
use tokio::io::AsyncWriteExt;

async fn backfill(h: &Harness, moto: &MotoServer, secret_id: &str) -> CliRun {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_veriff-archiver"))
        .args(["backfill", "--sessions", "-", "--json"])
        .env_clear()
        .env("VERIFF_API_URL", h.fake.base_url())
        .env("VERIFF_SECRET_ARN", secret_id)
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint())
        .envs(cli_env(h))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run veriff-archiver");
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin
        .write_all(format!("{DEMO_SESSION_ID}\n").as_bytes())
        .await;
    drop(stdin);
    CliRun::from_output(child.wait_with_output().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn backfill_reads_the_credentials_from_secrets_manager() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1_000_000);
    let moto = MotoServer::start().await.expect("moto_server");
    let secrets = crate::support::secrets_client(&moto.endpoint());
    let arn = secrets
        .create_secret()
        .name("veriff-credentials")
        .secret_string(serde_json::json!({"apiKey": API_KEY, "sharedSecret": SECRET}).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();

    let run = backfill(&h, &moto, &arn).await;
    run.assert_code(0);
    assert_eq!(run.json()["summary"]["archived"], 1);
    let manifest = h
        .manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID)
        .await
        .expect("manifest");
    h.assert_manifest_consistent(&manifest).await;

    // A secret that cannot be read: exit 2 before any Veriff request, nothing printed of it.
    h.fake.reset_requests();
    let run = backfill(
        &h,
        &moto,
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf",
    )
    .await;
    run.assert_code(2);
    assert!(
        run.stderr.contains("VERIFF_SECRET_ARN")
            && run.stderr.contains("ResourceNotFoundException"),
        "{run:#?}"
    );
    assert!(h.fake.requests().is_empty());
}
