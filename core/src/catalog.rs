//! The metadata catalog: a redb database holding channels, ranges and deletion records.
//!
//! Samples never live here: redb commits are durable transactions (milliseconds), which is
//! right for metadata that changes rarely and wrong for the sample path.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::storage_error::StorageError;

pub(crate) const CHANNELS: TableDefinition<'_, u32, &[u8]> = TableDefinition::new("channels");
pub(crate) const CHANNEL_NAMES: TableDefinition<'_, &str, u32> = TableDefinition::new("channel_names");
pub(crate) const RANGES: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("ranges");
pub(crate) const RANGE_KV: TableDefinition<'_, (u128, &str), &str> = TableDefinition::new("range_kv");
pub(crate) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// Keyed by (delete sequence number, index within that delete).
pub(crate) const TOMBSTONES: TableDefinition<'_, (u64, u64), &[u8]> = TableDefinition::new("tombstones");

pub(crate) const NEXT_CHANNEL_KEY: &str = "next_channel_key";
pub(crate) const CATALOG_VERSION: &str = "catalog_version";
const CURRENT_CATALOG_VERSION: u64 = 1;

/// Wrapper around the redb database file.
pub(crate) struct Catalog {
    /// `None` once the engine is closed (the file and its lock are released).
    db: parking_lot::RwLock<Option<Database>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

pub(crate) fn meta_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Metadata { reason: e.to_string() }
}

/// Create an empty database beside `path` and move it into place. redb refuses a file whose
/// creation was interrupted (it has no magic number yet), so a crash must never leave one at
/// `path`; a stale temporary file from such a crash is simply replaced.
fn create_atomically(path: &Path) -> Result<(), StorageError> {
    let io = |e: std::io::Error| StorageError::Metadata { reason: format!("cannot create metadata database {}: {e}", path.display()) };
    let tmp = path.with_extension("redb.tmp");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    drop(Database::create(&tmp).map_err(|e| meta_err(format!("cannot create metadata database {}: {e}", tmp.display())))?);
    std::fs::rename(&tmp, path).map_err(io)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

impl Catalog {
    pub(crate) fn open(path: &Path) -> Result<Catalog, StorageError> {
        if !path.exists() {
            create_atomically(path)?;
        }
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StorageError::AlreadyOpen { path: path.to_path_buf(), holder: None },
            other => StorageError::Metadata { reason: format!("cannot open metadata database {}: {other}", path.display()) },
        })?;
        let cat = Catalog { db: parking_lot::RwLock::new(Some(db)) };
        let txn = cat.write()?;
        {
            // Create every table so readers never see "table does not exist".
            txn.open_table(CHANNELS).map_err(meta_err)?;
            txn.open_table(CHANNEL_NAMES).map_err(meta_err)?;
            txn.open_table(RANGES).map_err(meta_err)?;
            txn.open_table(RANGE_KV).map_err(meta_err)?;
            txn.open_table(TOMBSTONES).map_err(meta_err)?;
            let mut meta = txn.open_table(META).map_err(meta_err)?;
            let version = meta.get(CATALOG_VERSION).map_err(meta_err)?.map(|v| v.value());
            match version {
                None => {
                    meta.insert(CATALOG_VERSION, CURRENT_CATALOG_VERSION).map_err(meta_err)?;
                }
                Some(v) if v == CURRENT_CATALOG_VERSION => {}
                Some(v) => {
                    return Err(StorageError::UnsupportedFormat { path: path.to_path_buf(), found: v, supported: CURRENT_CATALOG_VERSION });
                }
            }
        }
        txn.commit().map_err(meta_err)?;
        Ok(cat)
    }

    pub(crate) fn write(&self) -> Result<redb::WriteTransaction, StorageError> {
        self.db.read().as_ref().ok_or(StorageError::Closed { what: "the engine".into() })?.begin_write().map_err(meta_err)
    }

    pub(crate) fn read(&self) -> Result<redb::ReadTransaction, StorageError> {
        self.db.read().as_ref().ok_or(StorageError::Closed { what: "the engine".into() })?.begin_read().map_err(meta_err)
    }

    /// Close the database file (releasing its lock).
    pub(crate) fn close(&self) {
        self.db.write().take();
    }
}
