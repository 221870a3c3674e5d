//! `berth-shim`: the per-container monitor. See the `shim` library for the protocol and
//! `shim::server` for start-up and the exit rule.

fn main() {
    // Before anything else: the shim forks container processes, which could otherwise
    // reach and overwrite this binary through /proc/<pid>/exe.
    if let Err(e) = runtime::process::sealed::ensure() {
        println!("error {e}");
        std::process::exit(1);
    }
    std::process::exit(shim::server::main());
}
