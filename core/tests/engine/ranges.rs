//! Ranges: create/get/list/search/rename/delete and metadata, with persistence.

use crate::common;

use std::collections::BTreeMap;

use common::{open, reopen};
use telemetron::ranger::{NewRange, RangerError};
use telemetron::telem::TimeRange;

fn new_range(name: &str, start: i64, end: i64) -> NewRange {
    NewRange { name: name.into(), time_range: TimeRange::from_nanos(start, end), ..NewRange::default() }
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

#[test]
fn create_get_list() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let r = engine
        .ranges()
        .create(NewRange {
            name: "hotfire 12".into(),
            time_range: TimeRange::from_nanos(100, 200),
            labels: vec!["hotfire".into(), "nominal".into()],
            color: Some("#ff8800".into()),
            meta_data: meta(&[("operator", "ada"), ("stand", "B")]),
            parent: None,
        })
        .unwrap();
    assert_eq!(r.name, "hotfire 12");
    assert_eq!(r.time_range, TimeRange::from_nanos(100, 200));
    assert_eq!(r.labels, ["hotfire", "nominal"]);
    assert_eq!(r.color.as_deref(), Some("#ff8800"));
    assert_eq!(engine.ranges().get(r.key).unwrap(), r);
    assert_eq!(engine.ranges().meta_data(r.key).unwrap(), meta(&[("operator", "ada"), ("stand", "B")]));

    let b = engine.ranges().create(new_range("early", 10, 20)).unwrap();
    let c = engine.ranges().create(new_range("late", 1000, 1000)).unwrap();
    assert_ne!(b.key, r.key);
    let list = engine.ranges().list().unwrap();
    assert_eq!(list.iter().map(|x| x.key).collect::<Vec<_>>(), [b.key, r.key, c.key], "ordered by start");

    let missing = uuid::Uuid::from_u128(7);
    match engine.ranges().get(missing).unwrap_err() {
        RangerError::NotFound { key } => assert_eq!(key, missing),
        other => panic!("{other:?}"),
    }
    assert_eq!(engine.ranges().get(missing).unwrap_err().code(), "range.not_found");
}

#[test]
fn invalid_ranges_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let e = engine.ranges().create(new_range("", 0, 1)).unwrap_err();
    assert_eq!(e.code(), "range.invalid");
    assert!(matches!(e, RangerError::Invalid { .. }));
    assert_eq!(engine.ranges().create(new_range("   ", 0, 1)).unwrap_err().code(), "range.invalid");
    let e = engine.ranges().create(new_range("backwards", 10, 5)).unwrap_err();
    assert!(matches!(e, RangerError::Invalid { ref name, .. } if name == "backwards"));
    assert!(engine.ranges().list().unwrap().is_empty());
}

#[test]
fn by_name_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let ranges = engine.ranges();
    let a = ranges
        .create(NewRange {
            labels: vec!["Hotfire".into()],
            meta_data: meta(&[("note", "Valve chatter observed")]),
            ..new_range("Run A", 0, 100)
        })
        .unwrap();
    let b = ranges.create(NewRange { labels: vec!["cold flow".into()], ..new_range("run b", 100, 200) }).unwrap();
    let c = ranges.create(NewRange { meta_data: meta(&[("operator", "Grace")]), ..new_range("checkout", 150, 400) }).unwrap();
    let d = ranges.create(new_range("Run A", 500, 600)).unwrap();

    let keys = |v: Vec<telemetron::ranger::Range>| v.into_iter().map(|r| r.key).collect::<Vec<_>>();
    assert_eq!(keys(ranges.by_name("Run A").unwrap()), [a.key, d.key]);
    assert!(ranges.by_name("run a").unwrap().is_empty(), "by_name is exact");

    // Name (case-insensitive substring).
    assert_eq!(keys(ranges.search("run", None).unwrap()), [a.key, b.key, d.key]);
    // Label.
    assert_eq!(keys(ranges.search("HOTFIRE", None).unwrap()), [a.key]);
    assert_eq!(keys(ranges.search("flow", None).unwrap()), [b.key]);
    // Metadata value (not key).
    assert_eq!(keys(ranges.search("chatter", None).unwrap()), [a.key]);
    assert_eq!(keys(ranges.search("grace", None).unwrap()), [c.key]);
    assert!(ranges.search("operator", None).unwrap().is_empty(), "metadata keys are not searched");
    // Empty term matches all.
    assert_eq!(ranges.search("", None).unwrap().len(), 4);
    // Time overlap (half-open ranges).
    assert_eq!(keys(ranges.search("", Some(TimeRange::from_nanos(100, 150))).unwrap()), [b.key]);
    assert_eq!(keys(ranges.search("", Some(TimeRange::from_nanos(99, 151))).unwrap()), [a.key, b.key, c.key]);
    assert_eq!(keys(ranges.search("run", Some(TimeRange::from_nanos(90, 550))).unwrap()), [a.key, b.key, d.key]);
    assert_eq!(keys(ranges.search("run", Some(TimeRange::from_nanos(400, 500))).unwrap()), Vec::<uuid::Uuid>::new());
}

#[test]
fn rename_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let ranges = engine.ranges();
    let a = ranges.create(NewRange { meta_data: meta(&[("k", "v")]), ..new_range("a", 0, 10) }).unwrap();
    let b = ranges.create(NewRange { meta_data: meta(&[("k", "w"), ("z", "1")]), ..new_range("b", 5, 15) }).unwrap();

    let r = ranges.rename(a.key, "a renamed").unwrap();
    assert_eq!(r.name, "a renamed");
    assert_eq!(r.time_range, a.time_range);
    assert_eq!(ranges.get(a.key).unwrap().name, "a renamed");
    assert_eq!(ranges.rename(a.key, " ").unwrap_err().code(), "range.invalid");
    assert_eq!(ranges.rename(uuid::Uuid::from_u128(1), "x").unwrap_err().code(), "range.not_found");

    ranges.delete(&[a.key, uuid::Uuid::from_u128(99)]).unwrap();
    assert_eq!(ranges.get(a.key).unwrap_err().code(), "range.not_found");
    assert!(ranges.meta_data(a.key).unwrap().is_empty(), "metadata is deleted with the range");
    // The other range and its metadata are untouched.
    assert_eq!(ranges.get(b.key).unwrap(), b);
    assert_eq!(ranges.meta_data(b.key).unwrap(), meta(&[("k", "w"), ("z", "1")]));
    assert_eq!(ranges.list().unwrap().len(), 1);
}

#[test]
fn metadata_set_get_delete() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let ranges = engine.ranges();
    let a = ranges.create(new_range("a", 0, 10)).unwrap();
    let b = ranges.create(NewRange { meta_data: meta(&[("shared", "b")]), ..new_range("b", 0, 10) }).unwrap();
    assert!(ranges.meta_data(a.key).unwrap().is_empty());

    ranges.set_meta_data(a.key, &meta(&[("x", "1"), ("y", "2"), ("shared", "a")])).unwrap();
    assert_eq!(ranges.meta_data(a.key).unwrap(), meta(&[("shared", "a"), ("x", "1"), ("y", "2")]));
    // Overwrite one, add one.
    ranges.set_meta_data(a.key, &meta(&[("x", "one"), ("w", "0")])).unwrap();
    assert_eq!(ranges.meta_data(a.key).unwrap(), meta(&[("shared", "a"), ("w", "0"), ("x", "one"), ("y", "2")]));
    // Delete some (missing ones are ignored).
    ranges.delete_meta_data(a.key, &["y", "nope", "shared"]).unwrap();
    assert_eq!(ranges.meta_data(a.key).unwrap(), meta(&[("w", "0"), ("x", "one")]));
    // Other ranges' metadata is untouched.
    assert_eq!(ranges.meta_data(b.key).unwrap(), meta(&[("shared", "b")]));

    let missing = uuid::Uuid::from_u128(5);
    assert_eq!(ranges.set_meta_data(missing, &meta(&[("a", "b")])).unwrap_err().code(), "range.not_found");
    assert!(ranges.meta_data(missing).unwrap().is_empty());
}

#[test]
fn ranges_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = engine
        .ranges()
        .create(NewRange {
            labels: vec!["l1".into()],
            color: Some("#123456".into()),
            meta_data: meta(&[("k", "v")]),
            ..new_range("a", 0, 10)
        })
        .unwrap();
    let b = engine.ranges().create(new_range("b", 20, 30)).unwrap();
    let c = engine.ranges().create(new_range("c", 40, 50)).unwrap();
    let child = engine.ranges().create(NewRange { parent: Some(a.key), ..new_range("a.1", 2, 4) }).unwrap();
    engine.ranges().set_labels(b.key, vec!["relabelled".into()]).unwrap();
    engine.ranges().rename(b.key, "b2").unwrap();
    engine.ranges().set_meta_data(b.key, &meta(&[("m", "n")])).unwrap();
    engine.ranges().delete(&[c.key]).unwrap();

    let engine = reopen(engine);
    let list = engine.ranges().list().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0], a);
    assert_eq!(list[1], child);
    assert_eq!(engine.ranges().children(a.key).unwrap(), vec![child]);
    assert_eq!(list[2].key, b.key);
    assert_eq!(list[2].name, "b2");
    assert_eq!(list[2].labels, ["relabelled"]);
    assert_eq!(engine.ranges().meta_data(a.key).unwrap(), meta(&[("k", "v")]));
    assert_eq!(engine.ranges().meta_data(b.key).unwrap(), meta(&[("m", "n")]));
    assert_eq!(engine.ranges().get(c.key).unwrap_err().code(), "range.not_found");
    assert_eq!(engine.ranges().search("v", None).unwrap().len(), 1);
}

#[test]
fn a_range_stored_before_parents_existed_reads_as_top_level() {
    // Catalog records written before ranges had parents have no `parent` field.
    let old = br#"{"key":"00000000-0000-0000-0000-000000000007","name":"old","time_range":{"start":0,"end":5},"labels":[],"color":null}"#;
    let r: telemetron::ranger::Range = serde_json::from_slice(old).unwrap();
    assert_eq!((r.name.as_str(), r.parent), ("old", None));
    // And a top-level range is stored without the field, as before.
    assert!(!serde_json::to_string(&r).unwrap().contains("parent"));
}
