//! Turning raw output chunks into log messages the way Docker's copier does.

use std::time::SystemTime;

use crate::Stream;

/// Docker's copier buffer size: a line longer than this is logged in pieces of
/// exactly this many bytes, each marked partial.
pub const MAX_LINE: usize = 16 * 1024;

/// Marks a message as one piece of a line that was split (Docker's
/// `PartialLogMetaData`). Drivers such as journald and fluentd forward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialMeta {
    /// Identifies the split line; unique per splitter.
    pub id: u64,
    /// Position of this piece, from 1.
    pub ordinal: u32,
    /// True on the piece that ended with the newline.
    pub last: bool,
}

/// One log message: a line without its newline, or a piece of a long line.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Stream it came from.
    pub stream: Stream,
    /// The text, without the trailing newline.
    pub line: &'a [u8],
    /// When it was logged; all pieces of a split line share the first's time.
    pub time: SystemTime,
    /// Set when the line was split; `None` for an ordinary complete line.
    pub partial: Option<PartialMeta>,
}

impl Message<'_> {
    /// Whether Docker appends a newline to this message's text: complete lines
    /// and the last piece of a split line end in one, other pieces do not.
    pub fn ends_line(&self) -> bool {
        self.partial.is_none_or(|p| p.last)
    }
}

#[derive(Debug, Default)]
struct StreamState {
    buf: Vec<u8>,
    // (id, next ordinal, time of the first piece) while a split line is open.
    series: Option<(u64, u32, SystemTime)>,
}

/// Splits each stream's chunks on `\n`, buffering incomplete lines, and emits
/// a partial piece whenever [`MAX_LINE`] bytes accumulate without a newline.
///
/// Every driver needs this, so it lives apart from the json-file encoder.
#[derive(Debug, Default)]
pub struct LineSplitter {
    streams: [StreamState; 2],
    next_id: u64,
}

impl LineSplitter {
    /// Creates an empty splitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; calls `sink` for each complete line or 16 KiB piece.
    ///
    /// Complete lines inside `data` are passed straight from `data`, without
    /// copying; only a line spanning chunks is assembled in a buffer.
    pub fn feed<E>(
        &mut self,
        stream: Stream,
        data: &[u8],
        time: SystemTime,
        mut sink: impl FnMut(Message<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let next_id = &mut self.next_id;
        let st = &mut self.streams[stream.index()];
        let mut rest = data;
        while !rest.is_empty() {
            // Docker looks for a newline only within its 16 KiB buffer, so a
            // piece can never exceed MAX_LINE even if a newline follows later.
            let room = MAX_LINE - st.buf.len();
            let window = &rest[..room.min(rest.len())];
            let (line_end, consumed, full) = match memchr::memchr(b'\n', window) {
                Some(i) => (i, i + 1, true),
                None if window.len() == room => (window.len(), window.len(), false),
                None => {
                    st.buf.extend_from_slice(window);
                    return Ok(());
                }
            };
            let (time, partial) = if full {
                match st.series.take() {
                    Some((id, ordinal, t)) => (
                        t,
                        Some(PartialMeta {
                            id,
                            ordinal,
                            last: true,
                        }),
                    ),
                    None => (time, None),
                }
            } else {
                let (meta, first) = open_series(&mut st.series, next_id, time);
                (first, Some(meta))
            };
            let r = if st.buf.is_empty() {
                sink(Message {
                    stream,
                    line: &window[..line_end],
                    time,
                    partial,
                })
            } else {
                st.buf.extend_from_slice(&window[..line_end]);
                let r = sink(Message {
                    stream,
                    line: &st.buf,
                    time,
                    partial,
                });
                st.buf.clear();
                r
            };
            r?;
            rest = &rest[consumed..];
        }
        Ok(())
    }

    /// Emits whatever is buffered as partial pieces, as Docker does when a
    /// stream reaches EOF. `now` stamps pieces that start a new split line.
    pub fn flush<E>(
        &mut self,
        now: SystemTime,
        mut sink: impl FnMut(Message<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        for (i, st) in self.streams.iter_mut().enumerate() {
            if st.buf.is_empty() {
                continue;
            }
            let stream = if i == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            let (partial, time) = open_series(&mut st.series, &mut self.next_id, now);
            let r = sink(Message {
                stream,
                line: &st.buf,
                time,
                partial: Some(partial),
            });
            st.buf.clear();
            r?;
        }
        Ok(())
    }

    /// True when no incomplete line is buffered.
    pub fn is_empty(&self) -> bool {
        self.streams.iter().all(|s| s.buf.is_empty())
    }
}

/// Starts or continues a split line; returns the metadata for its next piece
/// and the time of its first piece, which every piece carries.
fn open_series(
    series: &mut Option<(u64, u32, SystemTime)>,
    next_id: &mut u64,
    time: SystemTime,
) -> (PartialMeta, SystemTime) {
    let (id, ordinal, first) = series.get_or_insert_with(|| {
        *next_id += 1;
        (*next_id, 1, time)
    });
    let meta = PartialMeta {
        id: *id,
        ordinal: *ordinal,
        last: false,
    };
    *ordinal += 1;
    (meta, *first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn run(chunks: &[&[u8]]) -> Vec<(Vec<u8>, Option<PartialMeta>, u64)> {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let t = UNIX_EPOCH + Duration::from_secs(i as u64);
            s.feed::<()>(Stream::Stdout, c, t, |m| {
                out.push((
                    m.line.to_vec(),
                    m.partial,
                    m.time.duration_since(UNIX_EPOCH).unwrap().as_secs(),
                ));
                Ok(())
            })
            .unwrap();
        }
        s.flush::<()>(UNIX_EPOCH + Duration::from_secs(99), |m| {
            out.push((
                m.line.to_vec(),
                m.partial,
                m.time.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            ));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_across_chunks() {
        let out = run(&[b"a\nb", b"c\n\nd"]);
        assert_eq!(out[0], (b"a".to_vec(), None, 0));
        // A line completed by a later chunk gets that chunk's time, like Docker.
        assert_eq!(out[1], (b"bc".to_vec(), None, 1));
        assert_eq!(out[2], (b"".to_vec(), None, 1));
        assert_eq!(out[3].0, b"d");
        assert!(!out[3].1.unwrap().last);
        assert_eq!(out[3].2, 99);
    }

    #[test]
    fn split_at_16k() {
        let big = vec![b'x'; MAX_LINE * 2 + 5];
        let mut data = big.clone();
        data.push(b'\n');
        // Deliver in odd-sized chunks to exercise the buffer path.
        let chunks: Vec<&[u8]> = data.chunks(1000).collect();
        let out = run(&chunks);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].0.len(), MAX_LINE);
        assert_eq!(out[1].0.len(), MAX_LINE);
        assert_eq!(out[2].0.len(), 5);
        let metas: Vec<_> = out.iter().map(|o| o.1.unwrap()).collect();
        assert_eq!((metas[0].ordinal, metas[0].last), (1, false));
        assert_eq!((metas[1].ordinal, metas[1].last), (2, false));
        assert_eq!((metas[2].ordinal, metas[2].last), (3, true));
        assert!(metas.iter().all(|m| m.id == metas[0].id));
        // All pieces carry the first piece's time.
        let t0 = out[0].2;
        assert!(out.iter().all(|o| o.2 == t0));
    }

    #[test]
    fn exact_16k_line_and_16383() {
        let mut data = vec![b'y'; MAX_LINE - 1];
        data.push(b'\n');
        let out = run(&[&data]);
        assert_eq!(out.len(), 1);
        assert!(out[0].1.is_none());

        let mut data = vec![b'y'; MAX_LINE];
        data.push(b'\n');
        let out = run(&[&data]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0.len(), MAX_LINE);
        assert_eq!(out[1].0, b"");
        assert!(out[1].1.unwrap().last);
    }

    #[test]
    fn streams_are_independent() {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        let t = UNIX_EPOCH;
        let mut sink = |m: Message<'_>| -> Result<(), ()> {
            out.push((m.stream, m.line.to_vec()));
            Ok(())
        };
        s.feed(Stream::Stdout, b"out-", t, &mut sink).unwrap();
        s.feed(Stream::Stderr, b"err\n", t, &mut sink).unwrap();
        s.feed(Stream::Stdout, b"line\n", t, &mut sink).unwrap();
        assert_eq!(
            out,
            vec![
                (Stream::Stderr, b"err".to_vec()),
                (Stream::Stdout, b"out-line".to_vec())
            ]
        );
        assert!(s.is_empty());
    }
}
