//! The data directory: marker file and exclusive lock.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::StorageError;

const MARKER: &str = "TELEMETRON";
/// The marker is written here first, then renamed into place.
const MARKER_TMP: &str = ".TELEMETRON.tmp";
/// The directory format this build writes: version 2 added compacted and compressed chunk
/// records (storage/format.rs). It matches the segment format version.
const FORMAT: u64 = super::format::FORMAT_VERSION as u64;
/// Directories of this format and later are opened; older ones up to `FORMAT` are
/// converted at open (the marker is rewritten; their segments are read as they are).
const OLDEST_FORMAT: u64 = super::format::OLDEST_FORMAT_VERSION as u64;

fn marker_text(format: u64) -> String {
    format!("telemetron data directory\nformat {format}\n")
}

/// Write the marker: to a temporary file, synced, renamed into place, directory synced.
fn write_marker(dir: &Path, format: u64) -> std::io::Result<()> {
    let tmp = dir.join(MARKER_TMP);
    fs::write(&tmp, marker_text(format))?;
    File::open(&tmp).and_then(|f| f.sync_all())?;
    fs::rename(&tmp, dir.join(MARKER))?;
    File::open(dir).and_then(|d| d.sync_all())
}

/// Holds `LOCK` with `flock(LOCK_EX)` for the engine's lifetime.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Create or validate the directory, then lock it.
    ///
    /// # Errors
    /// [`StorageError::NotADataDirectory`] for a non-empty foreign directory,
    /// [`StorageError::UnsupportedFormat`], [`StorageError::AlreadyOpen`],
    /// [`StorageError::DataDirectory`].
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, StorageError> {
        let io = |e: std::io::Error| StorageError::DataDirectory { reason: format!("cannot use data directory {}: {e}", dir.display()) };
        fs::create_dir_all(dir).map_err(io)?;
        let marker = dir.join(MARKER);
        let mut upgrade_from = None;
        if marker.exists() {
            let text = fs::read_to_string(&marker).map_err(io)?;
            let version = text.lines().find_map(|l| l.strip_prefix("format ")).and_then(|v| v.trim().parse::<u64>().ok());
            match version {
                Some(FORMAT) => {}
                Some(v) if (OLDEST_FORMAT..FORMAT).contains(&v) => upgrade_from = Some(v),
                Some(v) => return Err(StorageError::UnsupportedFormat { path: dir.to_path_buf(), found: v, supported: FORMAT }),
                None => return Err(StorageError::NotADataDirectory { path: dir.to_path_buf(), found: vec![MARKER.to_string()] }),
            }
        } else {
            let found: Vec<String> = fs::read_dir(dir)
                .map_err(io)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                // A crash between writing the marker and renaming it leaves only this behind.
                .filter(|n| n != MARKER_TMP)
                .take(5)
                .collect();
            if !found.is_empty() {
                return Err(StorageError::NotADataDirectory { path: dir.to_path_buf(), found });
            }
            write_marker(dir, FORMAT).map_err(io)?;
        }
        let path = dir.join("LOCK");
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        // SAFETY: flock on an fd we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut s = String::new();
            let _ = file.read_to_string(&mut s);
            return Err(StorageError::AlreadyOpen { path: dir.to_path_buf(), holder: s.trim().parse().ok() });
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        if let Some(from) = upgrade_from {
            // Under the lock, so no other engine converts or uses it meanwhile. The segments
            // need no rewrite: version 2 reads version 1 records as plain raw chunks. Only
            // builds that read version 2 open it from now on.
            write_marker(dir, FORMAT).map_err(io)?;
            tracing::info!(key = "storage/format", dir = %dir.display(), from, to = FORMAT, "data directory converted to the current format");
        }
        Ok(DirLock { _file: file, path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
