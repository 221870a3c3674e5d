//! A small blocking client for the Engine API: HTTP/1.1 over a unix socket with hyper's
//! client, driven by a current-thread tokio runtime. A CLI makes one request at a time,
//! so each request opens its own connection and the caller blocks on it; bodies stream
//! both ways (progress messages and tar archives are never held whole in memory).

use std::cell::OnceCell;
use std::io::{self, Read};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use api::version::{ApiVersion, CURRENT, MIN};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderMap;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// Where berthd listens unless told otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Chunk size for request bodies read from files or stdin.
const CHUNK: usize = 64 * 1024;

/// The daemon address in docker's order of precedence: the `-H/--host` flag, then
/// `BERTH_HOST`, then `DOCKER_HOST` (so scripts written for docker keep working), then
/// the default socket.
pub fn resolve_host(flag: Option<&str>) -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    flag.map(str::to_string)
        .or_else(|| env("BERTH_HOST"))
        .or_else(|| env("DOCKER_HOST"))
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

/// The socket path of a `unix://` host; anything else is refused for now.
pub fn socket_path(host: &str) -> Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(PathBuf::from(p)),
        _ => Err(Error::Host(host.to_string())),
    }
}

/// Percent-encodes a query string from pairs, as Go's `url.Values.Encode` does.
pub fn query(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        enc(k, &mut out);
        out.push('=');
        enc(v, &mut out);
    }
    out
}

/// Percent-encodes one path segment (an image or container name may hold `/` and `:`;
/// docker sends them as they are, and so do we, but not `?`, `#`, `%` or spaces).
pub fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'?' | b'#' | b'%' | b' ' | 0..=0x1f | 0x7f.. => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}

/// What a request carries.
pub enum RequestBody {
    /// Nothing.
    Empty,
    /// A JSON document.
    Json(Vec<u8>),
    /// A tar stream (load, import, cp), read from a file or stdin while it is sent.
    Tar(Box<dyn Read + Send>),
}

impl RequestBody {
    /// `json` encoded, or no body at all.
    pub fn json_opt(json: Option<&serde_json::Value>) -> Result<RequestBody> {
        Ok(match json {
            Some(j) => RequestBody::Json(serde_json::to_vec(j)?),
            None => RequestBody::Empty,
        })
    }
}

type ReqBody = BoxBody<Bytes, io::Error>;

/// A request body fed by a reader on its own thread: reading a file or a pipe blocks,
/// and the runtime's one thread must keep driving the connection meanwhile.
struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// Starts the reader thread; a read error is kept in `failed` so the caller reports it
/// rather than hyper's "error from user's body stream".
fn reader_body(mut reader: Box<dyn Read + Send>, failed: Arc<Mutex<Option<io::Error>>>) -> ReqBody {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    // The receiver is gone when the daemon stopped reading: stop too.
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let copy = io::Error::new(e.kind(), e.to_string());
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    let _ = tx.blocking_send(Err(copy));
                    return;
                }
            }
        }
    });
    ChannelBody { rx }.boxed()
}

/// The error of a non-2xx answer: its `{"message"}`, or its text.
/// The whole body of an answer.
async fn body_bytes(resp: hyper::Response<Incoming>) -> Result<Bytes> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .map_err(Error::Http)?
        .to_bytes())
}

fn daemon_error(status: u16, raw: &[u8]) -> Error {
    let message = serde_json::from_slice::<api::error::ErrorBody>(raw)
        .map(|b| b.message)
        .unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(raw).trim().to_string();
            if text.is_empty() {
                format!("{status}")
            } else {
                text
            }
        });
    Error::Daemon { status, message }
}

/// A hijacked connection: the raw stream of attach or exec start.
pub struct Hijacked {
    /// The headers of the daemon's answer (`Content-Type` tells a raw stream from a
    /// multiplexed one).
    pub headers: HeaderMap,
    /// The stream; use it inside [`Client::block_on`].
    pub io: TokioIo<hyper::upgrade::Upgraded>,
}

/// A connection to one daemon. Nothing is dialled until the first request; the API
/// version is negotiated once, on that request.
pub struct Client {
    rt: Runtime,
    host: String,
    socket: PathBuf,
    debug: bool,
    version: OnceCell<ApiVersion>,
}

impl Client {
    /// A client for `host` (`unix:///path`); fails only on an unsupported address.
    pub fn new(host: &str, debug: bool) -> Result<Client> {
        let socket = socket_path(host)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        Ok(Client {
            rt,
            host: host.to_string(),
            socket,
            debug,
            version: OnceCell::new(),
        })
    }

    /// The API version requests are made with: `BERTH_API_VERSION`/`DOCKER_API_VERSION`
    /// when set, else the lower of the daemon's (from `/_ping`'s `Api-Version` header)
    /// and ours.
    pub fn api_version(&self) -> Result<ApiVersion> {
        if let Some(v) = self.version.get() {
            return Ok(*v);
        }
        let pinned = ["BERTH_API_VERSION", "DOCKER_API_VERSION"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        let v = match pinned {
            Some(s) => s
                .parse::<ApiVersion>()
                .map_err(|_| Error::msg(format!("invalid API version {s:?}")))?,
            None => self.negotiate()?,
        };
        Ok(*self.version.get_or_init(|| v))
    }

    fn negotiate(&self) -> Result<ApiVersion> {
        let resp = self.send(Method::GET, "/_ping".to_string(), RequestBody::Empty, &[])?;
        let server = resp
            .headers()
            .get("Api-Version")
            .and_then(|h| h.to_str().ok())
            .and_then(|s| s.parse::<ApiVersion>().ok());
        // A daemon that does not say is assumed to speak the oldest version we do.
        Ok(server.map_or(MIN, |s| s.min(CURRENT)))
    }

    /// `GET path` and decode the JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.request(Method::GET, path, RequestBody::Empty)?.json()
    }

    /// `POST path` with an optional JSON body, decoding the JSON answer.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        self.request(Method::POST, path, RequestBody::json_opt(body)?)?
            .json()
    }

    /// `POST path` for endpoints that answer with no body (201/204).
    pub fn post_no_content(&self, path: &str) -> Result<()> {
        self.request(Method::POST, path, RequestBody::Empty)?
            .discard()
    }

    /// `DELETE path` and decode the JSON answer.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.request(Method::DELETE, path, RequestBody::Empty)?
            .json()
    }

    /// Any request under the negotiated `/v1.NN` prefix. A non-2xx answer becomes
    /// [`Error::Daemon`]; a 2xx answer is returned with its body unread, to be read as
    /// a stream ([`Response`] is [`Read`]) or decoded whole.
    pub fn request(&self, method: Method, path: &str, body: RequestBody) -> Result<Response<'_>> {
        self.request_with(method, path, body, &[])
    }

    /// [`Client::request`] with extra request headers (`X-Registry-Auth`).
    pub fn request_with(
        &self,
        method: Method,
        path: &str,
        body: RequestBody,
        headers: &[(&str, &str)],
    ) -> Result<Response<'_>> {
        let v = self.api_version()?;
        let resp = self.send(method, format!("/v{v}{path}"), body, headers)?;
        if resp.status < 300 {
            return Ok(resp);
        }
        let status = resp.status;
        let raw = resp.bytes()?;
        Err(daemon_error(status, &raw))
    }

    fn send(
        &self,
        method: Method,
        uri: String,
        body: RequestBody,
        headers: &[(&str, &str)],
    ) -> Result<Response<'_>> {
        let failed = Arc::new(Mutex::new(None));
        let mut req = self.build(method, uri, body, false, &failed)?;
        for (k, v) in headers {
            let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| Error::msg(format!("invalid header {k}: {e}")))?;
            let value = hyper::header::HeaderValue::from_str(v)
                .map_err(|e| Error::msg(format!("invalid header {k}: {e}")))?;
            req.headers_mut().insert(name, value);
        }
        let result = self.rt.block_on(self.exchange(req));
        // A failed read of the request body explains a broken exchange best.
        if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(Error::Io(e));
        }
        let resp = result?;
        let (parts, body) = resp.into_parts();
        Ok(Response {
            rt: &self.rt,
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            buf: Bytes::new(),
            done: false,
        })
    }

    fn build(
        &self,
        method: Method,
        uri: String,
        body: RequestBody,
        upgrade: bool,
        failed: &Arc<Mutex<Option<io::Error>>>,
    ) -> Result<Request<ReqBody>> {
        if self.debug {
            eprintln!("DEBU {method} {uri}");
        }
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            // What docker sends over unix sockets: a valid name no server resolves.
            .header("Host", "api.moby.localhost")
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        if upgrade {
            // docker's hijack: the daemon answers 101 and the connection becomes raw.
            builder = builder
                .header("Connection", "Upgrade")
                .header("Upgrade", "tcp");
        }
        let body: ReqBody = match body {
            RequestBody::Empty => Empty::new().map_err(|n| match n {}).boxed(),
            RequestBody::Json(b) => {
                builder = builder.header("Content-Type", "application/json");
                Full::new(Bytes::from(b)).map_err(|n| match n {}).boxed()
            }
            RequestBody::Tar(r) => {
                builder = builder.header("Content-Type", "application/x-tar");
                reader_body(r, failed.clone())
            }
        };
        builder
            .body(body)
            .map_err(|e| Error::msg(format!("invalid request: {e}")))
    }

    /// Dials, sends `req` and returns the answer with its body unread. The connection
    /// task runs while the caller drives this runtime: during this call and later
    /// while the body is read (or the upgraded stream is used).
    async fn exchange(&self, req: Request<ReqBody>) -> Result<hyper::Response<Incoming>> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.connect_error(e))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender.send_request(req).await?)
    }

    /// Runs a future on the client's runtime (streams of hijacked connections).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A request made from inside [`Client::block_on`] (resize while attached): the
    /// API version must have been negotiated already. Non-2xx answers become
    /// [`Error::Daemon`]; the body is read and dropped.
    pub async fn request_async(
        &self,
        method: Method,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<Bytes> {
        let v = self.version.get().copied().unwrap_or(MIN);
        let body = RequestBody::json_opt(json)?;
        let failed = Arc::new(Mutex::new(None));
        let req = self.build(method, format!("/v{v}{path}"), body, false, &failed)?;
        let resp = self.exchange(req).await?;
        let status = resp.status().as_u16();
        let raw = body_bytes(resp).await?;
        if status < 300 {
            return Ok(raw);
        }
        Err(daemon_error(status, &raw))
    }

    /// Hijacks a connection as docker's attach and exec start do: the request goes out
    /// with `Upgrade: tcp`, and after the daemon's 101 (or 200, from daemons that do
    /// not upgrade) the connection is a raw byte stream both ways.
    pub fn hijack(&self, path: &str, json: Option<&serde_json::Value>) -> Result<Hijacked> {
        let v = self.api_version()?;
        let body = RequestBody::json_opt(json)?;
        let failed = Arc::new(Mutex::new(None));
        let req = self.build(Method::POST, format!("/v{v}{path}"), body, true, &failed)?;
        self.rt.block_on(async {
            let resp = self.exchange(req).await?;
            let status = resp.status().as_u16();
            if status >= 300 {
                let raw = body_bytes(resp).await?;
                return Err(daemon_error(status, &raw));
            }
            let headers = resp.headers().clone();
            let upgraded = hyper::upgrade::on(resp).await?;
            Ok(Hijacked {
                headers,
                io: TokioIo::new(upgraded),
            })
        })
    }

    fn connect_error(&self, e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::PermissionDenied => Error::Permission {
                host: self.host.clone(),
                source: e,
            },
            _ => Error::Connect(self.host.clone()),
        }
    }
}

/// A response whose body is read as it arrives.
pub struct Response<'a> {
    rt: &'a Runtime,
    /// The HTTP status code.
    pub status: u16,
    headers: HeaderMap,
    body: Incoming,
    buf: Bytes,
    done: bool,
}

impl Response<'_> {
    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The whole body.
    pub fn bytes(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_to_end(&mut out)?;
        Ok(out)
    }

    /// The whole body decoded as JSON.
    pub fn json<T: DeserializeOwned>(self) -> Result<T> {
        Ok(serde_json::from_slice(&self.bytes()?)?)
    }

    /// Reads and drops the body, so the exchange completes.
    pub fn discard(mut self) -> Result<()> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(())
    }

    /// Reads newline-delimited JSON values (progress streams) one at a time.
    pub fn json_lines(self) -> JsonLines<Self> {
        JsonLines {
            reader: io::BufReader::new(self),
        }
    }
}

impl Read for Response<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rt.block_on(self.body.frame()) {
                None => self.done = true,
                Some(Err(e)) => return Err(io::Error::other(e)),
                // Trailers carry nothing the CLI uses.
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf = data;
                    }
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}

/// An iterator over newline-delimited JSON values; blank lines are skipped.
pub struct JsonLines<R: Read> {
    reader: io::BufReader<R>,
}

impl<R: Read> Iterator for JsonLines<R> {
    type Item = Result<serde_json::Value>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::io::BufRead;
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) if line.trim().is_empty() => continue,
                Ok(_) => return Some(serde_json::from_str(line.trim()).map_err(Error::from)),
                Err(e) => return Some(Err(Error::Io(e))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_resolution_and_parsing() {
        assert_eq!(resolve_host(Some("unix:///a.sock")), "unix:///a.sock");
        assert_eq!(
            socket_path("unix:///run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert!(matches!(
            socket_path("tcp://1.2.3.4:2375"),
            Err(Error::Host(_))
        ));
        assert!(matches!(socket_path("unix://"), Err(Error::Host(_))));
        assert!(matches!(socket_path("/run/x.sock"), Err(Error::Host(_))));
    }

    #[test]
    fn query_encoding() {
        assert_eq!(query(&[]), "");
        assert_eq!(
            query(&[("repo", "a/b"), ("tag", "v 1:x")]),
            "?repo=a%2Fb&tag=v+1%3Ax"
        );
        assert_eq!(path_segment("busybox:latest"), "busybox:latest");
        assert_eq!(path_segment("a b?"), "a%20b%3F");
    }

    #[test]
    fn json_lines_skip_blanks() {
        let data = b"{\"a\":1}\n\n{\"b\":2}\r\n".as_slice();
        let v: Vec<_> = JsonLines {
            reader: io::BufReader::new(data),
        }
        .map(|r| r.unwrap())
        .collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1]["b"], 2);
    }
}
