//! berth-shim: the per-container monitor, and its client side.
//!
//! One shim runs per container. It creates the container (so the container's init is its
//! child: it is a child subreaper), owns the container's stdio, writes the output through
//! the log driver, serves attach clients, reaps the init and records its exit status in
//! `<id>.exit`. It outlives berthd, which reconnects to its control socket after a
//! restart (live restore).
//!
//! - [`proto`]: the control protocol (one JSON request line, one JSON response line).
//! - [`client`]: a blocking client and [`client::spawn`], for berthd and tests.
//! - [`frame`]: Docker's multiplexed stream framing used by attach.
//! - [`server`]: the shim itself, run by the `berth-shim` binary.

pub mod client;
pub mod error;
pub mod frame;
pub mod proto;
pub mod server;

pub use error::{Error, Result};
/// Phase marks (`BERTH_TRACE`), shared with the runtime so one trace holds berthd's,
/// the shim's and the container chain's marks.
pub use runtime::trace;
