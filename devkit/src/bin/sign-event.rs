//! `sign-event`: prints a Lambda Function URL event carrying a Veriff-signed webhook body.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use archiver_devkit::{function_url_event, hmac_sha256_hex};

const HELP: &str = "\
sign-event: print a Lambda Function URL event (payload 2.0, POST /) for a webhook body,
signed the way Veriff signs webhooks (dev-only)

USAGE:
    sign-event --secret SECRET [OPTIONS] BODY_FILE

ARGS:
    BODY_FILE                the raw webhook body; `-` reads standard input

OPTIONS:
    --secret SECRET          shared secret used for the HMAC-SHA256 signature (required)
    --api-key KEY            also send the API key header (x-auth-client / vrf-auth-client)
    --base64                 base64-encode the body (isBase64Encoded: true)
    --header-prefix x|vrf    header names: x-hmac-signature (default) or vrf-hmac-signature
    --bad-signature          send a well-formed but wrong signature
    -h, --help               print this help

The event is printed as pretty JSON on standard output, e.g.
    sign-event --secret S --api-key K body.json > event.json
";

#[derive(Debug)]
struct Options {
    secret: String,
    api_key: Option<String>,
    base64: bool,
    prefix: &'static str,
    bad_signature: bool,
    body_file: String,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut secret = None;
    let mut api_key = None;
    let mut base64 = false;
    let mut prefix = "x";
    let mut bad_signature = false;
    let mut body_file = None;
    let mut flags = archiver_devkit::cli::Flags::new(args);
    while let Some((flag, mut inline)) = flags.next_flag() {
        let arg = flag.clone();
        let mut value = |name: &str| flags.value(name, &mut inline);
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--secret" => secret = Some(value("--secret")?),
            "--api-key" => api_key = Some(value("--api-key")?),
            "--base64" => base64 = true,
            "--bad-signature" => bad_signature = true,
            "--header-prefix" => {
                prefix = match value("--header-prefix")?.as_str() {
                    "x" => "x",
                    "vrf" => "vrf",
                    other => {
                        return Err(format!("--header-prefix must be x or vrf, not {other:?}"));
                    }
                };
            }
            "-" => set_body_file(&mut body_file, arg)?,
            other if other.starts_with('-') => {
                return Err(format!("unexpected option {other:?}"));
            }
            _ => set_body_file(&mut body_file, arg)?,
        }
    }
    let secret = secret.ok_or("--secret is required")?;
    if secret.is_empty() {
        return Err("--secret must not be empty".into());
    }
    Ok(Some(Options {
        secret,
        api_key,
        base64,
        prefix,
        bad_signature,
        body_file: body_file.ok_or("BODY_FILE is required (use - for standard input)")?,
    }))
}

fn set_body_file(slot: &mut Option<String>, value: String) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("only one BODY_FILE is accepted (extra: {value:?})"));
    }
    *slot = Some(value);
    Ok(())
}

/// The signature to send: correct, or (with `bad`) the correct one with its last hex digit
/// changed, so it is well-formed but does not verify.
fn signature(secret: &str, body: &[u8], bad: bool) -> String {
    let mut sig = hmac_sha256_hex(secret.as_bytes(), body);
    if bad {
        let last = sig.pop().unwrap_or('0');
        sig.push(if last == '0' { '1' } else { '0' });
    }
    sig
}

fn build_event(options: &Options, body: &[u8]) -> serde_json::Value {
    let sig = signature(&options.secret, body, options.bad_signature);
    let sig_header = format!("{}-hmac-signature", options.prefix);
    let key_header = format!("{}-auth-client", options.prefix);
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(key) = &options.api_key {
        headers.push((&key_header, key));
    }
    headers.push((&sig_header, &sig));
    function_url_event(body, &headers, options.base64)
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("sign-event: {message}\nTry `sign-event --help`.");
            return ExitCode::from(2);
        }
    };
    let body = if options.body_file == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(PathBuf::from(&options.body_file))
    };
    let body = match body {
        Ok(body) => body,
        Err(err) => {
            eprintln!("sign-event: cannot read {}: {err}", options.body_file);
            return ExitCode::FAILURE;
        }
    };
    if !options.base64 && std::str::from_utf8(&body).is_err() {
        eprintln!("sign-event: BODY_FILE is not UTF-8; use --base64 to send it unchanged");
        return ExitCode::from(2);
    }
    let event = build_event(&options, &body);
    let text = serde_json::to_string_pretty(&event).expect("a JSON value always serializes");
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn builds_signed_event() {
        let o = parse(args(&["--secret", "s", "--api-key", "k", "body.json"]))
            .unwrap()
            .unwrap();
        let ev = build_event(&o, b"{}");
        assert_eq!(ev["headers"]["x-auth-client"], "k");
        assert_eq!(
            ev["headers"]["x-hmac-signature"],
            hmac_sha256_hex(b"s", b"{}")
        );
        assert_eq!(ev["body"], "{}");
    }

    #[test]
    fn vrf_prefix_base64_and_bad_signature() {
        let o = parse(args(&[
            "--secret",
            "s",
            "--header-prefix",
            "vrf",
            "--base64",
            "--bad-signature",
            "-",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.body_file, "-");
        let ev = build_event(&o, b"{}");
        assert!(ev["headers"].get("vrf-auth-client").is_none());
        let sig = ev["headers"]["vrf-hmac-signature"].as_str().unwrap();
        assert_eq!(sig.len(), 64);
        assert_ne!(sig, hmac_sha256_hex(b"s", b"{}"));
        assert_eq!(ev["isBase64Encoded"], true);
        assert_eq!(ev["body"], "e30=");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(args(&["body.json"])).is_err());
        assert!(parse(args(&["--secret", "s"])).is_err());
        assert!(parse(args(&["--secret", "s", "a", "b"])).is_err());
        assert!(parse(args(&["--secret", "s", "--header-prefix", "y", "a"])).is_err());
        assert!(parse(args(&["--secret", "s", "--frobnicate", "a"])).is_err());
    }
}
