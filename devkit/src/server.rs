//! The accept loop shared by the loopback servers of this crate.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// A running accept loop: stop it with [`ServerTask::shutdown`]; dropping it also stops it.
#[derive(Debug)]
pub(crate) struct ServerTask {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerTask {
    /// Accepts connections on `listener` and runs `serve_conn` for each one on its own task.
    ///
    /// Must be called inside a Tokio runtime.
    pub(crate) fn spawn<F, Fut>(listener: TcpListener, serve_conn: F) -> io::Result<ServerTask>
    where
        F: Fn(TokioIo<TcpStream>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let addr = listener.local_addr()?;
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _peer)) => {
                            let _ = stream.set_nodelay(true);
                            conns.spawn(serve_conn(TokioIo::new(stream)));
                        }
                        Err(err) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(error = %err, "accept failed");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
            drop(listener);
            // Close every connection, including ones in the middle of a response.
            conns.shutdown().await;
        });
        Ok(ServerTask {
            addr,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// Serves an axum `router` (HTTP/1 and HTTP/2) on `listener`.
    ///
    /// Must be called inside a Tokio runtime.
    pub(crate) fn serve_router(
        listener: TcpListener,
        router: axum::Router,
    ) -> io::Result<ServerTask> {
        let builder = auto::Builder::new(TokioExecutor::new());
        let service = TowerToHyperService::new(router);
        ServerTask::spawn(listener, move |io| {
            let conn = builder.serve_connection(io, service.clone()).into_owned();
            async move {
                let _ = conn.await;
            }
        })
    }

    /// The address the listener is bound to.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes all connections and waits until that is done.
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
