//! `veriff-fake`: serves the Veriff API fake with the built-in demo scenarios on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use archiver_devkit::{
    FakeConfig, FakeVeriff, demo_scenario, essential_scenario, resubmitted_scenario,
};

const HELP: &str = "\
veriff-fake: a local fake of the Veriff API (dev-only), loaded with the demo scenarios

USAGE:
    veriff-fake --api-key KEY --secret SECRET [--secret SECRET2]... [OPTIONS]

OPTIONS:
    --api-key KEY        API key expected in X-AUTH-CLIENT (required)
    --secret SECRET      shared secret; repeat for rotation: requests signed with any are
                         accepted, responses are signed with the first (required)
    --port PORT          port on 127.0.0.1 (default 0: any free port)
    --addr-file PATH     write the base URL (http://127.0.0.1:PORT) to PATH once listening
    --latency-ms N       add N milliseconds to every request (default 0)
    --video-mib N        size of the demo selfid_video in MiB (default 8)
    --sign-media         sign in-memory media downloads with X-HMAC-SIGNATURE
    -h, --help           print this help

Demo session: f04bdb47-d3be-4b28-b028-a652feb060b5 (attempt e30122d1-740b-4764-853f-470374a7abf4).
Resubmitted session: 3c9e1f52-8a47-4d0b-9b6e-5f21c4d7a803 (decided attempt
a7d4e2b9-61c3-4f85-8e0a-2b9c7d415f66, resubmission_requested; latest attempt
5b18c6fe-0d92-4a73-a4c1-e8f3097b2d1c, with different images and an NFC document).
Essential-plan session: 7d0e4b21-93a6-4f1c-b58e-0c2d9a6e41f7 (attempt
c41f8a03-2e7b-4d95-a6c0-9b3e5f71d2a8), decided by Full Auto webhooks (events/fullauto-*.json).
Prints `veriff-fake listening on http://127.0.0.1:PORT` and serves until SIGTERM or Ctrl-C.
";

struct Options {
    config: FakeConfig,
    port: u16,
    addr_file: Option<PathBuf>,
    latency: Duration,
    video_mib: u64,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut api_key = None;
    let mut secrets = Vec::new();
    let mut port = 0_u16;
    let mut addr_file = None;
    let mut latency_ms = 0_u64;
    let mut video_mib = 8_u64;
    let mut sign_media = false;
    let mut flags = archiver_devkit::cli::Flags::new(args);
    while let Some((flag, mut inline)) = flags.next_flag() {
        let mut value = |name: &str| flags.value(name, &mut inline);
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--api-key" => api_key = Some(value("--api-key")?),
            "--secret" => secrets.push(value("--secret")?),
            "--port" => {
                let v = value("--port")?;
                port = v
                    .parse()
                    .map_err(|_| format!("--port: invalid port {v:?}"))?;
            }
            "--addr-file" => addr_file = Some(PathBuf::from(value("--addr-file")?)),
            "--latency-ms" => {
                let v = value("--latency-ms")?;
                latency_ms = v
                    .parse()
                    .map_err(|_| format!("--latency-ms: not a number: {v:?}"))?;
            }
            "--video-mib" => {
                let v = value("--video-mib")?;
                video_mib = v
                    .parse()
                    .map_err(|_| format!("--video-mib: not a number: {v:?}"))?;
            }
            "--sign-media" => sign_media = true,
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let api_key = api_key.ok_or("--api-key is required")?;
    if api_key.is_empty() {
        return Err("--api-key must not be empty".into());
    }
    if secrets.is_empty() {
        return Err("at least one --secret is required".into());
    }
    if secrets.iter().any(String::is_empty) {
        return Err("--secret must not be empty".into());
    }
    Ok(Some(Options {
        config: FakeConfig {
            api_key,
            secrets,
            sign_media,
        },
        port,
        addr_file,
        latency: Duration::from_millis(latency_ms),
        video_mib,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("veriff-fake: {message}\nTry `veriff-fake --help`.");
            return ExitCode::from(2);
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
    let fake = match FakeVeriff::start_on(options.config, addr).await {
        Ok(fake) => fake,
        Err(err) => {
            eprintln!("veriff-fake: cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    fake.set_latency(options.latency);
    let Some(video_len) = options.video_mib.checked_mul(1024 * 1024) else {
        eprintln!("veriff-fake: --video-mib is too large");
        return ExitCode::from(2);
    };
    let scenario = demo_scenario(&fake, video_len);
    let resubmitted = resubmitted_scenario(&fake);
    let essential = essential_scenario(&fake);
    let base_url = fake.base_url();
    if let Some(path) = &options.addr_file
        && let Err(err) = archiver_devkit::cli::write_atomically(path, &base_url)
    {
        eprintln!("veriff-fake: cannot write {}: {err}", path.display());
        return ExitCode::FAILURE;
    }
    println!("veriff-fake listening on {base_url}");
    eprintln!(
        "demo session {} (attempt {}): {} media files",
        scenario.session_id,
        scenario.attempt_id,
        scenario.media.len()
    );
    eprintln!(
        "resubmitted session {} (decided attempt {}: {} media files; latest attempt {}: {} media files + NFC)",
        resubmitted.session_id,
        resubmitted.decided_attempt_id,
        resubmitted.decided_media.len(),
        resubmitted.latest_attempt_id,
        resubmitted.latest_media.len()
    );
    eprintln!(
        "essential-plan session {} (attempt {}): {} media files, decided by Full Auto webhooks",
        essential.session_id,
        essential.attempt_id,
        essential.media.len()
    );
    archiver_devkit::cli::wait_for_termination().await;
    fake.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_flags() {
        let o = parse(args(&[
            "--api-key",
            "k",
            "--secret",
            "s1",
            "--secret=s2",
            "--port",
            "8123",
            "--latency-ms",
            "5",
            "--video-mib",
            "2",
            "--addr-file",
            "/tmp/x",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.config.api_key, "k");
        assert_eq!(o.config.secrets, ["s1", "s2"]);
        assert_eq!(o.port, 8123);
        assert_eq!(o.latency, Duration::from_millis(5));
        assert_eq!(o.video_mib, 2);
        assert_eq!(o.addr_file, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn help_names_the_scenario_ids() {
        for id in [
            archiver_devkit::fixtures::DEMO_SESSION_ID,
            archiver_devkit::fixtures::DEMO_ATTEMPT_ID,
            archiver_devkit::demo::RESUBMITTED_SESSION_ID,
            archiver_devkit::demo::RESUBMITTED_DECIDED_ATTEMPT_ID,
            archiver_devkit::demo::RESUBMITTED_LATEST_ATTEMPT_ID,
        ] {
            assert!(HELP.contains(id), "{id}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(args(&["--secret", "s"])).is_err());
        assert!(parse(args(&["--api-key", "k"])).is_err());
        assert!(parse(args(&["--api-key", "k", "--secret", "s", "--port", "x"])).is_err());
        assert!(parse(args(&["--api-key", "k", "--secret"])).is_err());
        assert!(parse(args(&["--bogus"])).is_err());
        assert!(parse(args(&["--help"])).unwrap().is_none());
    }
}
