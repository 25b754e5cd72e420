//! [`TsaServer`]: a real RFC 3161 time-stamping authority on loopback, for tests: each
//! `POST /` of an `application/timestamp-query` is answered by Debian's `openssl ts -reply`
//! with a key and a self-signed certificate (extended key usage `timeStamping`, critical)
//! made when the server starts. It can be taken down (`503`) to test a seal whose
//! authority is unavailable.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;

use crate::server::ServerTask;

/// The authority's key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsaKey {
    /// RSA 2048 (sha256WithRSAEncryption).
    Rsa,
    /// ECDSA P-256 (ecdsa-with-SHA256).
    P256,
}

#[derive(Debug)]
struct Shared {
    dir: tempfile::TempDir,
    /// One `openssl ts -reply` at a time: each one increments the serial file.
    serial: std::sync::Mutex<()>,
    down: AtomicBool,
    requests: AtomicUsize,
}

/// A running local authority. Stops when dropped.
#[derive(Debug)]
pub struct TsaServer {
    shared: Arc<Shared>,
    task: ServerTask,
}

impl TsaServer {
    /// Makes a key and certificate of `key` type in a temporary folder and starts serving
    /// on a free loopback port. Needs the `openssl` command (Debian's `openssl` package).
    pub async fn start(key: TsaKey) -> io::Result<TsaServer> {
        let dir = tempfile::tempdir()?;
        make_authority(dir.path(), key)?;
        let shared = Arc::new(Shared {
            dir,
            serial: std::sync::Mutex::new(()),
            down: AtomicBool::new(false),
            requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/", post(answer))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let task = ServerTask::serve_router(listener, router)?;
        Ok(TsaServer { shared, task })
    }

    /// The authority's URL (`http://127.0.0.1:<port>/`).
    pub fn url(&self) -> String {
        format!("http://{}/", self.task.addr())
    }

    /// The authority's certificate (PEM): what an auditor verifies tokens against.
    pub fn cert_pem(&self) -> Vec<u8> {
        std::fs::read(self.shared.dir.path().join("tsa.pem")).expect("the certificate")
    }

    /// Where the certificate is (for `verify --tsa-cert`).
    pub fn cert_path(&self) -> PathBuf {
        self.shared.dir.path().join("tsa.pem")
    }

    /// Takes the authority down (every request answered `503`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// How many requests it received (answered or not).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

async fn answer(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if shared.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let shared = shared.clone();
    let reply = tokio::task::spawn_blocking(move || {
        let _one_at_a_time = shared.serial.lock().unwrap_or_else(|e| e.into_inner());
        reply(shared.dir.path(), &body)
    })
    .await;
    match reply {
        Ok(Ok(der)) => {
            ([(header::CONTENT_TYPE, "application/timestamp-reply")], der).into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `openssl ts -reply` for one query.
fn reply(dir: &Path, query: &[u8]) -> io::Result<Vec<u8>> {
    let n = rand_suffix();
    let query_path = dir.join(format!("query-{n}.der"));
    let reply_path = dir.join(format!("reply-{n}.der"));
    std::fs::write(&query_path, query)?;
    let config = dir.join("openssl.cnf");
    run(Command::new("openssl")
        .args(["ts", "-reply", "-config"])
        .arg(&config)
        .arg("-queryfile")
        .arg(&query_path)
        .arg("-out")
        .arg(&reply_path))?;
    let der = std::fs::read(&reply_path)?;
    let _ = std::fs::remove_file(query_path);
    let _ = std::fs::remove_file(reply_path);
    Ok(der)
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    nanos ^ ((COUNTER.fetch_add(1, Ordering::SeqCst) as u64) << 32)
}

fn run(command: &mut Command) -> io::Result<()> {
    let output = command.output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("openssl: {e} (install Debian's openssl package)"),
        )
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "openssl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// The key, the self-signed certificate and the `ts` configuration.
fn make_authority(dir: &Path, key: TsaKey) -> io::Result<()> {
    let mut req = Command::new("openssl");
    req.args([
        "req",
        "-x509",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=Local test TSA",
    ]);
    match key {
        TsaKey::Rsa => req.args(["-newkey", "rsa:2048"]),
        TsaKey::P256 => req.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    };
    req.args([
        "-addext",
        "extendedKeyUsage=critical,timeStamping",
        "-addext",
        "keyUsage=critical,digitalSignature",
        "-keyout",
    ])
    .arg(dir.join("tsa.key"))
    .arg("-out")
    .arg(dir.join("tsa.pem"));
    run(&mut req)?;
    std::fs::write(dir.join("serial"), "01\n")?;
    let config = format!(
        "[ tsa ]\ndefault_tsa = local\n\n[ local ]\ndir = {dir}\nserial = $dir/serial\n\
         crypto_device = builtin\nsigner_cert = $dir/tsa.pem\nsigner_key = $dir/tsa.key\n\
         signer_digest = sha256\ndefault_policy = 1.3.6.1.4.1.4146.2.3\n\
         digests = sha256, sha384, sha512\naccuracy = secs:1\nordering = no\ntsa_name = yes\n\
         ess_cert_id_chain = no\ness_cert_id_alg = sha256\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("openssl.cnf"), config)
}
