//! The node's log, kept in rolling files: `<dir>/telemetron.log` is written until it would
//! pass `max_bytes`, then renamed `telemetron.log.1` (the older ones move up, the oldest
//! beyond `max_files` is deleted) and a new one started. Lines are never split across
//! files. `telemetron serve` keeps its log in `<data>/logs/` this way, and `telemetron
//! logs` reads it back ([`LogFiles::tail`], [`LogFiles::follow`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;

/// The current file's name; rotated ones add `.1`, `.2`, ... (`.1` the newest).
pub const LOG_FILE: &str = "telemetron.log";

/// Default size of one file before it rolls (16 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;

/// Default number of files kept, the current one included.
pub const DEFAULT_MAX_FILES: usize = 5;

/// Rolling log files in one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFiles {
    /// The directory.
    pub dir: PathBuf,
    /// Size at which the current file rolls over (a single longer line still goes whole).
    pub max_bytes: u64,
    /// Files kept, the current one included (at least 1).
    pub max_files: usize,
}

impl LogFiles {
    /// Files in `dir` with the default limits.
    pub fn new(dir: impl Into<PathBuf>) -> LogFiles {
        LogFiles { dir: dir.into(), max_bytes: DEFAULT_MAX_BYTES, max_files: DEFAULT_MAX_FILES }
    }

    /// The path of file `n` (0: the current one).
    pub fn path(&self, n: usize) -> PathBuf {
        if n == 0 { self.dir.join(LOG_FILE) } else { self.dir.join(format!("{LOG_FILE}.{n}")) }
    }

    /// Open the writer (creating the directory), appending to the current file.
    ///
    /// # Errors
    /// An I/O error naming the directory.
    pub fn open(&self) -> crate::Result<RollingWriter> {
        let bad = |e: io::Error| crate::Error::InvalidArgument { reason: format!("cannot write logs in {}: {e}", self.dir.display()) };
        fs::create_dir_all(&self.dir).map_err(bad)?;
        let file = OpenOptions::new().create(true).append(true).open(self.path(0)).map_err(bad)?;
        let len = file.metadata().map_err(bad)?.len();
        Ok(RollingWriter { files: self.clone(), inner: Mutex::new(Current { file, len }) })
    }

    /// The last `n` lines across the files, oldest first.
    ///
    /// # Errors
    /// An I/O error reading a file (a missing file is skipped).
    pub fn tail(&self, n: usize) -> io::Result<Vec<String>> {
        Ok(self.tail_at(n)?.0)
    }

    /// [`LogFiles::tail`], and where the current file was read up to (its inode and
    /// length), for [`LogFiles::follow`] to go on from there without a gap.
    ///
    /// # Errors
    /// As [`LogFiles::tail`].
    pub fn tail_at(&self, n: usize) -> io::Result<(Vec<String>, Option<FollowFrom>)> {
        use std::os::unix::fs::MetadataExt as _;
        let mut out: Vec<String> = Vec::new();
        let mut at = None;
        // Newest file first, while rotated files follow on (whatever `max_files` the node
        // ran with); stop once enough lines are collected.
        for i in 0..10_000 {
            let Ok(f) = File::open(self.path(i)) else {
                if i == 0 {
                    continue;
                }
                break;
            };
            let ino = f.metadata()?.ino();
            let mut read = 0u64;
            let mut lines = Vec::new();
            for l in BufReader::new(f).split(b'\n') {
                let l = l?;
                read += l.len() as u64 + 1;
                lines.push(String::from_utf8_lossy(&l).into_owned());
            }
            if i == 0 {
                at = Some(FollowFrom { ino, pos: read });
            }
            if out.len() < n {
                let take = (n - out.len()).min(lines.len());
                let mut older: Vec<String> = lines.split_off(lines.len() - take);
                older.append(&mut out);
                out = older;
            }
            if out.len() >= n {
                break;
            }
        }
        Ok((out, at))
    }

    /// Call `line` with each line appended to the current file from now on (or from
    /// `from`), following it across rollovers, until `line` returns false. Polls every
    /// `poll`.
    ///
    /// # Errors
    /// An I/O error reading the file.
    pub fn follow(&self, poll: Duration, from: Option<FollowFrom>, mut line: impl FnMut(&str) -> bool) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let path = self.path(0);
        let mut f = File::open(&path)?;
        let mut ino = f.metadata()?.ino();
        // From where a tail stopped (the start of the file if it has rolled since), or
        // from the end.
        let mut pos = match from {
            Some(at) if at.ino == ino => f.seek(SeekFrom::Start(at.pos))?,
            Some(_) => 0,
            None => f.seek(SeekFrom::End(0))?,
        };
        let mut reader = BufReader::new(f);
        let mut buf = String::new();
        // Pass every whole line up to the end of the file being read; false when `line`
        // asked to stop.
        let mut drain = |reader: &mut BufReader<File>, pos: &mut u64| -> io::Result<bool> {
            loop {
                buf.clear();
                let n = reader.read_line(&mut buf)?;
                if n == 0 {
                    return Ok(true);
                }
                if !buf.ends_with('\n') {
                    // A line being written: read it again whole next time.
                    reader.seek(SeekFrom::Start(*pos))?;
                    return Ok(true);
                }
                *pos += n as u64;
                if !line(buf.trim_end_matches('\n')) {
                    return Ok(false);
                }
            }
        };
        loop {
            if !drain(&mut reader, &mut pos)? {
                return Ok(());
            }
            std::thread::sleep(poll);
            // Rolled over: the name now holds a new file. Finish the old one (still open
            // here; the writer renamed it after its last line), then read the new one from
            // its start.
            if let Ok(m) = fs::metadata(&path)
                && m.ino() != ino
            {
                if !drain(&mut reader, &mut pos)? {
                    return Ok(());
                }
                let f = File::open(&path)?;
                ino = f.metadata()?.ino();
                reader = BufReader::new(f);
                pos = 0;
            }
        }
    }
}

/// Where a read of the current log file stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowFrom {
    ino: u64,
    pos: u64,
}

#[derive(Debug)]
struct Current {
    file: File,
    len: u64,
}

/// Appends whole lines to the current file, rolling over by size. Shared by every thread
/// that logs (one lock per line).
#[derive(Debug)]
pub struct RollingWriter {
    files: LogFiles,
    inner: Mutex<Current>,
}

impl RollingWriter {
    /// Append `bytes` (one or more whole lines), rolling over first if they would not fit.
    ///
    /// # Errors
    /// An I/O error writing or renaming.
    pub fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let mut cur = self.inner.lock();
        if cur.len > 0
            && cur.len + bytes.len() as u64 > self.files.max_bytes
            && let Err(e) = self.roll(&mut cur)
        {
            // Keep writing where we are and try again one file's worth later: retrying on
            // every line would shift (and so delete) the older files line by line.
            cur.len = 0;
            tracing::warn!(key = "observe/logfile", error = %e, dir = %self.files.dir.display(), "cannot roll the log file over; writing on");
        }
        if let Err(e) = cur.file.write_all(bytes) {
            // Part of the line may be in the file: end it, so the next line starts clean,
            // and take the length from the file.
            let _ = cur.file.write_all(b"\n");
            cur.len = cur.file.metadata().map_or(cur.len, |m| m.len());
            return Err(e);
        }
        cur.len += bytes.len() as u64;
        Ok(())
    }

    fn roll(&self, cur: &mut Current) -> io::Result<()> {
        let keep = self.files.max_files.max(1);
        // With one file kept, the current one is simply started again.
        let _ = fs::remove_file(self.files.path(keep - 1));
        for i in (0..keep - 1).rev() {
            let from = self.files.path(i);
            if from.exists() {
                fs::rename(&from, self.files.path(i + 1))?;
            }
        }
        cur.file = OpenOptions::new().create(true).append(true).open(self.files.path(0))?;
        cur.len = 0;
        Ok(())
    }
}

/// A `tracing_subscriber` writer: each event is formatted into one buffer and appended
/// whole when the guard drops.
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RollingWriter {
    type Writer = LineBuffer<'a>;
    fn make_writer(&'a self) -> LineBuffer<'a> {
        LineBuffer { to: self, buf: Vec::with_capacity(256) }
    }
}

/// One event's text on its way to a [`RollingWriter`].
#[derive(Debug)]
pub struct LineBuffer<'a> {
    to: &'a RollingWriter,
    buf: Vec<u8>,
}

impl Write for LineBuffer<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            // A full disk must not take the node down with it; the line is lost.
            let _ = self.to.append(&self.buf);
        }
    }
}

/// True if `dir` holds a node's log.
pub fn has_log(dir: &Path) -> bool {
    dir.join(LOG_FILE).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_by_size_keeps_max_files_and_tails_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let files = LogFiles { dir: dir.path().join("logs"), max_bytes: 100, max_files: 3 };
        let w = files.open().unwrap();
        for i in 0..40 {
            w.append(format!("line {i:03} .........\n").as_bytes()).unwrap(); // 20 bytes
        }
        for n in 0..3 {
            let len = fs::metadata(files.path(n)).unwrap().len();
            assert!(len <= 100, "file {n} is {len} bytes");
        }
        assert!(!files.path(3).exists(), "at most 3 files");
        let tail = files.tail(7).unwrap();
        assert_eq!(tail.len(), 7);
        assert_eq!(tail.last().unwrap(), "line 039 .........");
        assert_eq!(tail.first().unwrap(), "line 033 .........", "oldest first, across the rollover");
        // 3 files of 5 lines: the last 15 lines are all there is.
        assert_eq!(files.tail(100).unwrap().len(), 15);
    }

    #[test]
    fn follow_sees_new_lines_across_a_rollover() {
        let dir = tempfile::tempdir().unwrap();
        let files = LogFiles { dir: dir.path().to_path_buf(), max_bytes: 60, max_files: 2 };
        let w = files.open().unwrap();
        w.append(b"before following\n").unwrap();
        let (_, at) = files.tail_at(0).unwrap();
        let f2 = files.clone();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            f2.follow(Duration::from_millis(5), at, |l| {
                got.push(l.to_string());
                got.len() < 6
            })
            .unwrap();
            got
        });
        std::thread::sleep(Duration::from_millis(50));
        for i in 0..6 {
            w.append(format!("new line {i} ......\n").as_bytes()).unwrap(); // 20 bytes: rolls every 3
            std::thread::sleep(Duration::from_millis(30));
        }
        let got = reader.join().unwrap();
        assert_eq!(got, (0..6).map(|i| format!("new line {i} ......")).collect::<Vec<_>>());
    }
}
