//! Against a real registry: Debian's `docker-registry` (distribution 2.8), started per
//! test on 127.0.0.1 with its own storage: plain HTTP on loopback, TLS with a CA made
//! here, and htpasswd basic auth behind TLS.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use image::digest::Hasher;
use image::{Digest, ImageRef};
use registry::manifest::{self, Descriptor, ImageIndex, ImageManifest, Platform};
use registry::{BlobPush, Client, Credentials, Error, RegistryConfig};
use tokio::io::AsyncReadExt;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running `docker-registry`; killed and its directory removed on drop.
struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Opts {
    tls: Option<(PathBuf, PathBuf)>,
    htpasswd: Option<PathBuf>,
}

fn ensure_registry_bin() {
    if !Path::new(REGISTRY_BIN).exists() {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "docker-registry"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    assert!(
        Path::new(REGISTRY_BIN).exists(),
        "{REGISTRY_BIN} missing: run scripts/deps.sh (apt-get install docker-registry)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    fn start(opts: Opts) -> Registry {
        ensure_registry_bin();
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = free_port();
            let storage = dir.path().join("storage");
            std::fs::create_dir_all(&storage).unwrap();
            let mut yaml = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            );
            if let Some((cert, key)) = &opts.tls {
                yaml.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ));
            }
            if let Some(h) = &opts.htpasswd {
                yaml.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    h.display()
                ));
            }
            let cfg = dir.path().join("config.yml");
            std::fs::write(&cfg, yaml).unwrap();
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry {
                        child,
                        _dir: dir,
                        port,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken meanwhile, most likely: try another
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn image(&self, repo: &str, tag: &str) -> ImageRef {
        ImageRef::parse(&format!("{}/{repo}:{tag}", self.host())).unwrap()
    }
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
    let reg = Registry::start(Opts::default());
    // Loopback is insecure by default, as in Docker: https is tried, then plain http.
    let client = Client::new(RegistryConfig::default()).unwrap();
    let image = reg.image("berth/app", "v1");
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
        .repository(&reg.image("berth/other", "x"), Credentials::Anonymous)
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
    let multi = reg.image("berth/app", "multi");
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
            &reg.image("berth/app", "nope"),
            Credentials::Anonymous,
            &Platform::host(),
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("manifest unknown"), "{e}");
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            dir.path().join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        Pki { dir }
    }

    fn tls(&self) -> Option<(PathBuf, PathBuf)> {
        Some((
            self.dir.path().join("server.crt"),
            self.dir.path().join("server.key"),
        ))
    }

    /// A certs.d with `<host>/ca.crt`.
    fn certs_d(&self, host: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(host)).unwrap();
        std::fs::copy(
            self.dir.path().join("ca.crt"),
            d.path().join(host).join("ca.crt"),
        )
        .unwrap();
        d
    }
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
    let reg = Registry::start(Opts {
        tls: pki.tls(),
        ..Default::default()
    });
    let image = reg.image("berth/tls", "v1");

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
    let certs = pki.certs_d(&reg.host());
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
    let http_reg = Registry::start(Opts::default());
    let e = client
        .resolve(
            &http_reg.image("x/y", "z"),
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
    let htpasswd = pki.dir.path().join("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-Bbn", "alice", "s3cret"])
        .output()
        .expect("htpasswd (apache2-utils)");
    assert!(out.status.success());
    std::fs::write(&htpasswd, &out.stdout).unwrap();
    let reg = Registry::start(Opts {
        tls: pki.tls(),
        htpasswd: Some(htpasswd),
    });
    let certs = pki.certs_d(&reg.host());
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
    let image = reg.image("alice/app", "v1");
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
            &reg.image("alice/app", "v2"),
            Credentials::basic("alice", "nope"),
        )
        .for_push();
    let e = wrong
        .push_blob_bytes(Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(e.is_auth(), "{e}");
}
