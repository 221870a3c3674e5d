//! A hostile registry: an in-process hyper server on 127.0.0.1 (on its own runtime, so
//! sync and async tests can use it alike) that lies about blobs and manifests, loops
//! redirects, asks for auth nobody can give, refuses pushes, and cuts downloads; plus a
//! bearer-token flow and an honest repository that answers `Range` requests.
//!
//! Every repository serves the same small image (one uncompressed layer, [`Hostile::layer`],
//! and its config) and a 100 000-byte test blob ([`Hostile::blob`]); what goes wrong
//! depends on the repository:
//!
//! - `good`: everything honest, `Range` honoured.
//! - `bad`: blobs whose bytes do not hash to their digest (same length, last byte off).
//! - `trunc`: blobs that declare their full length and are cut halfway, every time.
//! - `short`: blobs with an honest, too short length; `long`: more bytes than declared.
//! - `cut`: honest with `Range`, except that while [`Hostile::set_cut`] holds a limit,
//!   layer downloads stop (connection cut) at that byte of the blob.
//! - `wrongmt`, `liar`, `schema1`: manifests with a wrong media type.
//! - `loop`: blobs redirect to themselves forever.
//! - `noauth`: 401 with no challenge; `weird`: a `Negotiate` challenge.
//! - `tok`: bearer tokens from `/token` (pull scope only), blobs redirected to another
//!   host name (`localhost`) that must not see the token.
//! - `ro`: bearer tokens that grant pull only; pushes are denied as Docker Hub does.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};

/// Docker's image manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// The message Docker shows for a push the registry refuses.
pub const DENIED: &str = "requested access to the resource is denied";

/// `sha256:<hex>` of `b`.
pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// A body that sends `data`, waits a moment (so it is flushed), then fails: the
/// connection is cut short.
struct CutBody(Option<Bytes>, Pin<Box<tokio::time::Sleep>>);

impl Body for CutBody {
    type Data = Bytes;
    type Error = io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(b) = self.0.take().filter(|b| !b.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        match self.1.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::other("cut")))),
        }
    }
}

type Resp = Response<http_body_util::combinators::BoxBody<Bytes, io::Error>>;

fn full(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Resp {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(
        http_body_util::Full::new(body.into())
            .map_err(|n| match n {})
            .boxed(),
    )
    .unwrap()
}

/// `len` bytes of `data` declared, `data` sent, then the connection cut.
fn cut(len: usize, data: Bytes) -> Resp {
    Response::builder()
        .header("content-length", len.to_string())
        .body(
            CutBody(
                Some(data),
                Box::pin(tokio::time::sleep(std::time::Duration::from_millis(50))),
            )
            .boxed(),
        )
        .unwrap()
}

struct State {
    port: u16,
    blob: Bytes,
    digest: String,
    layer: Bytes,
    layer_digest: String,
    config: Bytes,
    config_digest: String,
    manifest: String,
    token_requests: AtomicUsize,
    storage_auth_seen: AtomicUsize,
    /// Cut `cut` layer downloads at this byte (`u64::MAX`: do not).
    cut_at: AtomicU64,
    layer_bytes_served: AtomicU64,
    ranges: Mutex<Vec<String>>,
}

/// The offset of a `Range: bytes=N-` request.
fn range_start(req: &Request<Incoming>) -> Option<usize> {
    let v = req.headers().get("range")?.to_str().ok()?;
    v.strip_prefix("bytes=")?.split('-').next()?.parse().ok()
}

const REPOS_WITH_IMAGE: &[&str] = &["good", "bad", "trunc", "short", "long", "cut", "loop"];

fn handle(state: &State, req: &Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut parts = path.trim_start_matches("/v2/").splitn(3, '/');
    let (repo, kind, rest) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let denied = |status| {
        full(
            status,
            &[],
            format!(r#"{{"errors":[{{"code":"DENIED","message":"{DENIED}"}}]}}"#),
        )
    };
    match path.as_str() {
        "/v2/" => return full(200, &[], "{}"),
        "/token" => {
            state.token_requests.fetch_add(1, Ordering::SeqCst);
            let body = if query.contains("scope=repository%3Atok%3Apull")
                && !query.contains("push")
                && query.contains("service=hostile")
            {
                r#"{"token":"t0k3n","expires_in":300}"#
            } else if query.contains("scope=repository%3Aro%3A") {
                // Granted, but for pull only, whatever was asked.
                r#"{"token":"r0","expires_in":300}"#
            } else {
                return full(
                    401,
                    &[],
                    r#"{"errors":[{"code":"DENIED","message":"bad scope"}]}"#,
                );
            };
            return full(200, &[], body);
        }
        p if p.starts_with("/storage/") => {
            if !auth.is_empty() {
                state.storage_auth_seen.fetch_add(1, Ordering::SeqCst);
            }
            return full(200, &[], state.blob.clone());
        }
        _ => {}
    }
    let not_found = || {
        full(
            404,
            &[],
            r#"{"errors":[{"code":"NOT_FOUND","message":"nothing here"}]}"#,
        )
    };
    match repo {
        "noauth" => {
            return full(
                401,
                &[],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"go away"}]}"#,
            )
        }
        "weird" => return full(401, &[("www-authenticate", "Negotiate")], ""),
        "wrongmt" if kind == "manifests" => {
            return full(200, &[("content-type", "text/html")], "<html>hello</html>")
        }
        "liar" if kind == "manifests" => {
            return full(
                200,
                &[("content-type", DOCKER_MANIFEST)],
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
            )
        }
        "schema1" if kind == "manifests" => {
            return full(
                200,
                &[("content-type", DOCKER_SCHEMA1)],
                r#"{"schemaVersion":1,"fsLayers":[]}"#,
            )
        }
        "loop" if kind == "blobs" => {
            let to = if query.is_empty() {
                format!("{path}?again=1")
            } else {
                path.clone()
            };
            return full(302, &[("location", to.as_str())], "");
        }
        "tok" | "ro" => {
            let token = if repo == "tok" { "t0k3n" } else { "r0" };
            if auth != format!("Bearer {token}") {
                let ch = format!(
                    r#"Bearer realm="http://127.0.0.1:{}/token",service="hostile",scope="repository:{repo}:pull""#,
                    state.port
                );
                return full(401, &[("www-authenticate", ch.as_str())], "");
            }
            if repo == "tok" && kind == "blobs" && rest == state.digest {
                // Blob storage on "another host" (same server, other name).
                let to = format!("http://localhost:{}/storage/{}", state.port, state.digest);
                return full(307, &[("location", to.as_str())], "");
            }
            if repo == "ro" && (req.method() != hyper::Method::GET && req.method() != "HEAD") {
                let ch = format!(
                    r#"Bearer realm="http://127.0.0.1:{}/token",service="hostile",scope="repository:ro:pull,push",error="insufficient_scope""#,
                    state.port
                );
                let mut r = denied(401);
                r.headers_mut()
                    .insert("www-authenticate", ch.parse().unwrap());
                return r;
            }
            return full(
                404,
                &[],
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            );
        }
        _ => {}
    }
    if !REPOS_WITH_IMAGE.contains(&repo) && !matches!(repo, "wrongmt" | "liar" | "schema1") {
        return not_found();
    }
    if kind == "manifests" {
        return full(
            200,
            &[
                ("content-type", DOCKER_MANIFEST),
                (
                    "docker-content-digest",
                    sha256(state.manifest.as_bytes()).as_str(),
                ),
            ],
            state.manifest.clone(),
        );
    }
    if kind != "blobs" {
        return not_found();
    }
    let (data, is_layer) = if rest == state.digest {
        (state.blob.clone(), false)
    } else if rest == state.layer_digest {
        (state.layer.clone(), true)
    } else if rest == state.config_digest {
        return full(200, &[], state.config.clone());
    } else {
        return full(
            404,
            &[],
            r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
        );
    };
    let head = req.method() == hyper::Method::HEAD;
    let count = |n: usize| {
        if is_layer && !head {
            state
                .layer_bytes_served
                .fetch_add(n as u64, Ordering::SeqCst);
        }
    };
    match repo {
        "bad" => {
            // The last byte: a layer still unpacks, only the digest tells.
            let mut v = data.to_vec();
            *v.last_mut().unwrap() ^= 0xff;
            full(200, &[], v)
        }
        "trunc" => cut(data.len(), data.slice(..data.len() / 2)),
        "short" => full(200, &[], data.slice(..10)),
        "long" => {
            let mut v = data.to_vec();
            v.extend_from_slice(b"extra");
            full(200, &[], v)
        }
        _ => {
            let from = range_start(req).filter(|&f| f < data.len());
            if let Some(v) = req.headers().get("range").and_then(|v| v.to_str().ok()) {
                state.ranges.lock().unwrap().push(v.to_string());
            }
            let start = from.unwrap_or(0);
            let limit = state.cut_at.load(Ordering::SeqCst);
            if repo == "cut" && is_layer && limit != u64::MAX && !head {
                let stop = (limit as usize).clamp(start, data.len());
                count(stop - start);
                let mut r = cut(data.len() - start, data.slice(start..stop));
                if from.is_some() {
                    *r.status_mut() = hyper::StatusCode::PARTIAL_CONTENT;
                    let cr = format!("bytes {start}-{}/{}", data.len() - 1, data.len());
                    r.headers_mut().insert("content-range", cr.parse().unwrap());
                }
                return r;
            }
            count(data.len() - start);
            match from {
                Some(f) => {
                    let cr = format!("bytes {f}-{}/{}", data.len() - 1, data.len());
                    full(206, &[("content-range", cr.as_str())], data.slice(f..))
                }
                None => full(200, &[], data),
            }
        }
    }
}

/// A pseudo-random, incompressible `len` bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// An uncompressed layer tar holding `/hostile/data` (`size` bytes).
fn layer_tar(size: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, "hostile/", io::empty()).unwrap();
    let data = noise(size);
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, "hostile/data", &data[..]).unwrap();
    b.into_inner().unwrap()
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// The running hostile registry; stopped on drop.
pub struct Hostile {
    state: Arc<State>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Default for Hostile {
    fn default() -> Self {
        Hostile::start()
    }
}

impl Hostile {
    /// Starts the server on a free port of 127.0.0.1.
    pub fn start() -> Hostile {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Bound here, not with block_on: the caller may itself run in a runtime.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let blob = Bytes::from((0..100_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        let layer = Bytes::from(layer_tar(3 << 20));
        let layer_digest = sha256(&layer);
        let config = format!(
            r#"{{"architecture":"{}","os":"linux","config":{{"Cmd":["/hostile/data"]}},"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#,
            go_arch()
        );
        let config_digest = sha256(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","size":{},"digest":"{layer_digest}"}}]}}"#,
            config.len(),
            layer.len()
        );
        let state = Arc::new(State {
            port,
            digest: sha256(&blob),
            blob,
            layer,
            layer_digest,
            config: Bytes::from(config),
            config_digest,
            manifest,
            token_requests: AtomicUsize::new(0),
            storage_auth_seen: AtomicUsize::new(0),
            cut_at: AtomicU64::new(u64::MAX),
            layer_bytes_served: AtomicU64::new(0),
            ranges: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let r = handle(&st, &req);
                        async move { Ok::<_, Infallible>(r) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(sock), svc)
                        .await;
                });
            }
        });
        Hostile {
            state,
            rt: Some(rt),
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.state.port
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.state.port)
    }

    /// The 100 000-byte test blob and its digest.
    pub fn blob(&self) -> (&Bytes, &str) {
        (&self.state.blob, &self.state.digest)
    }

    /// The image's one layer (an uncompressed tar) and its digest (also its diff id).
    pub fn layer(&self) -> (&Bytes, &str) {
        (&self.state.layer, &self.state.layer_digest)
    }

    /// The image's config digest (its id).
    pub fn config_digest(&self) -> &str {
        &self.state.config_digest
    }

    /// Requests to `/token` so far.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Requests to the storage host that carried an `Authorization` header.
    pub fn storage_auth_seen(&self) -> usize {
        self.state.storage_auth_seen.load(Ordering::SeqCst)
    }

    /// Cuts `cut` layer downloads at byte `at` of the blob (`None`: serve them whole).
    pub fn set_cut(&self, at: Option<u64>) {
        self.state
            .cut_at
            .store(at.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Layer bytes sent so far by the honest repositories (`good`, `cut`).
    pub fn layer_bytes_served(&self) -> u64 {
        self.state.layer_bytes_served.load(Ordering::SeqCst)
    }

    /// `Range` headers received so far by the honest repositories.
    pub fn ranges_seen(&self) -> Vec<String> {
        self.state.ranges.lock().unwrap().clone()
    }
}
