//! Keeping the shim's resident set small once the container is created.
//!
//! Creating a container runs a lot of code (spec parsing, the runtime's process chain)
//! that the event loop never needs again, and the kernel maps file pages 64 KiB at a
//! time around every fault ("fault-around"), so that code stays counted in the shim's
//! RSS for the container's whole life. Dropping the read-only, file-backed mappings
//! from our page tables costs nothing (the pages stay in the page cache, shared by all
//! shims) and the loop faults back only what it uses.

use std::io::BufRead;

/// Returns freed heap to the kernel and unmaps the pages of read-only file mappings
/// (code, read-only data) from the page tables. Only mappings without anonymous pages
/// are touched: a read-only mapping with anonymous (copy-on-write) pages, like the
/// relocated RELRO segment, would lose its contents.
pub fn trim() {
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    let Ok(f) = std::fs::File::open("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize, bool)> = None;
    let mut drop: Vec<(usize, usize)> = Vec::new();
    for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
        if let Some((range, rest)) = line.split_once(' ') {
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    let perms = rest.split(' ').next().unwrap_or("");
                    let path = rest.split_whitespace().nth(4).unwrap_or("");
                    let eligible = perms.len() == 4
                        && !perms.contains('w')
                        && perms.ends_with('p')
                        && path.starts_with('/');
                    current = Some((a, b, eligible));
                    continue;
                }
            }
        }
        if let Some(kb) = line.strip_prefix("Anonymous:") {
            if let Some((a, b, true)) = current {
                if kb.trim() == "0 kB" {
                    drop.push((a, b));
                }
            }
            current = None;
        }
    }
    for (a, b) in drop {
        // SAFETY: the range is a whole private, read-only, file-backed mapping without
        // anonymous pages: discarding its page-table entries loses nothing, the next
        // access reads the same bytes from the page cache.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
    }
}
