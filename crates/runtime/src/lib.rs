//! berth's OCI runtime core: turns an OCI runtime-spec bundle (`config.json` and a root
//! filesystem) into an isolated process, and manages its lifecycle
//! (`creating → created → running → stopped`).
//!
//! The operations live in [`container`], one file per verb; the process chain that builds
//! the container (namespaces, rootfs, security) lives in [`process`].

pub mod capabilities;
pub mod cgroups;
pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod loopback;
pub mod namespaces;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod trace;
pub mod tty;

pub use error::{Error, Result};
