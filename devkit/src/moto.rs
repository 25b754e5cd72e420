//! A launcher for an external `moto_server` on loopback (dev-only).
//!
//! `moto_server` (PyPI `moto[server]`) is an S3 (and more) emulator that enforces S3 Object
//! Lock and conditional writes (`If-None-Match: *`). It does not check SigV4 signatures:
//! any static key pair works. Use path-style addressing (`force_path_style(true)`) and
//! region `us-east-1`.
//!
//! [`MotoServer::start`] finds the executable (see [`MotoServer::find_executable`]), starts
//! it on a free port of `127.0.0.1` with its output in a log file, and waits until it
//! answers HTTP. Dropping the [`MotoServer`] kills the process.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Environment variable naming the `moto_server` executable to use.
pub const MOTO_SERVER_ENV: &str = "MOTO_SERVER";

/// How long [`MotoServer::start`] waits for the server to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to install `moto_server`, quoted in the error when it cannot be found.
pub const INSTALL_HINT: &str = "install it with `pip install 'moto[server]'` (scripts/test.sh \
    installs it into the workspace's .venv-moto), or set MOTO_SERVER to its path";

/// Name of the executable.
const EXECUTABLE: &str = "moto_server";

/// Start attempts (a new port each time) when the chosen port was taken meanwhile.
const START_ATTEMPTS: usize = 3;

/// A running `moto_server` child process. See the [module docs](self).
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    executable: PathBuf,
    log_path: PathBuf,
}

impl MotoServer {
    /// Finds `moto_server`, starts it on `127.0.0.1` with a free port and waits (up to
    /// [`START_TIMEOUT`]) until it answers `GET /moto-api/`.
    ///
    /// # Errors
    /// The executable cannot be found (`NotFound`, with [`INSTALL_HINT`] in the message),
    /// cannot be started, exits early, or does not answer in time (the message then ends
    /// with the tail of its log).
    pub async fn start() -> io::Result<MotoServer> {
        let executable = Self::find_executable()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&executable).await {
                Ok(server) => return Ok(server),
                // Another process took the port between our probe and moto's bind: retry.
                Err(err) if err.kind() == io::ErrorKind::AddrInUse => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("moto_server did not start")))
    }

    /// The executable [`MotoServer::start`] runs: `$MOTO_SERVER` if set, else
    /// `<workspace root>/.venv-moto/bin/moto_server` if it exists, else `moto_server` on `PATH`.
    ///
    /// # Errors
    /// None of these exists (`NotFound`, with [`INSTALL_HINT`] in the message).
    pub fn find_executable() -> io::Result<PathBuf> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or_else(|| Path::new("."));
        locate(
            std::env::var_os(MOTO_SERVER_ENV),
            workspace,
            std::env::var_os("PATH"),
        )
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:41234`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The address the server listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The port the server listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The executable that was started.
    #[must_use]
    pub fn executable(&self) -> &Path {
        &self.executable
    }

    /// The file receiving the server's stdout and stderr (removed on drop, kept when the
    /// drop happens during a panic).
    #[must_use]
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The server's output so far (lossy UTF-8; empty if unreadable).
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Forgets every bucket and object (moto's `POST /moto-api/reset`).
    ///
    /// # Errors
    /// The server does not answer with a 2xx status.
    pub async fn reset(&self) -> io::Result<()> {
        let head = http_request(
            self.port,
            "POST",
            "/moto-api/reset",
            Duration::from_secs(10),
        )
        .await?;
        if head.starts_with(b"HTTP/1.1 2") || head.starts_with(b"HTTP/1.0 2") {
            Ok(())
        } else {
            let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
            Err(io::Error::other(format!(
                "moto reset failed: {}",
                String::from_utf8_lossy(line)
            )))
        }
    }

    async fn start_once(executable: &Path) -> io::Result<MotoServer> {
        let port = free_port()?;
        let log_path =
            std::env::temp_dir().join(format!("moto-server-{}-{port}.log", std::process::id()));
        let log = File::create(&log_path)?;
        let child = Command::new(executable)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|err| {
                let _ = std::fs::remove_file(&log_path);
                if err.kind() == io::ErrorKind::NotFound {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("cannot run {}: {err}; {INSTALL_HINT}", executable.display()),
                    )
                } else {
                    io::Error::new(
                        err.kind(),
                        format!("cannot run {}: {err}", executable.display()),
                    )
                }
            })?;
        // From here on, dropping `server` kills the child and removes the log.
        let mut server = MotoServer {
            child,
            port,
            executable: executable.to_owned(),
            log_path,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait()? {
                let log = server.log();
                let kind = if log.contains("Address already in use") {
                    io::ErrorKind::AddrInUse
                } else {
                    io::ErrorKind::Other
                };
                return Err(io::Error::new(
                    kind,
                    format!(
                        "{} exited early ({status}); its output ends with:\n{}",
                        executable.display(),
                        tail(&log)
                    ),
                ));
            }
            if http_request(port, "GET", "/moto-api/", Duration::from_secs(2))
                .await
                .is_ok_and(|head| head.starts_with(b"HTTP/"))
            {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} did not answer on port {port} within {}s; its output ends with:\n{}",
                        executable.display(),
                        START_TIMEOUT.as_secs(),
                        tail(&server.log())
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("moto_server log kept at {}", self.log_path.display());
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// [`MotoServer::find_executable`] with its inputs made explicit.
fn locate(
    env_value: Option<OsString>,
    workspace: &Path,
    path_var: Option<OsString>,
) -> io::Result<PathBuf> {
    let not_found =
        |what: String| io::Error::new(io::ErrorKind::NotFound, format!("{what}; {INSTALL_HINT}"));
    let search_path = |name: &OsStr| {
        path_var
            .as_deref()
            .into_iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    };
    if let Some(value) = env_value.filter(|v| !v.is_empty()) {
        let path = PathBuf::from(&value);
        if path.is_file() {
            return Ok(path);
        }
        // A bare name ("moto_server") is looked up on PATH, like a shell would.
        if path.components().count() == 1
            && let Some(found) = search_path(&value)
        {
            return Ok(found);
        }
        return Err(not_found(format!(
            "{MOTO_SERVER_ENV}={} does not name an executable file",
            path.display()
        )));
    }
    let venv = workspace.join(".venv-moto").join("bin").join(EXECUTABLE);
    if venv.is_file() {
        return Ok(venv);
    }
    search_path(OsStr::new(EXECUTABLE)).ok_or_else(|| {
        not_found(format!(
            "{EXECUTABLE} not found ({MOTO_SERVER_ENV} is unset, {} does not exist, and it is not on PATH)",
            venv.display()
        ))
    })
}

/// A port that was free a moment ago (bind `127.0.0.1:0`, read it, release it).
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Sends a body-less HTTP/1.1 request and returns the start of the answer (at most 4 KiB).
async fn http_request(port: u16, method: &str, path: &str, limit: Duration) -> io::Result<Vec<u8>> {
    let exchange = async {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = vec![0_u8; 4096];
        let mut filled = 0;
        while filled < 12 {
            let n = stream.read(&mut head[filled..]).await?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        head.truncate(filled);
        Ok(head)
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no HTTP answer in time"))?
}

/// The last 20 lines of `log`.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"#!/bin/sh\n").unwrap();
    }

    #[test]
    fn locate_order_and_errors() {
        let root = std::env::temp_dir().join(format!("devkit-moto-locate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let workspace = root.join("ws");
        let bin = root.join("bin");
        let explicit = root.join("custom").join("moto");
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let path_var = Some(std::env::join_paths([root.join("empty"), bin.clone()]).unwrap());

        // Nothing anywhere: NotFound with the install hint.
        let err = locate(None, &workspace, path_var.clone()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().contains("pip install 'moto[server]'"),
            "{err}"
        );
        assert!(locate(None, &workspace, None).is_err());

        // On PATH.
        touch(&bin.join(EXECUTABLE));
        assert_eq!(
            locate(None, &workspace, path_var.clone()).unwrap(),
            bin.join(EXECUTABLE)
        );
        // The workspace's .venv-moto wins over PATH.
        let venv = workspace.join(".venv-moto/bin").join(EXECUTABLE);
        touch(&venv);
        assert_eq!(locate(None, &workspace, path_var.clone()).unwrap(), venv);
        // MOTO_SERVER wins over both; an empty value counts as unset.
        touch(&explicit);
        assert_eq!(
            locate(Some(explicit.clone().into()), &workspace, path_var.clone()).unwrap(),
            explicit
        );
        assert_eq!(
            locate(Some(OsString::new()), &workspace, path_var.clone()).unwrap(),
            venv
        );
        // A bare name is looked up on PATH; a missing path is an error, not a fallback.
        assert_eq!(
            locate(Some(EXECUTABLE.into()), &workspace, path_var.clone()).unwrap(),
            bin.join(EXECUTABLE)
        );
        let err = locate(Some(root.join("nope").into()), &workspace, path_var.clone()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("MOTO_SERVER="), "{err}");
        assert!(err.to_string().contains("pip install"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn tail_keeps_last_lines() {
        let log: String = (0..30).map(|i| format!("line {i}\n")).collect();
        let t = tail(&log);
        assert!(t.starts_with("line 10\n"));
        assert!(t.ends_with("line 29"));
        assert_eq!(tail(""), "");
    }
}
