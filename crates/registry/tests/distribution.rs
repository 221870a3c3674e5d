//! Against a real registry: Debian's `docker-registry` (distribution 2.8), started per
//! test on 127.0.0.1 with its own storage: plain HTTP on loopback, TLS with a CA made
//! here, and htpasswd basic auth behind TLS.

use std::path::Path;

use bytes::Bytes;
use e2e::registry::{Pki, Registry, RegistryOpts};
use image::digest::Hasher;
use image::{Digest, ImageRef};
use registry::manifest::{self, Descriptor, ImageIndex, ImageManifest, Platform};
use registry::{BlobPush, Client, Credentials, Error, RegistryConfig};
use tokio::io::AsyncReadExt;

/// `<registry>/<repo>:<tag>`.
fn image_of(reg: &Registry, repo: &str, tag: &str) -> ImageRef {
    ImageRef::parse(&format!("{}/{repo}:{tag}", reg.host())).unwrap()
}

/// A certs.d with `<host>/ca.crt`.
fn certs_d(pki: &Pki, host: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    pki.install_ca(d.path(), host);
    d
}

fn noise(seed: u8, len: usize) -> Bytes {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0xff) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Pushes a two-layer image to `image` and returns its manifest and layer contents.
async fn push_image(
    client: &Client,
    image: &ImageRef,
    creds: Credentials,
) -> (ImageManifest, Vec<Bytes>, Digest) {
    let repo = client.repository(image, creds).for_push();
    let layers = vec![noise(1, 300_000), noise(2, 70_001)];
    let mut descs = Vec::new();
    for l in &layers {
        let d = Descriptor::of(manifest::DOCKER_LAYER_GZIP, l);
        let r = repo
            .push_blob(&d.digest, d.size, std::io::Cursor::new(l.clone()), None)
            .await
            .unwrap();
        assert_eq!(r, BlobPush::Uploaded);
        descs.push(d);
    }
    let config = Bytes::from_static(
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let (cd, r) = repo.push_blob_bytes(config.clone()).await.unwrap();
    assert_eq!(r, BlobPush::Uploaded);
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(manifest::DOCKER_MANIFEST.into()),
        config: Descriptor {
            digest: cd,
            ..Descriptor::of(manifest::DOCKER_CONFIG, &config)
        },
        layers: descs,
        annotations: None,
    };
    let digest = repo
        .push_image_manifest(image.tag().unwrap(), &m)
        .await
        .unwrap();
    (m, layers, digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_loopback_push_pull_mount_tags_resume() {
    let reg = Registry::start(RegistryOpts::default());
    // Loopback is insecure by default, as in Docker: https is tried, then plain http.
    let client = Client::new(RegistryConfig::default()).unwrap();
    let image = image_of(&reg, "berth/app", "v1");
    let (m, layers, digest) = push_image(&client, &image, Credentials::Anonymous).await;

    // Present blobs are skipped; a blob of another repository is mounted.
    let repo = client.repository(&image, Credentials::Anonymous).for_push();
    let l0 = &m.layers[0];
    assert_eq!(
        repo.push_blob(
            &l0.digest,
            l0.size,
            std::io::Cursor::new(layers[0].clone()),
            None
        )
        .await
        .unwrap(),
        BlobPush::Exists
    );
    let other = client
        .repository(&image_of(&reg, "berth/other", "x"), Credentials::Anonymous)
        .for_push();
    assert_eq!(
        other
            .push_blob(
                &l0.digest,
                l0.size,
                std::io::Cursor::new(layers[0].clone()),
                Some("berth/app")
            )
            .await
            .unwrap(),
        BlobPush::Mounted
    );
    assert_eq!(other.blob_exists(&l0.digest).await.unwrap(), Some(l0.size));

    // A source that does not hash to its digest is not committed.
    let wrong = Descriptor::of(manifest::DOCKER_LAYER_GZIP, b"what it claims");
    let e = repo
        .push_blob(
            &wrong.digest,
            wrong.size,
            std::io::Cursor::new(b"something else".to_vec()),
            None,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("digest"), "{e}");
    assert_eq!(repo.blob_exists(&wrong.digest).await.unwrap(), None);

    // Chunked uploads (PATCH) too.
    let chunked = Client::new(RegistryConfig {
        upload_chunk_size: Some(64 * 1024),
        ..Default::default()
    })
    .unwrap();
    let big = noise(3, 200_000);
    let bd = Descriptor::of(manifest::DOCKER_LAYER_GZIP, &big);
    let crepo = chunked
        .repository(&image, Credentials::Anonymous)
        .for_push();
    assert_eq!(
        crepo
            .push_blob(&bd.digest, bd.size, std::io::Cursor::new(big.clone()), None)
            .await
            .unwrap(),
        BlobPush::Uploaded
    );
    assert_eq!(
        crepo.fetch_blob_bytes(&bd.digest, bd.size).await.unwrap(),
        big
    );

    // Tags, a second tag, pagination-safe listing.
    let repo2 = client.repository(&image, Credentials::Anonymous).for_push();
    let raw = repo2.fetch_manifest("v1").await.unwrap();
    assert_eq!(raw.digest, digest);
    assert_eq!(raw.media_type, manifest::DOCKER_MANIFEST);
    repo2
        .push_manifest("v2", &raw.media_type, raw.bytes.clone())
        .await
        .unwrap();
    let mut tags = repo2.tags().await.unwrap();
    tags.sort();
    assert_eq!(tags, vec!["v1", "v2"]);

    // Pull back: resolve, fetch, verify.
    let resolved = client
        .resolve(&image, Credentials::Anonymous, &Platform::host())
        .await
        .unwrap();
    assert_eq!(resolved.top.digest, digest);
    assert_eq!(resolved.manifest, m);
    let pull = client.repository(&image, Credentials::Anonymous);
    for (d, want) in m.layers.iter().zip(&layers) {
        let mut r = pull.fetch_blob(&d.digest, d.size).await.unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert_eq!(&got[..], &want[..]);
    }
    // By digest as well.
    let by_digest = image.with_digest(digest.clone());
    assert_eq!(
        client
            .resolve(&by_digest, Credentials::Anonymous, &Platform::host())
            .await
            .unwrap()
            .raw
            .digest,
        digest
    );

    // Resume: the first 100000 bytes are "on disk", the rest comes with Range.
    let d = &m.layers[0];
    let mut prefix = Hasher::sha256();
    prefix.update(&layers[0][..100_000]);
    let r = pull
        .fetch_blob_at(&d.digest, d.size, 100_000, prefix)
        .await
        .unwrap();
    assert_eq!(r.read_all().await.unwrap(), layers[0].slice(100_000..));
    // A wrong prefix is caught at the end.
    let mut bad = Hasher::sha256();
    bad.update(&[0u8; 100_000]);
    let r = pull
        .fetch_blob_at(&d.digest, d.size, 100_000, bad)
        .await
        .unwrap();
    assert!(matches!(
        r.read_all().await,
        Err(Error::DigestMismatch { .. })
    ));

    // The blocking reader, for sync code on a blocking thread.
    let r = pull
        .fetch_blob(&m.layers[1].digest, m.layers[1].size)
        .await
        .unwrap();
    let handle = tokio::runtime::Handle::current();
    let got = tokio::task::spawn_blocking(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut r.into_blocking(handle), &mut v).map(|_| v)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&got[..], &layers[1][..]);

    // An index with two platforms: the host's entry is chosen.
    let mut arm = m.clone();
    arm.annotations = Some([("arch".to_string(), "arm64".to_string())].into());
    let arm_bytes = Bytes::from(serde_json::to_vec(&arm).unwrap());
    let arm_digest = repo2
        .push_manifest(
            Digest::sha256_of(&arm_bytes).as_str(),
            manifest::DOCKER_MANIFEST,
            arm_bytes.clone(),
        )
        .await
        .unwrap();
    let mut e_amd = Descriptor::of(manifest::DOCKER_MANIFEST, &raw.bytes);
    e_amd.platform = Some("linux/amd64".parse().unwrap());
    let mut e_arm = Descriptor::of(manifest::DOCKER_MANIFEST, &arm_bytes);
    e_arm.platform = Some("linux/arm64/v8".parse().unwrap());
    let idx = ImageIndex {
        schema_version: 2,
        media_type: Some(manifest::OCI_INDEX.into()),
        manifests: vec![e_arm, e_amd],
        annotations: None,
    };
    let idx_bytes = Bytes::from(serde_json::to_vec(&idx).unwrap());
    let idx_digest = repo2
        .push_manifest("multi", manifest::OCI_INDEX, idx_bytes)
        .await
        .unwrap();
    let multi = image_of(&reg, "berth/app", "multi");
    let r = client
        .resolve(
            &multi,
            Credentials::Anonymous,
            &"linux/amd64".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.top.digest, idx_digest);
    assert_eq!(r.raw.digest, digest);
    assert!(r.index.is_some());
    let r = client
        .resolve(
            &multi,
            Credentials::Anonymous,
            &"linux/arm64".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.raw.digest, arm_digest);
    let e = client
        .resolve(
            &multi,
            Credentials::Anonymous,
            &"linux/s390x".parse().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NoMatchingPlatform { .. }), "{e}");

    // Unknown tag: 404 with the registry's message.
    let e = client
        .resolve(
            &image_of(&reg, "berth/app", "nope"),
            Credentials::Anonymous,
            &Platform::host(),
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("manifest unknown"), "{e}");
}

fn strict(certs_dir: &Path) -> RegistryConfig {
    RegistryConfig {
        certs_dir: certs_dir.to_path_buf(),
        // Docker always trusts loopback; turned off to see TLS verification work.
        loopback_insecure: false,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_needs_the_ca_in_certs_d() {
    let pki = Pki::new();
    let reg = Registry::start(RegistryOpts {
        tls: pki.tls(),
        ..Default::default()
    });
    let image = image_of(&reg, "berth/tls", "v1");

    // Not trusted: refused with a message naming the registry and the way out.
    let empty = tempfile::tempdir().unwrap();
    let client = Client::new(strict(empty.path())).unwrap();
    let e = client
        .resolve(&image, Credentials::Anonymous, &Platform::host())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&reg.host()) && msg.contains("ca.crt") && msg.contains("insecure-registries"),
        "{msg}"
    );

    // With certs.d/<host:port>/ca.crt: pushes and pulls.
    let certs = certs_d(&pki, &reg.host());
    let client = Client::new(strict(certs.path())).unwrap();
    let (m, layers, digest) = push_image(&client, &image, Credentials::Anonymous).await;
    let r = client
        .resolve(&image, Credentials::Anonymous, &Platform::host())
        .await
        .unwrap();
    assert_eq!(r.top.digest, digest);
    let repo = client.repository(&image, Credentials::Anonymous);
    assert_eq!(
        repo.fetch_blob_bytes(&m.layers[1].digest, m.layers[1].size)
            .await
            .unwrap(),
        layers[1]
    );

    // A plain-HTTP client of a secure registry is refused: no fallback to http.
    let http_reg = Registry::start(RegistryOpts::default());
    let e = client
        .resolve(
            &image_of(&http_reg, "x/y", "z"),
            Credentials::Anonymous,
            &Platform::host(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e}");

    // Listed in insecure-registries: accepted without the CA (unverified https).
    let client = Client::new(RegistryConfig {
        insecure_registries: vec![reg.host()],
        ..strict(empty.path())
    })
    .unwrap();
    let r = client
        .resolve(&image, Credentials::Anonymous, &Platform::host())
        .await
        .unwrap();
    assert_eq!(r.top.digest, digest);
    // Or as a CIDR.
    let client = Client::new(RegistryConfig {
        insecure_registries: vec!["127.0.0.0/24".into()],
        ..strict(empty.path())
    })
    .unwrap();
    assert!(client
        .resolve(&image, Credentials::Anonymous, &Platform::host())
        .await
        .is_ok());
    // And loopback, by default, as Docker.
    let client = Client::new(RegistryConfig {
        certs_dir: empty.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    assert!(client
        .resolve(&image, Credentials::Anonymous, &Platform::host())
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_basic_auth_behind_tls() {
    let pki = Pki::new();
    let htpasswd = pki.htpasswd("alice", "s3cret");
    let reg = Registry::start(RegistryOpts {
        tls: pki.tls(),
        htpasswd: Some(htpasswd),
    });
    let certs = certs_d(&pki, &reg.host());
    let client = Client::new(strict(certs.path())).unwrap();
    let alice = Credentials::basic("alice", "s3cret");

    // login: right password accepted, wrong one and anonymous refused.
    client.login(&reg.host(), &alice).await.unwrap();
    client
        .login(&format!("https://{}/", reg.host()), &alice)
        .await
        .unwrap();
    let e = client
        .login(&reg.host(), &Credentials::basic("alice", "wrong"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    let e = client
        .login(&reg.host(), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert!(e.is_auth(), "{e}");

    // push and pull with the credentials.
    let image = image_of(&reg, "alice/app", "v1");
    let (m, layers, digest) = push_image(&client, &image, alice.clone()).await;
    let r = client
        .resolve(&image, alice.clone(), &Platform::host())
        .await
        .unwrap();
    assert_eq!(r.top.digest, digest);
    let repo = client.repository(&image, alice.clone());
    assert_eq!(
        repo.fetch_blob_bytes(&m.layers[0].digest, m.layers[0].size)
            .await
            .unwrap(),
        layers[0]
    );
    assert_eq!(repo.tags().await.unwrap(), vec!["v1"]);

    // Without or with wrong credentials: refused (a fresh client knows no challenge yet).
    let fresh = Client::new(strict(certs.path())).unwrap();
    let e = fresh
        .resolve(&image, Credentials::Anonymous, &Platform::host())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    let e = fresh
        .resolve(
            &image,
            Credentials::basic("alice", "nope"),
            &Platform::host(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    let wrong = client
        .repository(
            &image_of(&reg, "alice/app", "v2"),
            Credentials::basic("alice", "nope"),
        )
        .for_push();
    let e = wrong
        .push_blob_bytes(Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(e.is_auth(), "{e}");
}
