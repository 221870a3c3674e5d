//! Links the `berth-shim` binary as a position-dependent executable.
//!
//! Measured reason: as a PIE, the dynamic loader relocates the ~250 KiB of
//! `.data.rel.ro` (vtables, string tables, panic locations, mostly of the runtime's
//! container-creation code) at start, which turns every page of it into a private
//! anonymous copy that stays resident for the container's whole life. Linked without
//! PIE those addresses are fixed at link time, the pages stay clean file pages, and only
//! the ones the event loop reads are resident (and shared between shims). The cost is a
//! fixed load address for the shim's own image; its heap, stack and libraries are still
//! randomized.
fn main() {
    println!("cargo:rustc-link-arg-bin=berth-shim=-no-pie");
}
