//! Links `berth-init` statically and without PIE.
//!
//! The binary is bind-mounted into arbitrary container images (busybox has no libc, a
//! distroless image no loader), so it must not need a dynamic loader or shared
//! libraries. `-no-pie` because a static PIE needs `-static-pie` support in the C
//! toolchain; a fixed load address costs nothing for a process this small.
//!
//! `-static` alone is not enough: rustc (without `+crt-static`, which a build script
//! cannot set) asks for its system libraries after `-Bdynamic`, so the linker would
//! still take `libc.so`. A linker searches every `-L` directory for `libX.so` then
//! `libX.a` before moving to the next, so a directory listed first that holds only the
//! static archives (and a `libgcc_s` that names the static libgcc) makes those win.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The system libraries rustc links std against on linux-gnu.
const LIBS: [&str; 6] = ["c", "m", "rt", "pthread", "dl", "util"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let dir = out.join("static-libs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the static-libs directory");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    for l in LIBS {
        let name = format!("lib{l}.a");
        let found = Command::new(&cc)
            .arg(format!("-print-file-name={name}"))
            .output()
            .ok()
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.is_absolute() && p.exists());
        let dst = dir.join(&name);
        match found {
            Some(src) => std::os::unix::fs::symlink(&src, &dst).expect("linking a static library"),
            // glibc ≥ 2.34 folded libdl, librt, libpthread and libutil into libc; an empty
            // archive satisfies a `-l` for one that is not shipped.
            None => std::fs::write(&dst, "!<arch>\n").expect("writing an empty archive"),
        }
    }
    // libgcc_s is the unwinder; its static counterpart is libgcc_eh (plus libgcc).
    write(&dir.join("libgcc_s.a"), "INPUT(-lgcc_eh -lgcc)\n");
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rustc-link-arg-bins=-no-pie");
}

fn write(p: &Path, s: &str) {
    std::fs::write(p, s).expect("writing the libgcc_s script");
}
