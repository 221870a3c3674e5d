//! Reading json-file logs back for `docker logs`: rotated and compressed
//! files in order, `--tail` from the end, `--since`/`--until`, and `--follow`
//! across rotation.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use flate2::bufread::MultiGzDecoder;

use crate::escape::unescape;
use crate::time::{from_unix, parse_rfc3339, Formatter};
use crate::{io_err, Error, Result, Stream};

/// Initial size of the line buffer; it grows for longer lines.
const READ_BUF: usize = 256 * 1024;
/// Block size for scanning files backwards.
const BACK_BLOCK: usize = 64 * 1024;
/// Follow polls the file; these bound the wait between polls. Polling keeps
/// the reader free of inotify plumbing and works on any filesystem, and the
/// short first interval keeps `logs -f` latency low while output is flowing.
const POLL_MIN: Duration = Duration::from_millis(1);
const POLL_MAX: Duration = Duration::from_millis(50);
/// Go's zero time, which Docker decodes when an entry has no `time`.
const GO_ZERO_SECS: i64 = -62_135_596_800;

/// What to read (the `docker logs` flags).
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Skip entries logged before this time (`--since`, inclusive).
    pub since: Option<SystemTime>,
    /// Stop at the first entry logged after this time (`--until`).
    pub until: Option<SystemTime>,
    /// Only the last N entries (`--tail`); `None` reads everything. As in
    /// Docker, N counts entries of both streams before stream filtering and
    /// before `since`/`until` apply.
    pub tail: Option<usize>,
    /// Return stdout entries.
    pub stdout: bool,
    /// Return stderr entries.
    pub stderr: bool,
    /// Keep waiting for new entries (`--follow`), across rotation.
    pub follow: bool,
    /// Carried for the caller's formatting (`-t`); see [`LogEntry::format_docker`].
    pub timestamps: bool,
    /// When following, the container has exited once this is set: the reader
    /// drains what is left and ends. Without it, following never ends.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            since: None,
            until: None,
            tail: None,
            stdout: true,
            stderr: true,
            follow: false,
            timestamps: false,
            stop: None,
        }
    }
}

/// One log entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Stream the text came from.
    pub stream: Stream,
    /// When it was logged.
    pub time: SystemTime,
    /// The text, without the trailing newline.
    pub line: Vec<u8>,
    /// True for a piece of a split line (no newline followed it).
    pub partial: bool,
    /// The entry's `attrs` (from `labels`, `env`, `tag`), in file order.
    pub attrs: Vec<(String, String)>,
}

impl LogEntry {
    /// The bytes `docker logs` prints for this entry: with `timestamps` (`-t`),
    /// an RFC 3339 timestamp with nine fractional digits and a space first;
    /// then the text, and a newline unless the entry is partial.
    pub fn format_docker(&self, timestamps: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.line.len() + 32);
        self.append_docker(timestamps, false, &mut out);
        out
    }

    /// Appends what `docker logs` prints, reusing `out`; `details` adds the
    /// `--details` prefix (`k=v,k2=v2 `, URL-query-escaped).
    pub fn append_docker(&self, timestamps: bool, details: bool, out: &mut Vec<u8>) {
        if timestamps {
            // Out-of-range years cannot be stored in a file, so this succeeds.
            Formatter::default().append(self.time, true, out);
            out.push(b' ');
        }
        if details {
            for (i, (k, v)) in self.attrs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                query_escape(k.as_bytes(), out);
                out.push(b'=');
                query_escape(v.as_bytes(), out);
            }
            out.push(b' ');
        }
        out.extend_from_slice(&self.line);
        if !self.partial {
            out.push(b'\n');
        }
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
        }
    }
}

enum Input {
    Plain(File),
    /// Not yet started: decompression begins when the file's turn comes.
    GzPending(File),
    Gz(Box<MultiGzDecoder<BufReader<File>>>),
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Plain(f) => f.read(buf),
            Input::Gz(d) => d.read(buf),
            Input::GzPending(f) => {
                f.seek(SeekFrom::Start(0))?;
                let f = f.try_clone()?;
                *self = Input::Gz(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                    READ_BUF, f,
                ))));
                self.read(buf)
            }
        }
    }
}

struct Source {
    path: PathBuf,
    input: Input,
    /// Lines to drop first (`--tail` inside a compressed file).
    skip_lines: u64,
    /// The file being written: at its end, follow waits instead of moving on.
    live: bool,
    /// Identity of a plain file, to notice the live file being rotated away.
    id: (u64, u64),
}

/// Iterator over log entries; see [`read`].
pub struct LogReader {
    opts: ReadOptions,
    path: PathBuf,
    cur: Option<Source>,
    pending: VecDeque<Source>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    done: bool,
    backoff: Duration,
    /// Time of the last entry parsed, to place compressed rotated files
    /// relative to what was already read.
    last_time: Option<SystemTime>,
    /// The live file was rotated away; once it is drained, what came after it
    /// must be found.
    rotated: bool,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("path", &self.path)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

fn file_id(m: &fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// Rotated siblings of `path` (`<name>.N`, `<name>.N.gz`), oldest first. The
/// directory is listed rather than probed `.1`, `.2`, ... because rotation
/// renames from the top down and can momentarily leave a gap.
fn rotated_files(path: &Path) -> io::Result<Vec<(PathBuf, bool)>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(base) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<(u64, bool, PathBuf)> = Vec::new();
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let name = ent.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix(base))
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        let (num, gz) = match rest.strip_suffix(".gz") {
            Some(n) => (n, true),
            None => (rest, false),
        };
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = num.parse::<u64>() {
            found.push((n, gz, ent.path()));
        }
    }
    // Newest number last; for the same number prefer the uncompressed file,
    // which exists complete until its .gz is (as Docker does).
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.dedup_by_key(|f| f.0);
    Ok(found.into_iter().map(|(_, gz, p)| (p, gz)).collect())
}

/// Reads the json-file log at `path` and its rotated files, oldest first.
///
/// The returned iterator yields entries matching `opts`; a corrupt line yields
/// an [`Error::Corrupt`] and reading goes on. With `follow`, `next` blocks
/// until a new entry arrives, `until` passes, or `stop` is set and the file is
/// drained; call it from a thread that may block.
pub fn read(path: &Path, opts: ReadOptions) -> Result<LogReader> {
    // Rotation may happen between listing and opening; opening every file
    // first and checking the live one is still the one at `path` makes the set
    // consistent (open handles survive renames).
    let mut attempt = 0;
    let sources = loop {
        attempt += 1;
        let live = File::open(path).map_err(io_err("open", path))?;
        let live_id = file_id(&live.metadata().map_err(io_err("stat", path))?);
        let mut sources = VecDeque::new();
        for (p, gz) in rotated_files(path).map_err(io_err("list", path))? {
            match File::open(&p) {
                Ok(f) => {
                    let id = f.metadata().map(|m| file_id(&m)).unwrap_or_default();
                    let input = if gz {
                        Input::GzPending(f)
                    } else {
                        Input::Plain(f)
                    };
                    sources.push_back(Source {
                        path: p,
                        input,
                        skip_lines: 0,
                        live: false,
                        id,
                    });
                }
                // Dropped by a rotation since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("open", &p)(e)),
            }
        }
        let still = fs::metadata(path)
            .map(|m| file_id(&m) == live_id)
            .unwrap_or(false);
        sources.push_back(Source {
            path: path.to_path_buf(),
            input: Input::Plain(live),
            skip_lines: 0,
            live: true,
            id: live_id,
        });
        if still || attempt >= 5 {
            break sources;
        }
    };
    let mut reader = LogReader {
        opts,
        path: path.to_path_buf(),
        cur: None,
        pending: sources,
        buf: vec![0; READ_BUF],
        start: 0,
        end: 0,
        done: false,
        backoff: POLL_MIN,
        last_time: None,
        rotated: false,
    };
    if reader.opts.follow {
        // What "newer than what we have seen" means if the live file is
        // rotated before we read any entry (e.g. `--tail 0`).
        reader.last_time = reader
            .pending
            .iter()
            .rev()
            .find_map(|src| match &src.input {
                Input::Plain(f) => f.metadata().ok().and_then(|m| last_time_plain(f, m.len())),
                Input::GzPending(f) => last_time_gz(f),
                Input::Gz(_) => None,
            });
    }
    if let Some(n) = reader.opts.tail {
        reader.apply_tail(n)?;
    } else if let Some(since) = reader.opts.since {
        reader.skip_before(since)?;
    }
    reader.cur = reader.pending.pop_front();
    Ok(reader)
}

/// Offset where the last `n` complete lines of `file[..len]` begin, and how
/// many complete lines that is (at most `n`). Reads backwards in blocks.
fn tail_offset(file: &File, len: u64, n: usize) -> io::Result<(u64, usize)> {
    let mut block = vec![0u8; BACK_BLOCK];
    let mut pos = len;
    // Newlines seen so far; the first terminates the last complete line, and
    // newline k+1 marks where the k-th line from the end begins.
    let mut seen = 0usize;
    while pos > 0 {
        let size = (pos as usize).min(BACK_BLOCK);
        pos -= size as u64;
        file.read_exact_at(&mut block[..size], pos)?;
        for i in memchr::memrchr_iter(b'\n', &block[..size]) {
            seen += 1;
            if seen == n + 1 {
                return Ok((pos + i as u64 + 1, n));
            }
        }
    }
    Ok((0, seen))
}

/// Time of the last complete entry in `file[..len]`, if it can be found in
/// the final block.
fn last_time_plain(file: &File, len: u64) -> Option<SystemTime> {
    let size = (len as usize).min(BACK_BLOCK);
    let mut block = vec![0u8; size];
    file.read_exact_at(&mut block, len - size as u64).ok()?;
    let end = memchr::memrchr(b'\n', &block)?;
    let start = memchr::memrchr(b'\n', &block[..end]).map(|p| p + 1)?;
    parse_line(&block[start..end]).ok().map(|p| p.time)
}

/// The `lastTime` Docker records in a rotated file's gzip header.
fn last_time_gz(file: &File) -> Option<SystemTime> {
    let mut f = file.try_clone().ok()?;
    f.seek(SeekFrom::Start(0)).ok()?;
    let dec = MultiGzDecoder::new(BufReader::new(f));
    let extra = dec.header()?.extra()?;
    let key = b"\"lastTime\":\"";
    let at = extra.windows(key.len()).position(|w| w == key)? + key.len();
    let end = memchr::memchr(b'"', &extra[at..])? + at;
    parse_rfc3339(&extra[at..end])
}

fn count_gz_lines(file: &File) -> io::Result<u64> {
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::Start(0))?;
    let mut dec = MultiGzDecoder::new(BufReader::with_capacity(READ_BUF, f));
    let mut buf = vec![0u8; READ_BUF];
    let mut count = 0u64;
    loop {
        let n = dec.read(&mut buf)?;
        if n == 0 {
            return Ok(count);
        }
        count += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}

enum Wait {
    Continue,
    End,
}

impl LogReader {
    /// Keeps only what holds the last `n` lines, walking from the newest file
    /// back; earlier files are never read.
    fn apply_tail(&mut self, n: usize) -> Result<()> {
        let mut needed = n;
        let mut keep_from = self.pending.len();
        for idx in (0..self.pending.len()).rev() {
            if needed == 0 {
                break;
            }
            let src = &mut self.pending[idx];
            keep_from = idx;
            match &mut src.input {
                Input::Plain(f) => {
                    let len = f.metadata().map_err(io_err("stat", &src.path))?.len();
                    let (off, found) =
                        tail_offset(f, len, needed).map_err(io_err("read", &src.path))?;
                    f.seek(SeekFrom::Start(off))
                        .map_err(io_err("seek", &src.path))?;
                    needed -= found;
                }
                Input::GzPending(f) => {
                    let total = count_gz_lines(f).map_err(io_err("read", &src.path))?;
                    if total as usize >= needed {
                        src.skip_lines = total - needed as u64;
                        needed = 0;
                    } else {
                        needed -= total as usize;
                    }
                }
                Input::Gz(_) => {}
            }
        }
        if n == 0 {
            // Nothing old at all: start at the live file's end.
            let live = self.pending.pop_back().expect("live source");
            if let Input::Plain(f) = &live.input {
                let mut f: &File = f;
                f.seek(SeekFrom::End(0))
                    .map_err(io_err("seek", &live.path))?;
            }
            self.pending.clear();
            self.pending.push_back(live);
            return Ok(());
        }
        self.pending.drain(..keep_from);
        Ok(())
    }

    /// Drops rotated files whose last entry is older than `since`.
    fn skip_before(&mut self, since: SystemTime) -> Result<()> {
        while self.pending.len() > 1 {
            let src = &self.pending[0];
            let last = match &src.input {
                Input::Plain(f) => {
                    let len = f.metadata().map_err(io_err("stat", &src.path))?.len();
                    last_time_plain(f, len)
                }
                Input::GzPending(f) => last_time_gz(f),
                Input::Gz(_) => None,
            };
            match last {
                Some(t) if t < since => {
                    self.pending.pop_front();
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// Reads more of the current source into the buffer; 0 at its end.
    fn fill(&mut self) -> io::Result<usize> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(0);
        };
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A line longer than the buffer: grow rather than fail.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = cur.input.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Next complete line of the current source as a range of `buf`, or
    /// `None` at the source's current end.
    fn next_line(&mut self) -> io::Result<Option<(usize, usize)>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let r = (self.start, self.start + i);
                self.start += i + 1;
                return Ok(Some(r));
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }

    /// Moves to the next source, dropping any unterminated tail of the last
    /// one (a rotated file is complete; an unterminated end is damage).
    fn advance(&mut self) -> bool {
        self.start = 0;
        self.end = 0;
        self.cur = self.pending.pop_front();
        self.cur.is_some()
    }

    /// At the end of the live file while following: decide whether to wait,
    /// switch to a new file after rotation, or stop.
    fn wait_live(&mut self) -> Result<Wait> {
        if self
            .opts
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Acquire))
        {
            // The writer finished before setting the flag, so one more read
            // sees everything it wrote.
            if self.fill().map_err(io_err("read", &self.path))? > 0 {
                return Ok(Wait::Continue);
            }
            if self.check_rotation()? {
                return Ok(Wait::Continue);
            }
            return Ok(Wait::End);
        }
        if self.opts.until.is_some_and(|u| SystemTime::now() > u) {
            return Ok(Wait::End);
        }
        if self.check_rotation()? {
            return Ok(Wait::Continue);
        }
        std::thread::sleep(self.backoff);
        self.backoff = (self.backoff * 2).min(POLL_MAX);
        Ok(Wait::Continue)
    }

    /// True if `path` is no longer the file being read: the writer rotated
    /// it. The old file then becomes an ordinary source to finish; what
    /// follows it is worked out once it is drained (see `catch_up`).
    fn check_rotation(&mut self) -> Result<bool> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(false);
        };
        match fs::metadata(&self.path) {
            Ok(m) if file_id(&m) != cur.id => {
                cur.live = false;
                self.rotated = true;
                Ok(true)
            }
            Ok(_) => Ok(false),
            // Between the writer's rename (or unlink) and create: look again later.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("stat", &self.path)(e)),
        }
    }

    /// After draining a file that was rotated away, queues every file written
    /// since: the writer may have rotated several times while we were behind,
    /// so the files between ours and the new live one are read too.
    fn catch_up(&mut self) -> Result<()> {
        self.rotated = false;
        let our_id = self.cur.as_ref().map(|c| c.id);
        // The new live file. It exists (rotation was seen by its identity
        // changing) unless yet another rotation is between rename and create.
        let mut tries = 0;
        let live = loop {
            match File::open(&self.path) {
                Ok(f) => break f,
                Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 1000 => {
                    tries += 1;
                    std::thread::sleep(POLL_MIN);
                }
                Err(e) => return Err(io_err("open", &self.path)(e)),
            }
        };
        let live_id = file_id(&live.metadata().map_err(io_err("stat", &self.path))?);
        let mut newer = Vec::new();
        let mut found_ours = false;
        for (p, gz) in rotated_files(&self.path).map_err(io_err("list", &self.path))? {
            let Ok(f) = File::open(&p) else { continue };
            let Ok(meta) = f.metadata() else { continue };
            let id = file_id(&meta);
            if id == live_id {
                // Rotated again since we opened it; it is read as the live file.
                continue;
            }
            if Some(id) == our_id {
                // Our file, uncompressed: everything after it is newer.
                found_ours = true;
                newer.clear();
                continue;
            }
            if !found_ours {
                // Before ours in rotation order, or ours in compressed form:
                // only entries later than the last we read are new.
                let last = if gz {
                    last_time_gz(&f)
                } else {
                    last_time_plain(&f, meta.len())
                };
                match (last, self.last_time) {
                    (Some(l), Some(t)) if l > t => {}
                    _ => continue,
                }
            }
            let input = if gz {
                Input::GzPending(f)
            } else {
                Input::Plain(f)
            };
            newer.push(Source {
                path: p,
                input,
                skip_lines: 0,
                live: false,
                id,
            });
        }
        self.pending.extend(newer);
        self.pending.push_back(Source {
            path: self.path.clone(),
            input: Input::Plain(live),
            skip_lines: 0,
            live: true,
            id: live_id,
        });
        Ok(())
    }

    fn corrupt(&self, reason: &'static str) -> Error {
        let path = self
            .cur
            .as_ref()
            .map_or_else(|| self.path.clone(), |c| c.path.clone());
        Error::Corrupt { path, reason }
    }
}

impl Iterator for LogReader {
    type Item = Result<LogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let range = match self.next_line() {
                Ok(r) => r,
                Err(e) => {
                    self.done = true;
                    let path = self
                        .cur
                        .as_ref()
                        .map_or_else(|| self.path.clone(), |c| c.path.clone());
                    return Some(Err(Error::Io {
                        op: "read",
                        path,
                        source: e,
                    }));
                }
            };
            let Some((s, e)) = range else {
                let live = self.cur.as_ref().is_some_and(|c| c.live);
                if !live {
                    if self.rotated && self.pending.is_empty() {
                        if let Err(e) = self.catch_up() {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                    if !self.advance() {
                        self.done = true;
                    }
                    continue;
                }
                if !self.opts.follow {
                    self.done = true;
                    continue;
                }
                match self.wait_live() {
                    Ok(Wait::Continue) => continue,
                    Ok(Wait::End) => {
                        self.done = true;
                        continue;
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            };
            self.backoff = POLL_MIN;
            if let Some(cur) = self.cur.as_mut() {
                if cur.skip_lines > 0 {
                    cur.skip_lines -= 1;
                    continue;
                }
            }
            let line = &self.buf[s..e];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let p = match parse_line(line) {
                Ok(p) => p,
                Err(reason) => return Some(Err(self.corrupt(reason))),
            };
            self.last_time = Some(p.time);
            if self.opts.until.is_some_and(|u| p.time > u) {
                self.done = true;
                continue;
            }
            if self.opts.since.is_some_and(|s| p.time < s) {
                continue;
            }
            let wanted = match p.stream {
                Some(Stream::Stdout) => self.opts.stdout,
                Some(Stream::Stderr) => self.opts.stderr,
                // Docker prints entries of other streams nowhere.
                None => false,
            };
            if !wanted {
                continue;
            }
            match p.into_entry() {
                Ok(entry) => return Some(Ok(entry)),
                Err(reason) => return Some(Err(self.corrupt(reason))),
            }
        }
    }
}

/// A json-file line split into its fields; the text is decoded only for
/// entries that pass the filters.
struct Parsed<'a> {
    log: &'a [u8],
    stream: Option<Stream>,
    time: SystemTime,
    attrs: Option<&'a [u8]>,
}

impl Parsed<'_> {
    fn into_entry(self) -> Result<LogEntry, &'static str> {
        let mut line = Vec::new();
        unescape(self.log, &mut line).map_err(|_| "bad escape in log")?;
        let partial = line.last() != Some(&b'\n');
        if !partial {
            line.pop();
        }
        let attrs = match self.attrs {
            Some(a) => parse_attrs(a)?,
            None => Vec::new(),
        };
        Ok(LogEntry {
            stream: self.stream.unwrap_or(Stream::Stdout),
            time: self.time,
            line,
            partial,
            attrs,
        })
    }
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// With `s[i] == '"'`, returns the string body's range end and the index
/// after the closing quote.
fn scan_string(s: &[u8], i: usize) -> Result<(usize, usize), &'static str> {
    let mut j = i + 1;
    loop {
        let k = memchr::memchr2(b'"', b'\\', &s[j..]).ok_or("unterminated string")? + j;
        if s[k] == b'"' {
            return Ok((k, k + 1));
        }
        j = k + 2;
        if j > s.len() {
            return Err("unterminated string");
        }
    }
}

fn expect_string(s: &[u8], i: usize) -> Result<(&[u8], usize), &'static str> {
    if s.get(i) != Some(&b'"') {
        return Err("expected string");
    }
    let (end, next) = scan_string(s, i)?;
    Ok((&s[i + 1..end], next))
}

/// Skips any JSON value starting at `i`; returns the index after it.
fn skip_value(s: &[u8], i: usize) -> Result<usize, &'static str> {
    match s.get(i) {
        Some(b'"') => Ok(scan_string(s, i)?.1),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < s.len() {
                match s[j] {
                    b'"' => {
                        j = scan_string(s, j)?.1;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err("unterminated value")
        }
        Some(_) => {
            let mut j = i;
            while j < s.len() && !matches!(s[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
            {
                j += 1;
            }
            if j == i {
                Err("expected value")
            } else {
                Ok(j)
            }
        }
        None => Err("expected value"),
    }
}

fn parse_line(s: &[u8]) -> Result<Parsed<'_>, &'static str> {
    let mut p = Parsed {
        log: b"",
        stream: None,
        time: from_unix(GO_ZERO_SECS, 0),
        attrs: None,
    };
    let mut i = skip_ws(s, 0);
    if s.get(i) != Some(&b'{') {
        return Err("not a JSON object");
    }
    i = skip_ws(s, i + 1);
    if s.get(i) == Some(&b'}') {
        return Ok(p);
    }
    loop {
        let (key, next) = expect_string(s, i)?;
        i = skip_ws(s, next);
        if s.get(i) != Some(&b':') {
            return Err("expected ':'");
        }
        i = skip_ws(s, i + 1);
        match key {
            b"log" => (p.log, i) = expect_string(s, i)?,
            b"stream" => {
                let (v, next) = expect_string(s, i)?;
                p.stream = match v {
                    b"stdout" => Some(Stream::Stdout),
                    b"stderr" => Some(Stream::Stderr),
                    _ => None,
                };
                i = next;
            }
            b"time" => {
                let (v, next) = expect_string(s, i)?;
                p.time = parse_rfc3339(v).ok_or("bad time")?;
                i = next;
            }
            b"attrs" => {
                let next = skip_value(s, i)?;
                if s[i] == b'{' {
                    p.attrs = Some(&s[i..next]);
                }
                i = next;
            }
            _ => i = skip_value(s, i)?,
        }
        i = skip_ws(s, i);
        match s.get(i) {
            Some(b',') => i = skip_ws(s, i + 1),
            Some(b'}') => return Ok(p),
            _ => return Err("expected ',' or '}'"),
        }
    }
}

fn parse_attrs(s: &[u8]) -> Result<Vec<(String, String)>, &'static str> {
    let mut out = Vec::new();
    let mut i = skip_ws(s, 1);
    if s.get(i) == Some(&b'}') {
        return Ok(out);
    }
    let decode = |raw: &[u8]| -> Result<String, &'static str> {
        let mut v = Vec::new();
        unescape(raw, &mut v).map_err(|_| "bad escape in attrs")?;
        Ok(String::from_utf8_lossy(&v).into_owned())
    };
    loop {
        let (k, next) = expect_string(s, i)?;
        i = skip_ws(s, next);
        if s.get(i) != Some(&b':') {
            return Err("expected ':' in attrs");
        }
        i = skip_ws(s, i + 1);
        if s.get(i) == Some(&b'"') {
            let (v, next) = expect_string(s, i)?;
            out.push((decode(k)?, decode(v)?));
            i = next;
        } else {
            i = skip_value(s, i)?;
        }
        i = skip_ws(s, i);
        match s.get(i) {
            Some(b',') => i = skip_ws(s, i + 1),
            Some(b'}') => return Ok(out),
            _ => return Err("expected ',' or '}' in attrs"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_lines() {
        let p = parse_line(br#"{"log":"hi \u003c\n","stream":"stderr","attrs":{"a":"b","n":1},"time":"2026-11-23T18:00:00.5Z"}"#)
            .unwrap();
        assert_eq!(p.stream, Some(Stream::Stderr));
        let e = p.into_entry().unwrap();
        assert_eq!(e.line, b"hi <");
        assert!(!e.partial);
        assert_eq!(e.attrs, vec![("a".into(), "b".into())]);
        // Other key orders and whitespace, as other writers may produce.
        let p =
            parse_line(br#" { "time" : "2026-11-23T18:00:00Z" , "stream":"stdout", "log":"x" } "#)
                .unwrap();
        assert!(p.into_entry().unwrap().partial);
        for bad in [
            &b"nope"[..],
            br#"{"log":"x"#,
            br#"{"log":1}"#,
            br#"{"time":"yesterday"}"#,
            br#"{"log":"x" "#,
        ] {
            assert!(parse_line(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn query_escape_like_go() {
        let mut v = Vec::new();
        query_escape(b"a b/c=d~", &mut v);
        assert_eq!(v, b"a+b%2Fc%3Dd~");
    }
}
