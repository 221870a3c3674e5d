//! A real registry for tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1 with its own storage, plain HTTP, TLS with a CA made here ([`Pki`]), or
//! htpasswd basic auth behind TLS. Killed and its directory removed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Scratch;

/// The registry binary Debian installs.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How to run a [`Registry`].
#[derive(Debug, Default, Clone)]
pub struct RegistryOpts {
    /// Serve TLS with this certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Require basic auth against this htpasswd file.
    pub htpasswd: Option<PathBuf>,
}

/// A running `docker-registry`.
pub struct Registry {
    child: Child,
    dir: Scratch,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Starts a registry (panics with a hint if the binary is missing).
    pub fn start(opts: RegistryOpts) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} missing: run scripts/deps.sh (apt-get install docker-registry)"
        );
        let dir = Scratch::new("registry");
        for _ in 0..5 {
            let port = free_port();
            let storage = dir.path("storage");
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
            let cfg = dir.path("config.yml");
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
                    return Registry { child, dir, port };
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

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's storage directory (to count blobs fetched, say).
    pub fn storage(&self) -> PathBuf {
        self.dir.path("storage")
    }
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI.
pub struct Pki {
    /// Holds `ca.crt`, `server.crt`, `server.key`.
    pub dir: Scratch,
}

impl Pki {
    /// Makes the CA and the server certificate.
    pub fn new() -> Pki {
        let dir = Scratch::new("pki");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir.0)
                .stdin(Stdio::null())
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
        ]);
        run(&ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&csr);
        std::fs::write(
            dir.path("ext.cnf"),
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

    /// The server certificate and key, for [`RegistryOpts::tls`].
    pub fn tls(&self) -> Option<(PathBuf, PathBuf)> {
        Some((self.dir.path("server.crt"), self.dir.path("server.key")))
    }

    /// Puts the CA into `certs_d/<host>/ca.crt`.
    pub fn install_ca(&self, certs_d: &Path, host: &str) {
        std::fs::create_dir_all(certs_d.join(host)).unwrap();
        std::fs::copy(self.dir.path("ca.crt"), certs_d.join(host).join("ca.crt")).unwrap();
    }

    /// An htpasswd file (bcrypt) with `user:password`, made with `htpasswd`.
    pub fn htpasswd(&self, user: &str, password: &str) -> PathBuf {
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd (apache2-utils)");
        assert!(out.status.success());
        let p = self.dir.path("htpasswd");
        std::fs::write(&p, &out.stdout).unwrap();
        p
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}
