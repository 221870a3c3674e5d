//! Docker's multiplexed stream framing (the `stdcopy` format) used on attach streams of
//! containers without a terminal: an 8-byte header (stream type, three zero bytes, the
//! payload length as big-endian u32) followed by the payload. berthd passes these frames
//! unchanged to Docker API clients.

use std::io::Read;

/// Stream type byte for stdin (never sent by the shim; part of the format).
pub const STDIN: u8 = 0;
/// Stream type byte for stdout.
pub const STDOUT: u8 = 1;
/// Stream type byte for stderr.
pub const STDERR: u8 = 2;

/// Size of a frame header.
pub const HEADER_LEN: usize = 8;

/// The header of a frame carrying `len` bytes of `stream`.
pub fn header(stream: u8, len: usize) -> [u8; HEADER_LEN] {
    let n = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// Appends one frame (header and payload) to `out`.
pub fn encode_into(out: &mut Vec<u8>, stream: u8, payload: &[u8]) {
    out.extend_from_slice(&header(stream, payload.len()));
    out.extend_from_slice(payload);
}

/// Reads one frame; `Ok(None)` at a clean end of stream (EOF before a header).
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((h[0], payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode_into(&mut buf, STDOUT, b"hello\n");
        encode_into(&mut buf, STDERR, b"");
        assert_eq!(&buf[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some((1, b"hello\n".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), Some((2, Vec::new())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }
}
