//! Engine lifecycle: close releases the directory; handles left open refuse work safely.

use crate::common;

use common::*;
use telemetron::framer::{IterSpan, IteratorConfig, WriterConfig};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeSpan, TimeStamp};
use telemetron::{Engine, Error};

#[test]
fn close_releases_the_directory_while_handles_are_alive() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let g = create_group(&engine, "g", &[DataType::F64]);
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys()).auto_commit(false)).unwrap();
    w.write(&group_frame(&g, &[1, 2], &[1, 2])).unwrap();
    w.commit().unwrap();
    w.write(&group_frame(&g, &[3], &[3])).unwrap(); // never committed
    let clone = engine.clone();
    engine.close().unwrap();
    // Reopen at once although a clone and a writer of the old engine are still alive.
    let again = Engine::open(dir.path()).expect("close must release the directory");
    assert!(matches!(w.write(&group_frame(&g, &[4], &[4])), Err(Error::Closed { .. })));
    assert!(matches!(w.commit(), Err(Error::Closed { .. })));
    assert!(matches!(clone.read(TimeRange::MAX, &[g.idx()]), Err(Error::Closed { .. })));
    drop(w); // must not touch the files the new engine now owns
    drop(clone);
    assert_eq!(read_ts(&again, TimeRange::MAX, g.idx()), vec![1, 2]);
    let mut w2 = again.open_writer(WriterConfig::new(TimeStamp(10), g.keys())).unwrap();
    w2.write(&group_frame(&g, &[10], &[10])).unwrap();
    w2.close().unwrap();
    again.close().unwrap();
    let third = Engine::open(dir.path()).unwrap();
    assert_eq!(read_ts(&third, TimeRange::MAX, g.idx()), vec![1, 2, 10]);
}

#[test]
fn time_span_iteration_crosses_gaps_longer_than_the_span() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let g = create_group(&engine, "g", &[DataType::I32]);
    let ts = vec![0, 1, 1_000, 1_001];
    let mut f = Frame::new().with(g.idx(), Series::timestamps(ts.clone()));
    f.push(g.data[0].key, Series::from_vec(vec![0i32, 1, 2, 3]));
    engine.write(TimeStamp(0), f).unwrap();
    let mut it = engine.open_iterator(IteratorConfig::new(TimeRange::MAX, vec![g.data[0].key])).unwrap();
    assert!(it.seek_first().unwrap());
    let mut seen = 0;
    let mut calls = 0;
    while it.next(IterSpan::Time(TimeSpan(10))).unwrap() {
        seen += it.value().samples(g.data[0].key);
        calls += 1;
        assert!(calls < 1_000, "iteration must end");
    }
    assert_eq!(seen, 4, "a gap longer than the span must not end the iteration");
    let mut back = 0;
    assert!(it.seek_last().unwrap());
    while it.prev(IterSpan::Time(TimeSpan(10))).unwrap() {
        back += it.value().samples(g.data[0].key);
    }
    assert_eq!(back, 4);
}
