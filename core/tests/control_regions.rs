//! Control regions: how a writer's time range maps onto open writer regions.

#[test]
fn a_writer_spanning_two_open_regions_is_refused_clearly() {
    use telemetron::channel::NewChannel;
    use telemetron::framer::WriterConfig;
    use telemetron::telem::{DataType, TimeStamp};
    let dir = tempfile::tempdir().unwrap();
    let engine = telemetron::Engine::open(dir.path()).unwrap();
    let ch = engine.create_channels(vec![NewChannel::index("t"), NewChannel::data("v", DataType::F64, "t")]).unwrap();
    let _backfill = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![ch[1].key]).end(TimeStamp(100))).unwrap();
    let _live = engine.open_writer(WriterConfig::new(TimeStamp(200), vec![ch[1].key])).unwrap();
    let e = engine.open_writer(WriterConfig::new(TimeStamp(50), vec![ch[1].key])).unwrap_err();
    assert_eq!(e.code(), "write.invalid_config");
    assert!(e.to_string().contains("several open writer regions"), "{e}");
    // Inside one region it joins that region.
    engine.open_writer(WriterConfig::new(TimeStamp(250), vec![ch[1].key])).unwrap();
}
