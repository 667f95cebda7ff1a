//! Ranges: named time ranges with key-value metadata, used to find recorded runs.
//!
//! A range ("hotfire 12", "run 2026-11-03") marks a period of interest. Its metadata is a
//! string-to-string map persisted in the catalog, so analysts can search ranges by name,
//! label or metadata value, and read every channel over a range.
//!
//! Ranges nest: a range may have a **parent** ("ignition" inside "hotfire 12"), set when it
//! is created. [`Ranges::children`] lists a range's direct children, and deleting a range
//! deletes its descendants with it (a child outliving its run would point nowhere).
//! [`Ranges::query`] combines the filters analysts use: a free-text term, an overlapping
//! time range, labels that must all be present, metadata entries that must match exactly,
//! and a parent.

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::{Catalog, RANGE_KV, RANGES, meta_err};
use crate::codes::CodeInfo;
use crate::storage_error::StorageError;
use crate::telem::TimeRange;

#[cfg(feature = "cluster")]
mod mirror;

/// Why a range operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "v", rename_all = "snake_case")]
pub enum RangerError {
    /// No range has this key.
    #[error("no range has key {key}; search ranges to find it")]
    NotFound {
        /// The key asked for.
        key: Uuid,
    },
    /// The range is stored by another node of the cluster; only that node changes it.
    #[error("range {key} is stored on cluster node {node}; change it through a node of the cluster, which forwards the change there")]
    Elsewhere {
        /// The range.
        key: Uuid,
        /// The number of the node that stores it.
        node: u8,
    },
    /// Bad name or time range.
    #[error("invalid range {name:?}: {reason}")]
    Invalid {
        /// The range name.
        name: String,
        /// What to change.
        reason: String,
    },
    /// The metadata catalog failed or is closed; converts to the umbrella error of the
    /// storage error's code (`engine.metadata`, `engine.closed`).
    #[error(transparent)]
    #[serde(skip)]
    Storage(#[from] StorageError),
}

/// Result of range operations.
pub type Result<T, E = RangerError> = std::result::Result<T, E>;

impl RangerError {
    /// Stable code, see [`crate::Error::code`].
    pub fn code(&self) -> &'static str {
        match self {
            RangerError::NotFound { .. } => "range.not_found",
            RangerError::Invalid { .. } => "range.invalid",
            RangerError::Elsewhere { .. } => "range.elsewhere",
            RangerError::Storage(e) => e.code(),
        }
    }

    /// Every code of this enum.
    pub const CODES: &[CodeInfo] = &[
        CodeInfo::new("range.not_found", "no range has this key"),
        CodeInfo::new("range.invalid", "bad range name or time range"),
        CodeInfo::new("range.elsewhere", "the range is stored on another node of the cluster; go through a node"),
    ];
}

/// The former name of [`RangerError`].
#[deprecated(note = "renamed to RangerError (one name in core, Python and Node)")]
pub type RangeError = RangerError;

/// A named time range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Unique key.
    pub key: Uuid,
    /// Display name (not necessarily unique).
    pub name: String,
    /// The period covered.
    pub time_range: TimeRange,
    /// Free-form labels ("hotfire", "anomaly").
    #[serde(default)]
    pub labels: Vec<String>,
    /// Display colour, e.g. `"#ff8800"`.
    #[serde(default)]
    pub color: Option<String>,
    /// The range this one belongs to (`None` for a top-level range).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
}

/// A range to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRange {
    /// Display name.
    pub name: String,
    /// The period covered.
    pub time_range: TimeRange,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Colour.
    #[serde(default)]
    pub color: Option<String>,
    /// Metadata to store with it.
    #[serde(default)]
    pub meta_data: BTreeMap<String, String>,
    /// The range this one is a child of; it must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
}

/// What [`Ranges::query`] looks for. Every filter that is set must hold; the default
/// query matches every range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeQuery {
    /// Case-insensitive text found in the name, a label or a metadata value ("" matches all).
    #[serde(default)]
    pub term: String,
    /// Only ranges overlapping this time range.
    #[serde(default)]
    pub overlapping: Option<TimeRange>,
    /// Only ranges carrying every one of these labels (compared case-insensitively).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Only ranges whose metadata has each of these keys with exactly this value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta_data: BTreeMap<String, String>,
    /// Only direct children of this range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
}

impl RangeQuery {
    /// A query for `term` (see [`RangeQuery::term`]).
    pub fn term(term: impl Into<String>) -> RangeQuery {
        RangeQuery { term: term.into(), ..RangeQuery::default() }
    }

    /// Only ranges overlapping `tr`.
    pub fn overlapping(mut self, tr: TimeRange) -> RangeQuery {
        self.overlapping = Some(tr);
        self
    }

    /// Only ranges carrying `label` (adds to the labels already required).
    pub fn label(mut self, label: impl Into<String>) -> RangeQuery {
        self.labels.push(label.into());
        self
    }

    /// Only ranges whose metadata maps `key` to exactly `value`.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> RangeQuery {
        self.meta_data.insert(key.into(), value.into());
        self
    }

    /// Only direct children of `parent`.
    pub fn parent(mut self, parent: Uuid) -> RangeQuery {
        self.parent = Some(parent);
        self
    }

    /// Whether `r`, whose metadata is `meta`, matches everything but the term.
    fn matches_filters(&self, r: &Range, meta: &BTreeMap<String, String>) -> bool {
        self.overlapping.is_none_or(|tr| r.time_range.overlaps(&tr))
            && self.parent.is_none_or(|p| r.parent == Some(p))
            && self.labels.iter().all(|want| r.labels.iter().any(|l| l.to_lowercase() == want.to_lowercase()))
            && self.meta_data.iter().all(|(k, v)| meta.get(k) == Some(v))
    }

    /// Whether `r` (with metadata `meta`) contains the lower-cased term.
    fn matches_term(term: &str, r: &Range, meta: &BTreeMap<String, String>) -> bool {
        term.is_empty()
            || r.name.to_lowercase().contains(term)
            || r.labels.iter().any(|l| l.to_lowercase().contains(term))
            || meta.values().any(|v| v.to_lowercase().contains(term))
    }
}

/// A change to the ranges, as published on the engine's change channel
/// (`telemetron_changes`, see [`crate::Change`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum RangeChange {
    /// A range was created.
    #[serde(rename = "range.create")]
    Created {
        /// It, as stored.
        ranges: Vec<Range>,
    },
    /// A range was renamed or given new labels.
    #[serde(rename = "range.update")]
    Updated {
        /// It, as stored now.
        ranges: Vec<Range>,
    },
    /// Ranges were deleted, with their descendants (all listed) and metadata.
    #[serde(rename = "range.delete")]
    Deleted {
        /// Their keys, parents before children.
        keys: Vec<Uuid>,
    },
    /// Metadata entries of a range were set or removed.
    #[serde(rename = "range.meta")]
    Meta {
        /// The range.
        key: Uuid,
        /// Entries set, with their new values.
        set: BTreeMap<String, String>,
        /// Entries removed.
        deleted: Vec<String>,
    },
}

/// What [`Ranges`] calls with each change, after it is durable.
pub(crate) type ChangeHook = Box<dyn Fn(&RangeChange) + Send + Sync>;

/// A range another node of the cluster stores, as that node last published it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirroredRange {
    /// The node that stores it (the only one that changes it).
    pub home: u8,
    /// The range.
    pub range: Range,
    /// Its metadata.
    #[serde(default)]
    pub meta_data: BTreeMap<String, String>,
}

/// Create, retrieve, search and delete ranges and their metadata.
///
/// In a cluster, the ranges other nodes store are kept here too, in memory, as **mirrors**
/// ([`Ranges::mirror`]): every read answers for the whole cluster, and changing a mirror is
/// refused ([`RangerError::Elsewhere`]) so that only a range's home node changes it (a node
/// forwards such a change there).
pub struct Ranges {
    catalog: Arc<Catalog>,
    mirrors: parking_lot::RwLock<std::collections::HashMap<Uuid, MirroredRange>>,
    on_change: std::sync::OnceLock<ChangeHook>,
    /// Held across a change and its report, so changes are reported in the order they
    /// were committed.
    order: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for Ranges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranges").finish_non_exhaustive()
    }
}

impl Ranges {
    pub(crate) fn new(catalog: Arc<Catalog>) -> Ranges {
        Ranges { catalog, mirrors: Default::default(), on_change: std::sync::OnceLock::new(), order: parking_lot::Mutex::new(()) }
    }

    /// Install the change hook (once; later calls are ignored).
    pub(crate) fn on_change(&self, hook: ChangeHook) {
        let _ = self.on_change.set(hook);
    }

    fn report(&self, change: &RangeChange) {
        if let Some(hook) = self.on_change.get() {
            hook(change);
        }
    }

    /// Create a range (with its initial metadata) in one transaction.
    ///
    /// # Errors
    /// [`RangerError::Invalid`] for an empty name, a range whose end precedes its start, an
    /// empty label, or a parent that does not exist.
    pub fn create(&self, new: NewRange) -> Result<Range> {
        if new.name.trim().is_empty() {
            return Err(RangerError::Invalid { name: new.name, reason: "names cannot be empty".into() });
        }
        if !new.time_range.is_valid() {
            return Err(RangerError::Invalid { name: new.name, reason: "the end of the time range is before its start".into() });
        }
        check_labels(&new.name, &new.labels)?;
        let r = Range {
            key: Uuid::new_v4(),
            name: new.name,
            time_range: new.time_range,
            labels: new.labels,
            color: new.color,
            parent: new.parent,
        };
        let _order = self.order.lock();
        let txn = self.catalog.write()?;
        {
            let mut t = txn.open_table(RANGES).map_err(meta_err)?;
            if let Some(p) = r.parent
                && t.get(p.as_u128()).map_err(meta_err)?.is_none()
                && !self.mirrors.read().contains_key(&p)
            {
                return Err(RangerError::Invalid { name: r.name, reason: format!("its parent range {p} does not exist") });
            }
            t.insert(r.key.as_u128(), serde_json::to_vec(&r).map_err(meta_err)?.as_slice()).map_err(meta_err)?;
            let mut kv = txn.open_table(RANGE_KV).map_err(meta_err)?;
            for (k, v) in &new.meta_data {
                kv.insert((r.key.as_u128(), k.as_str()), v.as_str()).map_err(meta_err)?;
            }
        }
        txn.commit().map_err(meta_err)?;
        tracing::info!(key = "ranges", range = %r.key, name = %r.name, "range created");
        self.report(&RangeChange::Created { ranges: vec![r.clone()] });
        Ok(r)
    }

    /// The range with `key`.
    ///
    /// # Errors
    /// [`RangerError::NotFound`].
    pub fn get(&self, key: Uuid) -> Result<Range> {
        if let Some(m) = self.mirrors.read().get(&key) {
            return Ok(m.range.clone());
        }
        self.get_stored(key)?.ok_or(RangerError::NotFound { key })
    }

    /// The range with `key` if this node stores it.
    fn get_stored(&self, key: Uuid) -> Result<Option<Range>> {
        let txn = self.catalog.read()?;
        let t = txn.open_table(RANGES).map_err(meta_err)?;
        let Some(v) = t.get(key.as_u128()).map_err(meta_err)? else { return Ok(None) };
        Ok(Some(serde_json::from_slice(v.value()).map_err(meta_err)?))
    }

    /// Refuse to change `key` here when another node stores it.
    fn refuse_mirror(&self, key: Uuid) -> Result<()> {
        match self.mirrors.read().get(&key) {
            Some(m) => Err(RangerError::Elsewhere { key, node: m.home }),
            None => Ok(()),
        }
    }

    /// The node that stores `key` when it is a mirror of another node's range; `None` for
    /// a range stored here or unknown.
    pub fn home(&self, key: Uuid) -> Option<u8> {
        self.mirrors.read().get(&key).map(|m| m.home)
    }

    /// Every range, ordered by start time.
    ///
    /// # Errors
    /// A catalog failure.
    pub fn list(&self) -> Result<Vec<Range>> {
        let mut out = self.list_stored()?;
        out.extend(self.mirrors.read().values().map(|m| m.range.clone()));
        out.sort_by_key(|r| (r.time_range.start, r.name.clone()));
        Ok(out)
    }

    /// The ranges this node stores (not the mirrors), unordered.
    pub(crate) fn list_stored(&self) -> Result<Vec<Range>> {
        let txn = self.catalog.read()?;
        let t = txn.open_table(RANGES).map_err(meta_err)?;
        let mut out: Vec<Range> = Vec::new();
        for row in t.iter().map_err(meta_err)? {
            let (_, v) = row.map_err(meta_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(meta_err)?);
        }
        Ok(out)
    }

    /// Ranges with exactly this name.
    ///
    /// # Errors
    /// A catalog failure.
    pub fn by_name(&self, name: &str) -> Result<Vec<Range>> {
        Ok(self.list()?.into_iter().filter(|r| r.name == name).collect())
    }

    /// Ranges whose name, a label, or a metadata value contains `term` (case-insensitive;
    /// an empty term matches all), optionally only those overlapping `overlapping`.
    /// [`Ranges::query`] adds labels, exact metadata and a parent.
    ///
    /// # Errors
    /// A catalog failure.
    pub fn search(&self, term: &str, overlapping: Option<TimeRange>) -> Result<Vec<Range>> {
        self.query(&RangeQuery { term: term.to_string(), overlapping, ..RangeQuery::default() })
    }

    /// Ranges matching every filter of `q`, ordered by start time.
    ///
    /// # Errors
    /// A catalog failure.
    pub fn query(&self, q: &RangeQuery) -> Result<Vec<Range>> {
        let term = q.term.to_lowercase();
        let mut out = Vec::new();
        for r in self.list()? {
            let meta = self.meta_data(r.key)?;
            if q.matches_filters(&r, &meta) && RangeQuery::matches_term(&term, &r, &meta) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The direct children of a range, ordered by start time.
    ///
    /// # Errors
    /// [`RangerError::NotFound`] if `key` is not a range.
    pub fn children(&self, key: Uuid) -> Result<Vec<Range>> {
        self.get(key)?;
        self.query(&RangeQuery::default().parent(key))
    }

    /// Replace a range's labels.
    ///
    /// # Errors
    /// [`RangerError::NotFound`], [`RangerError::Invalid`] for an empty label,
    /// [`RangerError::Elsewhere`] for another node's range.
    pub fn set_labels(&self, key: Uuid, labels: Vec<String>) -> Result<Range> {
        self.update(key, |r| {
            check_labels(&r.name, &labels)?;
            r.labels = labels;
            Ok(())
        })
    }

    /// Change the range with `key` by `f` and store it, under the order lock so a racing
    /// update cannot be lost between the read and the write.
    fn update(&self, key: Uuid, f: impl FnOnce(&mut Range) -> Result<()>) -> Result<Range> {
        self.refuse_mirror(key)?;
        let _order = self.order.lock();
        let mut r = self.get(key)?;
        f(&mut r)?;
        let txn = self.catalog.write()?;
        {
            let mut t = txn.open_table(RANGES).map_err(meta_err)?;
            t.insert(r.key.as_u128(), serde_json::to_vec(&r).map_err(meta_err)?.as_slice()).map_err(meta_err)?;
        }
        txn.commit().map_err(meta_err)?;
        self.report(&RangeChange::Updated { ranges: vec![r.clone()] });
        Ok(r)
    }

    /// Rename a range.
    ///
    /// # Errors
    /// [`RangerError::NotFound`], [`RangerError::Invalid`], [`RangerError::Elsewhere`].
    pub fn rename(&self, key: Uuid, name: &str) -> Result<Range> {
        if name.trim().is_empty() {
            return Err(RangerError::Invalid { name: name.to_string(), reason: "names cannot be empty".into() });
        }
        self.update(key, |r| {
            r.name = name.to_string();
            Ok(())
        })
    }

    /// Delete ranges, their descendants, and the metadata of all of them. Unknown keys are
    /// ignored. Descendants other nodes store are dropped here; their nodes delete them
    /// when they learn that their parent is gone.
    ///
    /// # Errors
    /// [`RangerError::Elsewhere`] when one of `keys` is another node's range; a catalog
    /// failure.
    pub fn delete(&self, keys: &[Uuid]) -> Result<()> {
        for k in keys {
            self.refuse_mirror(*k)?;
        }
        self.delete_with_descendants(keys)
    }

    /// [`Ranges::delete`] without the check: mirrors among `keys` go too.
    fn delete_with_descendants(&self, keys: &[Uuid]) -> Result<()> {
        let _order = self.order.lock();
        let doomed = self.with_descendants(keys)?;
        let txn = self.catalog.write()?;
        {
            let mut t = txn.open_table(RANGES).map_err(meta_err)?;
            let mut kv = txn.open_table(RANGE_KV).map_err(meta_err)?;
            for k in &doomed {
                t.remove(k.as_u128()).map_err(meta_err)?;
                let ks: Vec<String> = kv
                    .range((k.as_u128(), "")..)
                    .map_err(meta_err)?
                    .map_while(|row| row.ok())
                    .take_while(|(key, _)| key.value().0 == k.as_u128())
                    .map(|(key, _)| key.value().1.to_string())
                    .collect();
                for mk in ks {
                    kv.remove((k.as_u128(), mk.as_str())).map_err(meta_err)?;
                }
            }
        }
        txn.commit().map_err(meta_err)?;
        {
            let mut mirrors = self.mirrors.write();
            for k in &doomed {
                mirrors.remove(k);
            }
        }
        if !doomed.is_empty() {
            self.report(&RangeChange::Deleted { keys: doomed });
        }
        Ok(())
    }

    /// The ranges of `keys` that exist and every range below them (each once, parents
    /// before children).
    fn with_descendants(&self, keys: &[Uuid]) -> Result<Vec<Uuid>> {
        let all = self.list()?;
        let mut out: Vec<Uuid> = Vec::new();
        let mut next: Vec<Uuid> = keys.iter().copied().filter(|k| all.iter().any(|r| r.key == *k)).collect();
        while !next.is_empty() {
            let level: Vec<Uuid> = next.into_iter().filter(|k| !out.contains(k)).collect();
            out.extend(&level);
            next = all.iter().filter(|r| r.parent.is_some_and(|p| level.contains(&p))).map(|r| r.key).collect();
        }
        Ok(out)
    }

    /// All metadata of a range.
    ///
    /// # Errors
    /// A catalog failure.
    pub fn meta_data(&self, key: Uuid) -> Result<BTreeMap<String, String>> {
        if let Some(m) = self.mirrors.read().get(&key) {
            return Ok(m.meta_data.clone());
        }
        let txn = self.catalog.read()?;
        let kv = txn.open_table(RANGE_KV).map_err(meta_err)?;
        let mut out = BTreeMap::new();
        for row in kv.range((key.as_u128(), "")..).map_err(meta_err)? {
            let (k, v) = row.map_err(meta_err)?;
            if k.value().0 != key.as_u128() {
                break;
            }
            out.insert(k.value().1.to_string(), v.value().to_string());
        }
        Ok(out)
    }

    /// Set metadata entries of a range.
    ///
    /// # Errors
    /// [`RangerError::NotFound`] if the range does not exist; [`RangerError::Elsewhere`] for
    /// another node's range.
    pub fn set_meta_data(&self, key: Uuid, entries: &BTreeMap<String, String>) -> Result<()> {
        self.refuse_mirror(key)?;
        let _order = self.order.lock();
        self.get(key)?;
        let txn = self.catalog.write()?;
        {
            let mut kv = txn.open_table(RANGE_KV).map_err(meta_err)?;
            for (k, v) in entries {
                kv.insert((key.as_u128(), k.as_str()), v.as_str()).map_err(meta_err)?;
            }
        }
        txn.commit().map_err(meta_err)?;
        if !entries.is_empty() {
            self.report(&RangeChange::Meta { key, set: entries.clone(), deleted: Vec::new() });
        }
        Ok(())
    }

    /// Remove metadata entries of a range (missing ones are ignored).
    ///
    /// # Errors
    /// [`RangerError::Elsewhere`] for another node's range; a catalog failure.
    pub fn delete_meta_data(&self, key: Uuid, names: &[&str]) -> Result<()> {
        self.refuse_mirror(key)?;
        let _order = self.order.lock();
        let txn = self.catalog.write()?;
        let mut deleted = Vec::new();
        {
            let mut kv = txn.open_table(RANGE_KV).map_err(meta_err)?;
            for n in names {
                if kv.remove((key.as_u128(), *n)).map_err(meta_err)?.is_some() {
                    deleted.push((*n).to_string());
                }
            }
        }
        txn.commit().map_err(meta_err)?;
        if !deleted.is_empty() {
            self.report(&RangeChange::Meta { key, set: BTreeMap::new(), deleted });
        }
        Ok(())
    }
}

/// Labels are names: each must have a visible character.
fn check_labels(name: &str, labels: &[String]) -> Result<()> {
    if labels.iter().any(|l| l.trim().is_empty()) {
        return Err(RangerError::Invalid { name: name.to_string(), reason: "labels cannot be empty".into() });
    }
    Ok(())
}
