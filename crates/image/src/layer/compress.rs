//! Detecting and undoing a layer blob's compression.

use std::io::{self, BufRead, BufReader, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// Skippable zstd frames have magics 0x184D2A50..=0x184D2A5F (little endian on disk).
const ZSTD_SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const ZSTD_SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// Input is read in chunks of this size: large enough that syscalls don't dominate.
const READ_BUF: usize = 128 * 1024;

/// A layer blob's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
}

impl Compression {
    /// Detects the compression from a stream's first bytes (at least 4 wanted).
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) || is_skippable_frame(head) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

fn is_skippable_frame(head: &[u8]) -> bool {
    head.len() >= 4
        && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) & ZSTD_SKIPPABLE_MASK
            == ZSTD_SKIPPABLE_MAGIC
}

/// Wraps `reader` in the decoder its first bytes call for, returning the detected
/// compression and the uncompressed stream.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut reader = BufReader::with_capacity(READ_BUF, reader);
    // fill_buf may legally return fewer bytes than the magic; collect up to 4 without
    // consuming them by peeking into a small side buffer instead.
    let mut head = Vec::with_capacity(4);
    while head.len() < 4 {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let take = (4 - head.len()).min(buf.len());
        head.extend_from_slice(&buf[..take]);
        reader.consume(take);
    }
    let compression = Compression::detect(&head);
    let chained = BufReader::with_capacity(READ_BUF, io::Cursor::new(head).chain(reader));
    let out: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(chained),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(chained)),
        Compression::Zstd => Box::new(ZstdReader::new(chained)),
    };
    Ok((compression, out))
}

/// A streaming zstd decoder over any number of concatenated frames (zstd:chunked and
/// `zstd -c a b` produce several), skipping skippable frames. Pure Rust (`ruzstd`), so
/// no C toolchain is needed; it is slower than libzstd but layer apply is dominated by
/// file creation.
pub struct ZstdReader<R: BufRead> {
    source: R,
    decoder: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdReader<R> {
    /// A decoder reading compressed frames from `source`.
    pub fn new(source: R) -> Self {
        ZstdReader {
            source,
            decoder: FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Starts the next frame; false at the end of the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.decoder.reset(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped =
                        io::copy(&mut (&mut self.source).take(length.into()), &mut io::sink())?;
                    if skipped != u64::from(length) {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "zstd: truncated skippable frame",
                        ));
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}

impl<R: BufRead> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
            if self.decoder.can_collect() > 0 {
                return self.decoder.read(buf);
            }
            // This frame is done and drained: go on with the next one, if any.
            self.in_frame = false;
        }
    }
}
