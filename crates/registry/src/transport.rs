//! HTTP/1.1 over TCP or rustls with a small connection pool, and redirects followed
//! (bounded, loops detected, `Authorization` dropped when the host changes).

use std::collections::{HashMap, HashSet};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, HOST, LOCATION, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::{Error, Result};
use crate::tls::server_name;

/// The request body type.
pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;

/// A request body: replayable (empty, bytes) or one-shot (a stream).
pub(crate) enum ReqBody {
    Empty,
    Bytes(Bytes),
    Stream(Body, Option<u64>),
    /// A stream already sent: it cannot be sent again.
    Spent,
}

impl ReqBody {
    pub fn replayable(&self) -> bool {
        !matches!(self, ReqBody::Stream(..) | ReqBody::Spent)
    }

    /// A body for one attempt; a stream is taken (later attempts get nothing).
    fn take(&mut self) -> (Body, Option<u64>) {
        match self {
            ReqBody::Empty | ReqBody::Spent => {
                (Empty::new().map_err(|n| match n {}).boxed_unsync(), Some(0))
            }
            ReqBody::Bytes(b) => {
                let len = b.len() as u64;
                (
                    Full::new(b.clone()).map_err(|n| match n {}).boxed_unsync(),
                    Some(len),
                )
            }
            ReqBody::Stream(..) => {
                let old = std::mem::replace(self, ReqBody::Spent);
                match old {
                    ReqBody::Stream(b, len) => (b, len),
                    _ => (Empty::new().map_err(|n| match n {}).boxed_unsync(), Some(0)),
                }
            }
        }
    }
}

/// An absolute http(s) URL, split as the transport needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Url {
    pub https: bool,
    /// Host without brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url> {
        let bad = || Error::InvalidInput(format!("invalid URL {s:?}"));
        let uri: hyper::Uri = s.parse().map_err(|_| bad())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad()),
        };
        let host = uri.host().ok_or_else(bad)?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(bad());
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_string());
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        Ok(Url {
            https,
            host,
            port,
            path,
        })
    }

    /// `host[:port]` as for a `Host` header (default ports left out).
    pub fn authority(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if (self.https && self.port == 443) || (!self.https && self.port == 80) {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }

    /// `scheme://authority`.
    pub fn origin(&self) -> String {
        format!(
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.authority()
        )
    }

    /// This URL with another path (and query).
    pub fn with_path(&self, path: &str) -> Url {
        Url {
            path: if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            },
            ..self.clone()
        }
    }

    /// Resolves a `Location` header against this URL.
    pub fn join(&self, loc: &str) -> Result<Url> {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            return Url::parse(loc);
        }
        if let Some(rest) = loc.strip_prefix("//") {
            let scheme = if self.https { "https" } else { "http" };
            return Url::parse(&format!("{scheme}://{rest}"));
        }
        if loc.starts_with('/') {
            return Ok(self.with_path(loc));
        }
        let base = self.path.split('?').next().unwrap_or("/");
        let dir = &base[..base.rfind('/').map(|i| i + 1).unwrap_or(0)];
        Ok(self.with_path(&format!("{dir}{loc}")))
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)
    }
}

/// TCP or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Who a connection is for: origin plus the TLS config in force (by identity).
#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    origin: String,
    tls: usize,
}

const POOL_MAX_PER_KEY: usize = 32;

/// How a request is sent: the registry (for messages) and its TLS config.
#[derive(Clone)]
pub(crate) struct Target {
    pub registry: String,
    pub tls: Arc<ClientConfig>,
    /// Whether TLS failures should be reported as "not trusted" (secure registries).
    pub secure: bool,
}

pub(crate) struct Transport {
    pool: Mutex<HashMap<PoolKey, Vec<SendRequest<Body>>>>,
    connect_timeout: Duration,
    response_timeout: Duration,
    max_redirects: usize,
    user_agent: HeaderValue,
    certs_dir: String,
}

/// A failed attempt: whether it may be retried on a fresh connection.
struct Attempt {
    error: Error,
    reused: bool,
}

impl Transport {
    pub fn new(
        connect_timeout: Duration,
        response_timeout: Duration,
        max_redirects: usize,
        user_agent: &str,
        certs_dir: String,
    ) -> Transport {
        Transport {
            pool: Mutex::new(HashMap::new()),
            connect_timeout,
            response_timeout,
            max_redirects,
            user_agent: HeaderValue::from_str(user_agent)
                .unwrap_or(HeaderValue::from_static("berth")),
            certs_dir,
        }
    }

    fn checkout(&self, key: &PoolKey) -> Option<SendRequest<Body>> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.get_mut(key)?;
        list.retain(|s| !s.is_closed());
        let idx = list.iter().position(|s| s.is_ready())?;
        Some(list.swap_remove(idx))
    }

    fn checkin(&self, key: PoolKey, sender: SendRequest<Body>) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.entry(key).or_default();
        list.retain(|s| !s.is_closed());
        if list.len() < POOL_MAX_PER_KEY {
            list.push(sender);
        }
    }

    async fn connect(&self, url: &Url, target: &Target) -> Result<SendRequest<Body>> {
        let registry = target.registry.clone();
        let timeout = self.connect_timeout;
        let timed_out = || Error::Timeout {
            registry: registry.clone(),
            seconds: timeout.as_secs(),
        };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((url.host.as_str(), url.port)))
            .await
            .map_err(|_| timed_out())?
            .map_err(|source| Error::Connect {
                registry: if registry == url.authority() {
                    registry.clone()
                } else {
                    format!("{registry} (via {})", url.authority())
                },
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let stream = if url.https {
            let connector = tokio_rustls::TlsConnector::from(target.tls.clone());
            let name = server_name(&url.host)?;
            let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| {
                    if target.secure {
                        Error::Tls {
                            registry: registry.clone(),
                            message: tls_message(&e),
                            certs_dir: self.certs_dir.clone(),
                        }
                    } else {
                        Error::Transport {
                            registry: registry.clone(),
                            message: format!(
                                "TLS handshake with {}: {}",
                                url.authority(),
                                tls_message(&e)
                            ),
                        }
                    }
                })?;
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Plain(tcp)
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::Transport {
                registry: registry.clone(),
                message: format!("HTTP handshake: {e}"),
            })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: &mut ReqBody,
        target: &Target,
    ) -> std::result::Result<Response<Incoming>, Attempt> {
        let key = PoolKey {
            origin: url.origin(),
            tls: Arc::as_ptr(&target.tls) as usize,
        };
        let (mut sender, reused) = match self.checkout(&key) {
            Some(s) => (s, true),
            None => (
                self.connect(url, target).await.map_err(|error| Attempt {
                    error,
                    reused: false,
                })?,
                false,
            ),
        };
        let (b, len) = body.take();
        let mut req = Request::builder()
            .method(method.clone())
            .uri(url.path.as_str());
        if let Some(h) = req.headers_mut() {
            h.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
            if let Ok(v) = HeaderValue::from_str(&url.authority()) {
                h.insert(HOST, v);
            }
            h.insert(USER_AGENT, self.user_agent.clone());
            if let Some(len) = len {
                if len > 0 || matches!(*method, Method::PUT | Method::POST | Method::PATCH) {
                    h.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
                }
            }
        }
        let req = req.body(b).map_err(|e| Attempt {
            error: Error::InvalidInput(format!("bad request to {url}: {e}")),
            reused: false,
        })?;
        let fut = sender.send_request(req);
        let registry = &target.registry;
        let resp = match tokio::time::timeout(self.response_timeout, fut).await {
            Err(_) => {
                return Err(Attempt {
                    error: Error::Timeout {
                        registry: registry.clone(),
                        seconds: self.response_timeout.as_secs(),
                    },
                    reused: false,
                })
            }
            Ok(Err(e)) => {
                return Err(Attempt {
                    error: Error::Transport {
                        registry: registry.clone(),
                        message: format!("{method} {url}: {}", hyper_message(&e)),
                    },
                    reused,
                })
            }
            Ok(Ok(r)) => r,
        };
        self.checkin(key, sender);
        Ok(resp)
    }

    /// Sends a request; retries once on a fresh connection when a pooled one turned out
    /// to be closed. GET and HEAD follow redirects.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        mut headers: HeaderMap,
        body: &mut ReqBody,
        target: &Target,
    ) -> Result<(Response<Incoming>, Url)> {
        let follow = method == Method::GET || method == Method::HEAD;
        let first = url.clone();
        let mut url = url.clone();
        let mut seen: HashSet<String> = HashSet::new();
        seen.insert(url.to_string());
        let mut hops = 0;
        loop {
            let resp = match self.send_once(&method, &url, &headers, body, target).await {
                Ok(r) => r,
                Err(a) if a.reused && body.replayable() => {
                    // A pooled connection the server had closed: one more try.
                    self.send_once(&method, &url, &headers, body, target)
                        .await
                        .map_err(|a| a.error)?
                }
                Err(a) => return Err(a.error),
            };
            let status = resp.status();
            if !follow
                || !matches!(
                    status,
                    StatusCode::MOVED_PERMANENTLY
                        | StatusCode::FOUND
                        | StatusCode::SEE_OTHER
                        | StatusCode::TEMPORARY_REDIRECT
                        | StatusCode::PERMANENT_REDIRECT
                )
            {
                return Ok((resp, url));
            }
            let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) else {
                return Ok((resp, url));
            };
            let next = url.join(loc)?;
            drop(resp);
            hops += 1;
            if !seen.insert(next.to_string()) {
                return Err(Error::RedirectLoop {
                    url: next.to_string(),
                });
            }
            if hops > self.max_redirects {
                return Err(Error::TooManyRedirects {
                    url: first.to_string(),
                    limit: self.max_redirects,
                });
            }
            if next.origin() != url.origin() {
                // Credentials for the registry are not for blob storage elsewhere.
                headers.remove(AUTHORIZATION);
            }
            url = next;
        }
    }
}

fn tls_message(e: &io::Error) -> String {
    match e.get_ref() {
        Some(inner) => inner.to_string(),
        None => e.to_string(),
    }
}

fn hyper_message(e: &hyper::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("https://reg.example:5000/v2/x/blobs/uploads/?a=b").unwrap();
        assert!(u.https);
        assert_eq!(u.authority(), "reg.example:5000");
        assert_eq!(u.path, "/v2/x/blobs/uploads/?a=b");
        assert_eq!(
            u.join("/v2/y").unwrap().to_string(),
            "https://reg.example:5000/v2/y"
        );
        assert_eq!(u.join("z?q=1").unwrap().path, "/v2/x/blobs/uploads/z?q=1");
        assert_eq!(
            u.join("//cdn.example/b").unwrap().to_string(),
            "https://cdn.example/b"
        );
        assert_eq!(
            u.join("http://127.0.0.1:9/x").unwrap().origin(),
            "http://127.0.0.1:9"
        );
        let v6 = Url::parse("http://[::1]:5000").unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.authority(), "[::1]:5000");
        assert_eq!(v6.path, "/");
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("nonsense").is_err());
        assert_eq!(Url::parse("https://h:443/").unwrap().authority(), "h");
    }
}
