//! `local-s3`: a local S3-compatible server (s3s-fs) for the demo and manual testing.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use archiver_devkit::{LocalS3, create_bucket_dir};

const HELP: &str = "\
local-s3: a local S3-compatible server backed by a directory (dev-only; s3s-fs, SigV4 checked)

USAGE:
    local-s3 --root DIR --access-key KEY --secret-key SECRET [OPTIONS]

OPTIONS:
    --root DIR           directory holding the buckets (created if missing) (required)
    --access-key KEY     access key id clients must sign with (required)
    --secret-key SECRET  secret access key (required)
    --port PORT          port on 127.0.0.1 (default 0: any free port)
    --addr-file PATH     write the endpoint URL (http://127.0.0.1:PORT) to PATH once listening
    --bucket NAME        create bucket NAME (a directory under --root); repeatable
    -h, --help           print this help

Clients must use path-style addressing (e.g. aws-sdk-s3 `force_path_style(true)`), any region.
Prints `local-s3 listening on http://127.0.0.1:PORT` and serves until SIGTERM or Ctrl-C.
";

#[derive(Debug)]
struct Options {
    root: PathBuf,
    access_key: String,
    secret_key: String,
    port: u16,
    addr_file: Option<PathBuf>,
    buckets: Vec<String>,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut root = None;
    let mut access_key = None;
    let mut secret_key = None;
    let mut port = 0_u16;
    let mut addr_file = None;
    let mut buckets = Vec::new();
    let mut flags = archiver_devkit::cli::Flags::new(args);
    while let Some((flag, mut inline)) = flags.next_flag() {
        let mut value = |name: &str| flags.value(name, &mut inline);
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--root" => root = Some(PathBuf::from(value("--root")?)),
            "--access-key" => access_key = Some(value("--access-key")?),
            "--secret-key" => secret_key = Some(value("--secret-key")?),
            "--port" => {
                let v = value("--port")?;
                port = v
                    .parse()
                    .map_err(|_| format!("--port: invalid port {v:?}"))?;
            }
            "--addr-file" => addr_file = Some(PathBuf::from(value("--addr-file")?)),
            "--bucket" => buckets.push(value("--bucket")?),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let access_key = access_key.ok_or("--access-key is required")?;
    let secret_key = secret_key.ok_or("--secret-key is required")?;
    if access_key.is_empty() || secret_key.is_empty() {
        return Err("--access-key and --secret-key must not be empty".into());
    }
    Ok(Some(Options {
        root: root.ok_or("--root is required")?,
        access_key,
        secret_key,
        port,
        addr_file,
        buckets,
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
            eprintln!("local-s3: {message}\nTry `local-s3 --help`.");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = std::fs::create_dir_all(&options.root) {
        eprintln!("local-s3: cannot create {}: {err}", options.root.display());
        return ExitCode::FAILURE;
    }
    for bucket in &options.buckets {
        if let Err(err) = create_bucket_dir(&options.root, bucket) {
            eprintln!("local-s3: cannot create bucket {bucket:?}: {err}");
            return ExitCode::FAILURE;
        }
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
    let server = match LocalS3::start_on(
        &options.root,
        &options.access_key,
        &options.secret_key,
        addr,
    )
    .await
    {
        Ok(server) => server,
        Err(err) => {
            eprintln!(
                "local-s3: cannot serve {} on {addr}: {err}",
                options.root.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let endpoint = server.endpoint();
    if let Some(path) = &options.addr_file
        && let Err(err) = archiver_devkit::cli::write_atomically(path, &endpoint)
    {
        eprintln!("local-s3: cannot write {}: {err}", path.display());
        return ExitCode::FAILURE;
    }
    println!("local-s3 listening on {endpoint}");
    archiver_devkit::cli::wait_for_termination().await;
    server.shutdown().await;
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
            "--root",
            "/tmp/r",
            "--access-key",
            "a",
            "--secret-key=s",
            "--bucket",
            "b1",
            "--bucket",
            "b2",
            "--port",
            "0",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.root, PathBuf::from("/tmp/r"));
        assert_eq!(o.access_key, "a");
        assert_eq!(o.secret_key, "s");
        assert_eq!(o.buckets, ["b1", "b2"]);
        assert_eq!(o.port, 0);
        assert!(o.addr_file.is_none());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(args(&["--access-key", "a", "--secret-key", "s"])).is_err());
        assert!(parse(args(&["--root", "r", "--secret-key", "s"])).is_err());
        assert!(
            parse(args(&[
                "--root",
                "r",
                "--access-key",
                "a",
                "--secret-key",
                "s",
                "x"
            ]))
            .is_err()
        );
        assert!(parse(args(&["-h"])).unwrap().is_none());
    }
}
