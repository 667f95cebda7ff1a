//! Change capture on both backends: every change to channels and ranges reaches a watcher
//! once, in commit order, with what changed; refused changes and internal channels do not.

use crate::backends;

use std::collections::BTreeMap;
use std::time::Duration;

use backends::{Backend, code};
use telemetron::Change;
use telemetron::channel::{ChannelChange, Compression, NewChannel};
use telemetron::client::ChangeWatcher;
use telemetron::ranger::{NewRange, RangeChange};
use telemetron::telem::{DataType, TimeRange};

async fn next(w: &mut ChangeWatcher) -> Change {
    w.next_timeout(Duration::from_secs(5)).await.unwrap().expect("a change within 5 s")
}

async fn quiet(w: &mut ChangeWatcher) {
    let extra = w.next_timeout(Duration::from_millis(200)).await.unwrap();
    assert!(extra.is_none(), "unexpected change {extra:?}");
}

fn range(name: &str, parent: Option<uuid::Uuid>) -> NewRange {
    NewRange {
        name: name.into(),
        time_range: TimeRange::from_nanos(10, 20),
        labels: vec![],
        color: None,
        meta_data: BTreeMap::new(),
        parent,
    }
}

async fn channel_changes_are_published_in_order(b: &Backend) {
    let c = &b.client;
    let mut w = c.watch_changes().await.unwrap();
    let mut other = c.watch_changes().await.unwrap();
    let made = c.create_channels(vec![NewChannel::index("cc_t"), NewChannel::data("cc_p", DataType::F64, "cc_t")], false).await.unwrap();
    let (t, p) = (made[0].key, made[1].key);
    // Refused, or already there: nothing to report.
    assert_eq!(code(c.create_channels(vec![NewChannel::index("cc_t")], false).await), "channel.name_taken");
    c.create_channels(vec![NewChannel::index("cc_t")], true).await.unwrap();
    c.rename_channel(p, "cc_pressure").await.unwrap();
    c.rename_channel(p, "cc_pressure").await.unwrap(); // same name: no change
    c.set_channel_compression(p, Compression::Zstd).await.unwrap();
    c.set_channel_compression(p, Compression::Zstd).await.unwrap(); // the same: no change
    assert_eq!(code(c.set_channel_compression(t, Compression::Zstd).await), "channel.invalid"); // refused
    c.delete_channels(&[p, t]).await.unwrap();
    for w in [&mut w, &mut other] {
        assert_eq!(next(w).await, Change::Channel(ChannelChange::Created { channels: made.clone() }), "{}", b.name());
        match next(w).await {
            Change::Channel(ChannelChange::Renamed { channels }) => {
                assert_eq!((channels[0].key, channels[0].name.as_str()), (p, "cc_pressure"))
            }
            other => panic!("{other:?}"),
        }
        match next(w).await {
            Change::Channel(ChannelChange::Updated { channels }) => {
                assert_eq!((channels[0].key, channels[0].compression), (p, Compression::Zstd))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(next(w).await, Change::Channel(ChannelChange::Deleted { keys: vec![p, t] }));
        quiet(w).await;
    }
    w.close().await;
    // A closed watcher does not hold up the others.
    c.create_channels(vec![NewChannel::index("cc_u")], false).await.unwrap();
    assert!(matches!(next(&mut other).await, Change::Channel(ChannelChange::Created { .. })));
}

async fn range_changes_are_published_in_order(b: &Backend) {
    let c = &b.client;
    let mut w = c.watch_changes().await.unwrap();
    let parent = c.create_range(range("cc run", None)).await.unwrap();
    let child = c.create_range(range("cc ignition", Some(parent.key))).await.unwrap();
    c.rename_range(parent.key, "cc run 2").await.unwrap();
    c.set_range_labels(child.key, vec!["hot".into()]).await.unwrap();
    let mut meta = BTreeMap::new();
    meta.insert("operator".to_string(), "ada".to_string());
    c.set_range_meta(parent.key, meta.clone()).await.unwrap();
    c.delete_range_meta(parent.key, &["operator".to_string(), "absent".to_string()]).await.unwrap();
    c.delete_range_meta(parent.key, &["absent".to_string()]).await.unwrap(); // nothing removed
    c.delete_ranges(&[parent.key, uuid::Uuid::new_v4()]).await.unwrap();
    assert_eq!(next(&mut w).await, Change::Range(RangeChange::Created { ranges: vec![parent.clone()] }), "{}", b.name());
    assert_eq!(next(&mut w).await, Change::Range(RangeChange::Created { ranges: vec![child.clone()] }));
    match next(&mut w).await {
        Change::Range(RangeChange::Updated { ranges }) => assert_eq!(ranges[0].name, "cc run 2"),
        other => panic!("{other:?}"),
    }
    match next(&mut w).await {
        Change::Range(RangeChange::Updated { ranges }) => {
            assert_eq!((ranges[0].key, ranges[0].labels.clone()), (child.key, vec!["hot".to_string()]))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(next(&mut w).await, Change::Range(RangeChange::Meta { key: parent.key, set: meta, deleted: vec![] }));
    assert_eq!(
        next(&mut w).await,
        Change::Range(RangeChange::Meta { key: parent.key, set: BTreeMap::new(), deleted: vec!["operator".into()] })
    );
    // The child goes with its parent, and is named.
    assert_eq!(next(&mut w).await, Change::Range(RangeChange::Deleted { keys: vec![parent.key, child.key] }));
    quiet(&mut w).await;
}

async fn the_change_channel_is_a_system_channel(b: &Backend) {
    let c = &b.client;
    let key = c.changes_channel().await.unwrap();
    let ch = c.channel(telemetron::CHANGES_CHANNEL).await.unwrap();
    assert_eq!((ch.key, ch.data_type, ch.is_virtual()), (key, DataType::Json, true));
    // Not a user channel: hidden from searches, and it cannot be deleted.
    assert!(c.search_channels("telemetron_changes").await.unwrap().is_empty(), "{}", b.name());
    assert_eq!(code(c.delete_channels(&[key]).await), "invalid_argument");
    assert_eq!(code(c.rename_channel(key, "mine").await), "invalid_argument");
    let control = c.control_channel().await.unwrap();
    assert_eq!(code(c.rename_channel(control, "mine").await), "invalid_argument");
    assert_eq!(code(c.set_channel_compression(control, Compression::Off).await), "invalid_argument");
}

on_both!(channel_changes_are_published_in_order, range_changes_are_published_in_order, the_change_channel_is_a_system_channel);
