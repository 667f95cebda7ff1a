//! Channel registry: create, retrieve, search, rename, delete, validation, persistence.

use crate::common;

use common::{create_group, open, reopen};
use telemetron::Error;
use telemetron::channel::{ChannelError, ChannelKind, Concurrency, IndexRef, NewChannel};
use telemetron::framer::WriterConfig;
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};

fn channel_err(e: impl Into<Error>) -> ChannelError {
    match e.into() {
        Error::Channel(c) => c,
        other => panic!("expected a channel error, got {other:?}"),
    }
}

#[test]
fn create_one_and_retrieve_by_key_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let idx = engine.create_channel(NewChannel::index("time")).unwrap();
    assert!(idx.is_index());
    assert_eq!(idx.data_type, DataType::Timestamp);
    assert_eq!(idx.kind, ChannelKind::Index);
    assert_eq!(idx.index_key(), Some(idx.key));

    let got = engine.channels().get(idx.key).unwrap();
    assert_eq!(*got, idx);
    let by_name = engine.channels().by_name("time").unwrap();
    assert_eq!(*by_name, idx);

    let e = channel_err(engine.channels().get(idx.key + 1000).unwrap_err());
    assert_eq!(e, ChannelError::KeyNotFound { key: idx.key + 1000 });
    let e = channel_err(engine.channels().by_name("nope").unwrap_err());
    assert_eq!(e, ChannelError::NameNotFound { name: "nope".into() });
}

#[test]
fn create_many_with_index_in_same_batch() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let chans = engine
        .create_channels(vec![
            NewChannel::index("stand_time"),
            NewChannel::data("pt_1", DataType::F64, "stand_time"),
            NewChannel::data("pt_2", DataType::I32, "stand_time"),
            NewChannel::virtual_("valve_cmd", DataType::U8),
            NewChannel::data("tc_1", DataType::F32, "stand_time").with_concurrency(Concurrency::Shared),
        ])
        .unwrap();
    assert_eq!(chans.len(), 5);
    let idx = chans[0].key;
    assert_eq!(chans[1].kind, ChannelKind::Data { index: idx });
    assert_eq!(chans[2].kind, ChannelKind::Data { index: idx });
    assert_eq!(chans[2].data_type, DataType::I32);
    assert!(chans[3].is_virtual());
    assert_eq!(chans[3].index_key(), None);
    assert_eq!(chans[4].concurrency, Concurrency::Shared);
    // Keys are unique and increasing in batch order.
    for w in chans.windows(2) {
        assert!(w[0].key < w[1].key, "keys increase: {:?}", chans.iter().map(|c| c.key).collect::<Vec<_>>());
    }
    let deps: Vec<_> = engine.channels().dependents(idx).iter().map(|c| c.name.clone()).collect();
    assert_eq!(deps, vec!["pt_1", "pt_2", "tc_1"]);

    // A data channel can name an existing index by key, too.
    let d = engine.create_channel(NewChannel::data_with_key("pt_3", DataType::U16, idx)).unwrap();
    assert_eq!(d.kind, ChannelKind::Data { index: idx });

    let list = engine.channels().list();
    assert_eq!(list.len(), 6);
    assert!(list.windows(2).all(|w| w[0].key < w[1].key), "list is ordered by key");
    assert_eq!(engine.channels().keys_of(&["pt_2", "stand_time"]).unwrap(), vec![chans[2].key, idx]);
    let many = engine.channels().get_many(&[chans[1].key, chans[3].key]).unwrap();
    assert_eq!(many.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["pt_1", "valve_cmd"]);
}

#[test]
fn batch_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let err = engine
        .create_channels(vec![
            NewChannel::index("t"),
            NewChannel::data("ok", DataType::F64, "t"),
            NewChannel::data("bad", DataType::F64, "missing_index"),
        ])
        .unwrap_err();
    assert_eq!(channel_err(err), ChannelError::NameNotFound { name: "missing_index".into() });
    assert!(engine.channels().list().is_empty(), "nothing of a failed batch is created");
    assert!(engine.channels().by_name("t").is_err());
    // The names are free afterwards.
    let chans = engine.create_channels(vec![NewChannel::index("t"), NewChannel::data("ok", DataType::F64, "t")]).unwrap();
    assert_eq!(chans.len(), 2);
}

#[test]
fn duplicate_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = engine.create_channel(NewChannel::index("t")).unwrap();
    let e = channel_err(engine.create_channel(NewChannel::index("t")).unwrap_err());
    assert_eq!(e, ChannelError::NameTaken { name: "t".into(), existing: t.key });
    assert_eq!(engine.create_channel(NewChannel::index("t")).unwrap_err().code(), "channel.name_taken");

    // Duplicate inside one batch.
    let e = channel_err(engine.create_channels(vec![NewChannel::index("u"), NewChannel::index("u")]).unwrap_err());
    assert!(matches!(e, ChannelError::NameTaken { ref name, .. } if name == "u"), "{e:?}");
    assert!(engine.channels().by_name("u").is_err());
    assert_eq!(engine.channels().list().len(), 1);
}

#[test]
fn retrieve_if_name_exists_returns_existing_channels() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let first = engine.create_channels(vec![NewChannel::index("t"), NewChannel::data("a", DataType::F64, "t")]).unwrap();
    // Same names (even with a different definition) come back as they are; new ones are created.
    let again = engine
        .create_channels_with(
            vec![NewChannel::index("t"), NewChannel::data("a", DataType::I8, "t"), NewChannel::data("b", DataType::U8, "t")],
            true,
        )
        .unwrap();
    assert_eq!(again.len(), 3);
    assert_eq!(again[0], first[0]);
    assert_eq!(again[1], first[1]);
    assert_eq!(again[1].data_type, DataType::F64, "the existing definition is returned unchanged");
    assert_eq!(again[2].name, "b");
    assert_eq!(again[2].kind, ChannelKind::Data { index: first[0].key });
    assert_eq!(engine.channels().list().len(), 3);

    // Duplicates inside one batch resolve to the one created earlier in that batch.
    let dup = engine.create_channels_with(vec![NewChannel::index("x"), NewChannel::index("x")], true).unwrap();
    assert_eq!(dup[0], dup[1]);
    assert_eq!(engine.channels().list().len(), 4);
}

#[test]
fn invalid_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let long = "n".repeat(256);
    for bad in ["", " lead", "trail ", "tab\there", "nl\n", long.as_str()] {
        let e = engine.create_channel(NewChannel::index(bad)).unwrap_err();
        assert_eq!(e.code(), "channel.invalid", "{bad:?}");
        assert!(matches!(channel_err(e), ChannelError::InvalidName { ref name, .. } if name == bad));
    }
    // 255 bytes and non-ASCII are fine.
    engine.create_channel(NewChannel::index("n".repeat(255))).unwrap();
    engine.create_channel(NewChannel::index("druck_ü_°C / 1")).unwrap();
    assert_eq!(engine.channels().list().len(), 2);
}

#[test]
fn invalid_definitions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_channels(vec![NewChannel::index("t"), NewChannel::data("d", DataType::F64, "t")]).unwrap();

    // Index must hold timestamps.
    let mut bad = NewChannel::index("bad_index");
    bad.data_type = DataType::I64;
    let e = engine.create_channel(bad).unwrap_err();
    assert_eq!(e.code(), "channel.invalid_index");
    assert_eq!(channel_err(e), ChannelError::IndexNotTimestamp { name: "bad_index".into(), data_type: DataType::I64 });

    // Data channel without index.
    let mut no_index = NewChannel::data("orphan", DataType::F64, "t");
    no_index.index = None;
    let e = channel_err(engine.create_channel(no_index).unwrap_err());
    assert!(matches!(e, ChannelError::InvalidDefinition { ref name, .. } if name == "orphan"), "{e:?}");

    // Virtual with index.
    let mut v = NewChannel::virtual_("v", DataType::F64);
    v.index = Some(IndexRef::Name("t".into()));
    let e = channel_err(engine.create_channel(v).unwrap_err());
    assert!(matches!(e, ChannelError::InvalidDefinition { ref name, .. } if name == "v"), "{e:?}");

    // Index that is also virtual, or has an index itself.
    let mut iv = NewChannel::index("iv");
    iv.is_virtual = true;
    assert!(matches!(channel_err(engine.create_channel(iv).unwrap_err()), ChannelError::InvalidDefinition { .. }));
    let mut ii = NewChannel::index("ii");
    ii.index = Some(IndexRef::Name("t".into()));
    assert!(matches!(channel_err(engine.create_channel(ii).unwrap_err()), ChannelError::InvalidDefinition { .. }));

    // Data channel naming a non-index channel.
    let e = engine.create_channel(NewChannel::data("d2", DataType::F64, "d")).unwrap_err();
    assert_eq!(e.code(), "channel.invalid_index");
    assert_eq!(channel_err(e), ChannelError::NotAnIndex { name: "d2".into(), index: "d".into() });

    // Unknown index by key and by name.
    let e = engine.create_channel(NewChannel::data_with_key("d3", DataType::F64, 9999)).unwrap_err();
    assert_eq!(e.code(), "channel.not_found");
    assert_eq!(channel_err(e), ChannelError::KeyNotFound { key: 9999 });

    assert_eq!(engine.channels().list().len(), 2, "no failed definition was created");
}

#[test]
fn search_is_case_insensitive_substring() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine
        .create_channels(vec![
            NewChannel::index("stand_time"),
            NewChannel::data("PT_Ox_Inlet", DataType::F64, "stand_time"),
            NewChannel::data("pt_fuel_inlet", DataType::F64, "stand_time"),
            NewChannel::data("tc_ox", DataType::F32, "stand_time"),
        ])
        .unwrap();
    let names = |term: &str| engine.channels().search(term).iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(names("inlet"), ["PT_Ox_Inlet", "pt_fuel_inlet"]);
    assert_eq!(names("OX"), ["PT_Ox_Inlet", "tc_ox"]);
    assert_eq!(names("zzz"), Vec::<String>::new());
    assert_eq!(names("").len(), 4);
}

#[test]
fn rename_changes_name_and_refuses_collisions() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let chans = engine
        .create_channels(vec![NewChannel::index("t"), NewChannel::data("a", DataType::F64, "t"), NewChannel::data("b", DataType::F64, "t")])
        .unwrap();
    let renamed = engine.rename_channel(chans[1].key, "a2").unwrap();
    assert_eq!(renamed.name, "a2");
    assert_eq!(renamed.key, chans[1].key);
    assert_eq!(renamed.kind, chans[1].kind);
    assert_eq!(engine.channels().by_name("a2").unwrap().key, chans[1].key);
    assert!(engine.channels().by_name("a").is_err(), "the old name is gone");
    assert_eq!(engine.channels().get(chans[1].key).unwrap().name, "a2");

    // Collision.
    let e = engine.rename_channel(chans[1].key, "b").unwrap_err();
    assert_eq!(channel_err(e), ChannelError::NameTaken { name: "b".into(), existing: chans[2].key });
    assert_eq!(engine.channels().get(chans[1].key).unwrap().name, "a2", "a refused rename changes nothing");
    // Renaming to its own name is a no-op.
    assert_eq!(engine.rename_channel(chans[1].key, "a2").unwrap().name, "a2");
    // Invalid names and unknown keys.
    assert_eq!(engine.rename_channel(chans[1].key, " x").unwrap_err().code(), "channel.invalid");
    assert_eq!(channel_err(engine.rename_channel(4242, "x").unwrap_err()), ChannelError::KeyNotFound { key: 4242 });
    // The old name is free for a new channel.
    let a = engine.create_channel(NewChannel::data("a", DataType::U8, "t")).unwrap();
    assert_ne!(a.key, chans[1].key);

    // Renames persist.
    let engine = reopen(engine);
    assert_eq!(engine.channels().get(chans[1].key).unwrap().name, "a2");
    assert_eq!(engine.channels().by_name("a").unwrap().key, a.key);
}

#[test]
fn delete_index_with_dependents_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::I16]);
    let e = engine.delete_channels(&[g.idx()]).unwrap_err();
    assert_eq!(e.code(), "channel.index_in_use");
    match channel_err(e) {
        ChannelError::IndexInUse { name, mut dependents } => {
            assert_eq!(name, g.index.name);
            dependents.sort();
            let mut want: Vec<_> = g.data.iter().map(|c| c.name.clone()).collect();
            want.sort();
            assert_eq!(dependents, want);
        }
        other => panic!("{other:?}"),
    }
    // Still refused when only some dependents are deleted with it.
    assert!(matches!(channel_err(engine.delete_channels(&[g.idx(), g.data[0].key]).unwrap_err()), ChannelError::IndexInUse { .. }));
    assert_eq!(engine.channels().list().len(), 3, "a refused delete removes nothing");

    // Deleting a data channel alone works.
    engine.delete_channels(&[g.data[0].key]).unwrap();
    assert!(engine.channels().get(g.data[0].key).is_err());
    // Index and its last dependent together works.
    engine.delete_channels(&[g.idx(), g.data[1].key]).unwrap();
    assert!(engine.channels().list().is_empty());
    // Unknown keys.
    assert_eq!(channel_err(engine.delete_channels(&[g.idx()]).unwrap_err()), ChannelError::KeyNotFound { key: g.idx() });
}

#[test]
fn delete_with_data_removes_it_and_reading_the_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64]);
    common::write(&engine, 0, common::group_frame(&g, &[1, 2, 3], &[1, 2, 3]));
    engine.delete_channels(&[g.idx(), g.data[0].key]).unwrap();
    let e = engine.read(TimeRange::MAX, &[g.data[0].key]).unwrap_err();
    assert_eq!(e.code(), "channel.not_found");
    // A new channel with the same name starts empty.
    let g2 = create_group(&engine, "g", &[DataType::F64]);
    assert_eq!(g2.index.name, g.index.name);
    assert_eq!(engine.read(TimeRange::MAX, &[g2.data[0].key]).unwrap().samples(g2.data[0].key), 0);
    let engine = reopen(engine);
    assert_eq!(engine.read(TimeRange::MAX, &[g2.data[0].key, g2.idx()]).unwrap().len(), 0, "old data does not reappear");
}

#[test]
fn delete_while_writer_open_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64]);
    let w = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![g.data[0].key])).unwrap();
    let e = engine.delete_channels(&[g.data[0].key]).unwrap_err();
    assert_eq!(e.code(), "channel.busy");
    assert!(matches!(channel_err(e), ChannelError::Busy { .. }));
    // The index is held by the writer too.
    let e = engine.delete_channels(&[g.idx(), g.data[0].key]).unwrap_err();
    assert_eq!(e.code(), "channel.busy");
    w.close().unwrap();
    engine.delete_channels(&[g.idx(), g.data[0].key]).unwrap();
}

#[test]
fn registry_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let chans = engine
        .create_channels(vec![
            NewChannel::index("t"),
            NewChannel::data("a", DataType::F64, "t"),
            NewChannel::data("s", DataType::String, "t"),
            NewChannel::virtual_("v", DataType::Json),
            NewChannel::data("c", DataType::U32, "t").with_concurrency(Concurrency::Shared),
        ])
        .unwrap();
    engine.rename_channel(chans[2].key, "s_renamed").unwrap();
    engine.delete_channels(&[chans[1].key]).unwrap();
    let before: Vec<_> = engine.channels().list().iter().map(|c| (**c).clone()).collect();
    assert_eq!(before.len(), 4);

    let engine = reopen(engine);
    let after: Vec<_> = engine.channels().list().iter().map(|c| (**c).clone()).collect();
    assert_eq!(after, before);
    assert!(engine.channels().get(chans[1].key).is_err());
    assert_eq!(engine.channels().by_name("s_renamed").unwrap().key, chans[2].key);
    assert_eq!(engine.channels().by_name("v").unwrap().kind, ChannelKind::Virtual);

    // Stored channels created before the reopen are writable and readable.
    let t = chans[0].key;
    let c = chans[4].key;
    let f = Frame::new().with(t, Series::timestamps(vec![10, 20])).with(c, Series::from_vec(vec![7u32, 8]));
    engine.write(TimeStamp(0), f).unwrap();
    let back = engine.read(TimeRange::MAX, &[c]).unwrap();
    assert_eq!(back.concat(c).unwrap().unwrap().as_slice::<u32>().unwrap(), &[7, 8]);
}

#[test]
fn keys_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = engine.create_channels(vec![NewChannel::index("t"), NewChannel::data("a", DataType::F64, "t")]).unwrap();
    let max_before = a.iter().map(|c| c.key).max().unwrap();
    engine.delete_channels(&[a[0].key, a[1].key]).unwrap();
    let b = engine.create_channels(vec![NewChannel::index("t"), NewChannel::data("a", DataType::F64, "t")]).unwrap();
    assert!(b.iter().all(|c| c.key > max_before), "after delete: {a:?} vs {b:?}");
    let max_b = b.iter().map(|c| c.key).max().unwrap();
    engine.delete_channels(&[b[0].key, b[1].key]).unwrap();

    // Also across a reopen, and after a failed batch.
    let engine = reopen(engine);
    assert!(engine.create_channels(vec![NewChannel::index("z"), NewChannel::data("y", DataType::F64, "nope")]).is_err());
    let c = engine.create_channel(NewChannel::index("t")).unwrap();
    assert!(c.key > max_b, "after reopen: {} <= {max_b}", c.key);
}
