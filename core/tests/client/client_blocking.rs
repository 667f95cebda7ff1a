//! Blocking use from plain threads (what the Python binding does with the GIL released):
//! `next_blocking` outside any runtime on both backends, and its refusal inside one on the
//! remote backend.

use crate::backends;

use std::time::Duration;

use backends::Backend;
use telemetron::channel::NewChannel;
use telemetron::framer::{WriterConfig, WriterMode};
use telemetron::relay::StreamerConfig;
use telemetron::telem::{DataType, Frame, Series, TimeStamp};

fn run(remote: bool) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let b = rt.block_on(async { if remote { Backend::remote().await } else { Backend::embedded().await } });
    let c = b.client.clone();
    let (key, mut s, mut w) = rt.block_on(async {
        let key = c.create_channels(vec![NewChannel::virtual_("blk", DataType::U16)], false).await.unwrap()[0].key;
        let s = c.open_streamer(StreamerConfig::new(vec![key])).await.unwrap();
        let w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![key]).mode(WriterMode::Stream)).await.unwrap();
        (key, s, w)
    });
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < 3 {
            match s.next_blocking(Duration::from_secs(5)).expect("receive") {
                Some(f) => got.extend_from_slice(f.concat(key).unwrap().unwrap().as_slice::<u16>().unwrap()),
                None => panic!("no frame within 5 s"),
            }
        }
        assert!(s.next_blocking(Duration::from_millis(50)).unwrap().is_none(), "times out with None");
        assert!(s.try_next().unwrap().is_none());
        got
    });
    rt.block_on(async {
        for v in [7u16, 8, 9] {
            w.write(&Frame::new().with(key, Series::from_vec(vec![v]))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(reader.join().unwrap(), vec![7, 8, 9]);
    if remote {
        // Inside a runtime the remote backend refuses instead of deadlocking.
        let mut s2 = rt.block_on(c.open_streamer(StreamerConfig::new(vec![key]))).unwrap();
        let e = rt.block_on(async { s2.next_blocking(Duration::from_millis(10)) }).unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
    }
    rt.block_on(async { w.close().await.unwrap() });
    drop(b);
}

#[test]
fn next_blocking_from_a_plain_thread_embedded() {
    run(false);
}

#[test]
fn next_blocking_from_a_plain_thread_remote() {
    run(true);
}
