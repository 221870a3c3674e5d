//! Accepting connections on the API sockets and serving HTTP/1.1 on each, with upgrades
//! enabled for the hijacked streams of attach and exec.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::signal::unix::{signal, SignalKind};

use crate::{router, socket};

/// Response bodies: whole (JSON) or streamed (logs, events, pull progress).
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A complete body.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// Serves the API until SIGINT or SIGTERM; removes the sockets on the way out.
pub async fn serve(engine: Arc<engine::Engine>) -> Result<(), Box<dyn std::error::Error>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for host in &engine.config.hosts {
        let path = socket::parse_host(host)?;
        let listener = socket::bind(&path, &engine.config.group)?;
        paths.push(path);
        let engine = engine.clone();
        tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        eprintln!("berthd: accept: {e}");
                        continue;
                    }
                };
                let engine = engine.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| router::handle(engine.clone(), req));
                    // A client that goes away mid-request is not the daemon's problem.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
