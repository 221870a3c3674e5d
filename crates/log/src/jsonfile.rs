//! The json-file writer: Docker's on-disk format, rotation and compression.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::escape::{escape_go_json, escape_jsonlog};
use crate::split::{LineSplitter, Message};
use crate::time::{format_rfc3339_nano, Formatter};
use crate::{io_err, Error, Result, Stream};

/// Docker creates log files readable by root's group only.
const FILE_MODE: u32 = 0o640;
/// Large enough that a pipe's worth of output becomes one `write(2)`.
const BUF_CAPACITY: usize = 128 * 1024;

/// Settings of a [`JsonFileWriter`] (the parsed `--log-opt`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonFileOptions {
    /// Rotate once the file has reached this many bytes; `None` never rotates.
    pub max_size: Option<u64>,
    /// Files kept in total, the live one included (Docker's `max-file`, >= 1).
    pub max_file: u32,
    /// Gzip rotated files (`<path>.1.gz`, ...).
    pub compress: bool,
    /// Docker's `attrs` object (from `labels`, `env`, `env-regex`, `tag`), written
    /// on every line when non-empty. Sorted, because Go marshals maps sorted.
    pub extra_attrs: BTreeMap<String, String>,
}

impl Default for JsonFileOptions {
    fn default() -> Self {
        JsonFileOptions {
            max_size: None,
            max_file: 1,
            compress: false,
            extra_attrs: BTreeMap::new(),
        }
    }
}

/// Writes a container's output in Docker's json-file format:
/// `{"log":"text\n","stream":"stdout","time":"2026-11-23T18:00:00.123456789Z"}`
/// plus a newline per message, rotating and compressing as Docker does.
///
/// Each [`write`](Self::write) ends with the data handed to the kernel, so a
/// follower sees it at once; within a call, messages are batched.
#[derive(Debug)]
pub struct JsonFileWriter {
    path: PathBuf,
    opts: JsonFileOptions,
    file: Option<BufWriter<File>>,
    enc: Encoder,
    splitter: LineSplitter,
    /// Bytes in the live file, counting those still in the buffer.
    size: u64,
    last_time: Option<SystemTime>,
    /// Compression of the last rotated file runs here, off the write path.
    compressor: Option<JoinHandle<()>>,
}

/// Reusable state for encoding one message: no allocation per line.
#[derive(Debug, Default)]
struct Encoder {
    line: Vec<u8>,
    /// `,"attrs":{...}` pre-encoded once, or empty.
    attrs: Vec<u8>,
    ts: Formatter,
    /// The timestamp last formatted, reused while the time does not change
    /// (every message of one chunk shares it).
    ts_time: Option<SystemTime>,
    ts_buf: Vec<u8>,
}

impl Encoder {
    fn encode(&mut self, m: &Message<'_>) -> Result<()> {
        if self.ts_time != Some(m.time) {
            self.ts_buf.clear();
            if !self.ts.append(m.time, false, &mut self.ts_buf) {
                return Err(Error::TimeOutOfRange);
            }
            self.ts_time = Some(m.time);
        }
        let l = &mut self.line;
        l.clear();
        l.reserve(m.line.len() + 96 + self.attrs.len());
        // Docker omits "log" when empty; only an empty partial piece can be.
        let has_log = !m.line.is_empty() || m.ends_line();
        if has_log {
            l.extend_from_slice(b"{\"log\":\"");
            escape_jsonlog(m.line, l);
            if m.ends_line() {
                l.extend_from_slice(b"\\n");
            }
            l.extend_from_slice(b"\",\"stream\":\"");
        } else {
            l.extend_from_slice(b"{\"stream\":\"");
        }
        l.extend_from_slice(m.stream.as_str().as_bytes());
        l.push(b'"');
        l.extend_from_slice(&self.attrs);
        l.extend_from_slice(b",\"time\":\"");
        l.extend_from_slice(&self.ts_buf);
        l.extend_from_slice(b"\"}\n");
        Ok(())
    }
}

/// Encodes `attrs` as Go's `json.Marshal(map[string]string)` would.
fn encode_attrs(attrs: &BTreeMap<String, String>) -> Vec<u8> {
    if attrs.is_empty() {
        return Vec::new();
    }
    let mut v = b",\"attrs\":{".to_vec();
    for (i, (k, val)) in attrs.iter().enumerate() {
        if i > 0 {
            v.push(b',');
        }
        v.push(b'"');
        escape_go_json(k.as_bytes(), &mut v);
        v.extend_from_slice(b"\":\"");
        escape_go_json(val.as_bytes(), &mut v);
        v.push(b'"');
    }
    v.push(b'}');
    v
}

fn open_log(path: &Path, truncate: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    // O_APPEND and O_TRUNC cannot be combined through std; after a truncate
    // the offset is 0 anyway and we are the only writer.
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    o.create(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io_err("open", path))
}

/// `<path>.<n><ext>`
pub(crate) fn numbered(path: &Path, n: u32, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}{ext}"));
    PathBuf::from(s)
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

impl JsonFileWriter {
    /// Opens (appending to) or creates the log file at `path`.
    pub fn open(path: &Path, opts: JsonFileOptions) -> Result<Self> {
        if opts.max_file < 1 {
            return Err(Error::InvalidOpt("max-file cannot be less than 1".into()));
        }
        let file = open_log(path, false)?;
        let size = file.metadata().map_err(io_err("stat", path))?.len();
        let enc = Encoder {
            attrs: encode_attrs(&opts.extra_attrs),
            ..Encoder::default()
        };
        Ok(JsonFileWriter {
            path: path.to_path_buf(),
            opts,
            file: Some(BufWriter::with_capacity(BUF_CAPACITY, file)),
            enc,
            splitter: LineSplitter::new(),
            size,
            last_time: None,
            compressor: None,
        })
    }

    /// The live log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs a raw chunk of the container's output. Complete lines are written
    /// now; an incomplete one waits for its newline (or 16 KiB, or
    /// [`flush`](Self::flush)). The data is in the file when this returns.
    pub fn write(&mut self, stream: Stream, data: &[u8], time: SystemTime) -> Result<()> {
        if self.file.is_none() {
            return Err(Error::Closed);
        }
        let mut splitter = std::mem::take(&mut self.splitter);
        let r = splitter.feed(stream, data, time, |m| self.write_message(&m));
        self.splitter = splitter;
        r?;
        self.flush_file()
    }

    /// Writes out any incomplete line as a partial message (without newline),
    /// as Docker does when a stream ends, and flushes the file.
    pub fn flush(&mut self) -> Result<()> {
        if self.file.is_none() {
            return Err(Error::Closed);
        }
        let mut splitter = std::mem::take(&mut self.splitter);
        let r = splitter.flush(SystemTime::now(), |m| self.write_message(&m));
        self.splitter = splitter;
        r?;
        self.flush_file()
    }

    /// Flushes, waits for a running compression, and closes the file. Later
    /// writes fail with [`Error::Closed`]; closing twice is harmless.
    pub fn close(&mut self) -> Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let r = self.flush();
        self.file = None;
        self.wait_compressor();
        r
    }

    /// Encodes and writes one message, rotating first if the file is full.
    pub fn write_message(&mut self, m: &Message<'_>) -> Result<()> {
        self.enc.encode(m)?;
        // Like Docker, check before writing: a file may exceed max-size by one
        // message, and a message is never split across files.
        if let Some(max) = self.opts.max_size {
            if self.size >= max {
                self.rotate()?;
            }
        }
        let file = self.file.as_mut().ok_or(Error::Closed)?;
        file.write_all(&self.enc.line)
            .map_err(io_err("write", &self.path))?;
        self.size += self.enc.line.len() as u64;
        self.last_time = Some(m.time);
        Ok(())
    }

    fn flush_file(&mut self) -> Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush().map_err(io_err("write", &self.path)),
            None => Err(Error::Closed),
        }
    }

    fn wait_compressor(&mut self) {
        if let Some(h) = self.compressor.take() {
            // A panic there has already been reported; the file stays uncompressed.
            let _ = h.join();
        }
    }

    /// Docker's rotation: shift `<path>.N` up, drop the oldest, move the live
    /// file to `.1` (or unlink it when only one file is kept) and start anew.
    /// The live file is renamed, never truncated, so readers that have it open
    /// can finish it.
    fn rotate(&mut self) -> Result<()> {
        self.flush_file()?;
        // Docker waits for the previous compression before shifting files.
        self.wait_compressor();
        let max = self.opts.max_file;
        let compress = self.opts.compress && max > 1;
        let rotate_err = io_err("rotate", &self.path);
        if max < 2 {
            ignore_missing(fs::remove_file(&self.path)).map_err(rotate_err)?;
        } else {
            let ext = if compress { ".gz" } else { "" };
            ignore_missing(fs::remove_file(numbered(&self.path, max - 1, ext)))
                .map_err(io_err("rotate", &self.path))?;
            for i in (2..max).rev() {
                ignore_missing(fs::rename(
                    numbered(&self.path, i - 1, ext),
                    numbered(&self.path, i, ext),
                ))
                .map_err(io_err("rotate", &self.path))?;
            }
            fs::rename(&self.path, numbered(&self.path, 1, ""))
                .map_err(io_err("rotate", &self.path))?;
        }
        // Truncate in case the rename or unlink did not happen as planned.
        let file = open_log(&self.path, true)?;
        self.file = Some(BufWriter::with_capacity(BUF_CAPACITY, file));
        self.size = 0;
        if compress {
            let src = numbered(&self.path, 1, "");
            let last = self.last_time;
            self.compressor = Some(std::thread::spawn(move || {
                // Nothing to report it to from here; on failure the rotated file
                // simply stays uncompressed, which readers handle.
                let _ = compress_file(&src, last);
            }));
        }
        Ok(())
    }
}

impl Drop for JsonFileWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Gzips `src` to `src.gz` and removes `src`, recording the last entry's time in
/// the gzip header as Docker does (`{"lastTime":...}`), so readers with
/// `--since` can skip the file without decompressing it. The data goes to a
/// temporary name first so that a reader never opens a half-written `.gz`.
fn compress_file(src: &Path, last_time: Option<SystemTime>) -> io::Result<()> {
    let mut dst_name = src.as_os_str().to_owned();
    dst_name.push(".gz");
    let dst = PathBuf::from(dst_name);
    let mut tmp_name = dst.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);

    let extra = match last_time {
        Some(t) => format!("{{\"lastTime\":\"{}\"}}", format_rfc3339_nano(t)),
        None => "{}".to_string(),
    };
    let result = (|| {
        let mut input = File::open(src)?;
        let out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        let mut gz = flate2::GzBuilder::new().extra(extra.into_bytes()).write(
            BufWriter::with_capacity(BUF_CAPACITY, out),
            flate2::Compression::default(),
        );
        io::copy(&mut input, &mut gz)?;
        let out = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        fs::rename(&tmp, &dst)?;
        fs::remove_file(src)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
