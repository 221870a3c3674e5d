//! A hostile registry: an in-process hyper server on 127.0.0.1 that lies about blobs
//! and manifests, loops redirects and asks for auth nobody can give; plus a bearer-token
//! registry to check the token flow, its cache, and redirects to another host.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use image::{Digest, ImageRef};
use registry::manifest::{self, Platform};
use registry::{Client, Credentials, Error, RegistryConfig};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

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
        if let Some(b) = self.0.take() {
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

struct State {
    port: u16,
    blob: Bytes,
    digest: Digest,
    token_requests: AtomicUsize,
    storage_auth_seen: AtomicUsize,
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let d = state.digest.to_string();
    let len = state.blob.len().to_string();
    let r = match path.as_str() {
        "/v2/" => full(200, &[], "{}"),
        // Bytes that do not hash to the digest (same length).
        p if p == format!("/v2/bad/blobs/{d}") => {
            let mut v = state.blob.to_vec();
            v[0] ^= 0xff;
            full(200, &[], v)
        }
        // Content-Length says all, the connection dies halfway; every time.
        p if p == format!("/v2/trunc/blobs/{d}") => Response::builder()
            .header("content-length", len.as_str())
            .body(
                CutBody(
                    Some(state.blob.slice(..state.blob.len() / 2)),
                    Box::pin(tokio::time::sleep(std::time::Duration::from_millis(50))),
                )
                .boxed(),
            )
            .unwrap(),
        // Honest length, too short.
        p if p == format!("/v2/short/blobs/{d}") => full(200, &[], state.blob.slice(..10)),
        // More bytes than declared.
        p if p == format!("/v2/long/blobs/{d}") => {
            let mut v = state.blob.to_vec();
            v.extend_from_slice(b"extra");
            full(200, &[], v)
        }
        "/v2/wrongmt/manifests/latest" => {
            full(200, &[("content-type", "text/html")], "<html>hello</html>")
        }
        "/v2/liar/manifests/latest" => full(
            200,
            &[("content-type", manifest::DOCKER_MANIFEST)],
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
        ),
        "/v2/schema1/manifests/latest" => full(
            200,
            &[("content-type", manifest::DOCKER_SCHEMA1)],
            r#"{"schemaVersion":1,"fsLayers":[]}"#,
        ),
        p if p.starts_with("/v2/loop/blobs/") => {
            let to = if query.is_empty() {
                format!("{p}?again=1")
            } else {
                p.to_string()
            };
            full(302, &[("location", to.as_str())], "")
        }
        p if p.starts_with("/v2/noauth/") => full(
            401,
            &[],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"go away"}]}"#,
        ),
        p if p.starts_with("/v2/weird/") => full(401, &[("www-authenticate", "Negotiate")], ""),
        // Bearer-protected repository, token from /token.
        "/token" => {
            state.token_requests.fetch_add(1, Ordering::SeqCst);
            if query.contains("scope=repository%3Atok%3Apull")
                && !query.contains("push")
                && query.contains("service=hostile")
            {
                full(200, &[], r#"{"token":"t0k3n","expires_in":300}"#)
            } else {
                full(
                    401,
                    &[],
                    r#"{"errors":[{"code":"DENIED","message":"bad scope"}]}"#,
                )
            }
        }
        p if p.starts_with("/v2/tok/") => {
            if auth != "Bearer t0k3n" {
                let ch = format!(
                    r#"Bearer realm="http://127.0.0.1:{}/token",service="hostile",scope="repository:tok:pull""#,
                    state.port
                );
                full(401, &[("www-authenticate", ch.as_str())], "")
            } else if p == format!("/v2/tok/blobs/{d}") {
                // Blob storage on "another host" (same server, other name).
                let to = format!("http://localhost:{}/storage/{d}", state.port);
                full(307, &[("location", to.as_str())], "")
            } else {
                full(
                    404,
                    &[],
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                )
            }
        }
        p if p.starts_with("/storage/") => {
            if !auth.is_empty() {
                state.storage_auth_seen.fetch_add(1, Ordering::SeqCst);
            }
            full(200, &[], state.blob.clone())
        }
        _ => full(
            404,
            &[],
            r#"{"errors":[{"code":"NOT_FOUND","message":"nothing here"}]}"#,
        ),
    };
    Ok(r)
}

async fn start() -> Arc<State> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let blob = Bytes::from((0..100_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let state = Arc::new(State {
        port,
        digest: Digest::sha256_of(&blob),
        blob,
        token_requests: AtomicUsize::new(0),
        storage_auth_seen: AtomicUsize::new(0),
    });
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let st = st.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    state
}

fn client() -> Client {
    Client::new(RegistryConfig {
        blob_resume_attempts: 2,
        ..Default::default()
    })
    .unwrap()
}

fn image(state: &State, repo: &str) -> ImageRef {
    ImageRef::parse(&format!("127.0.0.1:{}/{repo}:latest", state.port)).unwrap()
}

async fn fetch(state: &State, repo: &str) -> Result<Bytes, Error> {
    client()
        .repository(&image(state, repo), Credentials::Anonymous)
        .fetch_blob_bytes(&state.digest, state.blob.len() as u64)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registry_gives_clear_errors() {
    let s = start().await;

    let e = fetch(&s, "bad").await.unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains("digest mismatch"), "{e}");

    // Cut connections are resumed (blob_resume_attempts), then reported as truncated.
    let e = fetch(&s, "trunc").await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Truncated {
                received: 50_000,
                ..
            }
        ),
        "{e}"
    );
    let e = fetch(&s, "short").await.unwrap_err();
    assert!(matches!(e, Error::Truncated { received: 10, .. }), "{e}");
    let e = fetch(&s, "long").await.unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");

    // Through AsyncRead the same error comes back out of the io::Error.
    let mut r = client()
        .repository(&image(&s, "bad"), Credentials::Anonymous)
        .fetch_blob(&s.digest, s.blob.len() as u64)
        .await
        .unwrap();
    let mut sink = Vec::new();
    let ioe = r.read_to_end(&mut sink).await.unwrap_err();
    assert!(matches!(Error::from_io(ioe), Error::DigestMismatch { .. }));

    let c = client();
    for (repo, what) in [
        ("wrongmt", "text/html"),
        ("liar", "mediaType"),
        ("schema1", "schema 1"),
    ] {
        let e = c
            .resolve(&image(&s, repo), Credentials::Anonymous, &Platform::host())
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::UnexpectedMediaType { .. }),
            "{repo}: {e}"
        );
        assert!(e.to_string().contains(what), "{repo}: {e}");
    }

    let e = fetch(&s, "loop").await.unwrap_err();
    assert!(matches!(e, Error::RedirectLoop { .. }), "{e}");

    let e = fetch(&s, "noauth").await.unwrap_err();
    assert!(matches!(e, Error::NoUsableChallenge { .. }), "{e}");
    let e = fetch(&s, "weird").await.unwrap_err();
    assert!(matches!(e, Error::NoUsableChallenge { .. }), "{e}");
    assert!(e.to_string().contains("Negotiate"), "{e}");

    let e = c
        .resolve(
            &image(&s, "nothere"),
            Credentials::Anonymous,
            &Platform::host(),
        )
        .await
        .unwrap_err();
    assert!(
        e.is_not_found() && e.to_string().contains("nothing here"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_fetched_cached_and_not_leaked_to_storage() {
    let s = start().await;
    let c = client();
    let repo = c.repository(&image(&s, "tok"), Credentials::Anonymous);
    for _ in 0..3 {
        assert_eq!(
            repo.fetch_blob_bytes(&s.digest, s.blob.len() as u64)
                .await
                .unwrap(),
            s.blob
        );
    }
    assert_eq!(
        s.token_requests.load(Ordering::SeqCst),
        1,
        "one token, cached"
    );
    assert_eq!(
        s.storage_auth_seen.load(Ordering::SeqCst),
        0,
        "no Authorization to another host"
    );
    let e = repo.fetch_manifest("latest").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    // Push scope is not granted by this token server.
    let e = repo
        .clone()
        .for_push()
        .push_blob_bytes(Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(e.is_auth(), "{e}");
}
