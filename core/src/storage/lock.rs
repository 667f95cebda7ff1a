//! The data directory: marker file and exclusive lock.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::StorageError;

const MARKER: &str = "TELEMETRON";
const MARKER_TEXT: &str = "telemetron data directory\nformat 1\n";
/// The marker is written here first, then renamed into place.
const MARKER_TMP: &str = ".TELEMETRON.tmp";
const FORMAT: u64 = 1;

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
        if marker.exists() {
            let text = fs::read_to_string(&marker).map_err(io)?;
            let version = text.lines().find_map(|l| l.strip_prefix("format ")).and_then(|v| v.trim().parse::<u64>().ok());
            match version {
                Some(FORMAT) => {}
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
            let tmp = dir.join(MARKER_TMP);
            fs::write(&tmp, MARKER_TEXT).map_err(io)?;
            File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
            fs::rename(&tmp, &marker).map_err(io)?;
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
        Ok(DirLock { _file: file, path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
