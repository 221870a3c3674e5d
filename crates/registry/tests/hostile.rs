//! The registry client against the hostile registry of `e2e::hostile` (shared with the
//! daemon-level tests): blobs and manifests that lie, redirect loops, auth nobody can
//! give, and a bearer-token registry to check the token flow, its cache, and redirects
//! to another host.

use bytes::Bytes;
use e2e::hostile::Hostile;
use image::{Digest, ImageRef};
use registry::manifest::Platform;
use registry::{Client, Credentials, Error, RegistryConfig};
use tokio::io::AsyncReadExt;

fn start() -> Hostile {
    Hostile::start()
}

fn digest(s: &Hostile) -> Digest {
    Digest::parse(s.blob().1).unwrap()
}

fn size(s: &Hostile) -> u64 {
    s.blob().0.len() as u64
}

fn client() -> Client {
    Client::new(RegistryConfig {
        blob_resume_attempts: 2,
        ..Default::default()
    })
    .unwrap()
}

fn image(state: &Hostile, repo: &str) -> ImageRef {
    ImageRef::parse(&format!("{}/{repo}:latest", state.host())).unwrap()
}

async fn fetch(state: &Hostile, repo: &str) -> Result<Bytes, Error> {
    client()
        .repository(&image(state, repo), Credentials::Anonymous)
        .fetch_blob_bytes(&digest(state), size(state))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registry_gives_clear_errors() {
    let s = start();

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
        .fetch_blob(&digest(&s), size(&s))
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
    let s = start();
    let c = client();
    let repo = c.repository(&image(&s, "tok"), Credentials::Anonymous);
    for _ in 0..3 {
        assert_eq!(
            repo.fetch_blob_bytes(&digest(&s), size(&s)).await.unwrap(),
            *s.blob().0
        );
    }
    assert_eq!(s.token_requests(), 1, "one token, cached");
    assert_eq!(s.storage_auth_seen(), 0, "no Authorization to another host");
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
