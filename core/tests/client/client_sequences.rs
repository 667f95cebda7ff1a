//! Control sequences (`Client::acquire`) on both backends: commands that take effect or
//! fail loudly, waits, the fixed-rate loop, the safe-state abort and the command record.

use crate::backends;

use std::time::Duration;

use backends::{Backend, SECOND, code};
use telemetron::Client;
use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::client::{SequenceConfig, Ticker, Until, Wait};
use telemetron::framer::WriterConfig;
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};

/// Channels for the sequence tests: a command `valve` (u8) and a sensor `press` (f64), each
/// on its own index.
async fn stand(c: &Client, prefix: &str) -> (ChannelKey, ChannelKey, ChannelKey) {
    let (vt, pt) = (format!("{prefix}_vt"), format!("{prefix}_pt"));
    let ch = c
        .create_channels(
            vec![
                NewChannel::index(&vt),
                NewChannel::data(format!("{prefix}_valve"), DataType::U8, &vt),
                NewChannel::index(&pt),
                NewChannel::data(format!("{prefix}_press"), DataType::F64, &pt),
            ],
            false,
        )
        .await
        .unwrap();
    (ch[1].key, ch[2].key, ch[3].key)
}

fn sequence(name: &str, write: &[ChannelKey], read: &[ChannelKey], authority: u8) -> SequenceConfig {
    let mut cfg = SequenceConfig::new(name);
    cfg.write = write.iter().map(|&k| k.into()).collect();
    cfg.read = read.iter().map(|&k| k.into()).collect();
    cfg.authorities = vec![authority];
    cfg
}

/// A sequence commands, waits on a sensor written by another client, holds a condition for
/// a while, and leaves a record of every command.
async fn sequences_command_wait_and_record(b: &Backend) {
    let c = &b.client;
    let (valve, pt, press) = stand(c, "seq").await;
    let seq = c.acquire(sequence("seq press", &[valve], &[press], 200)).await.unwrap();
    assert!(seq.has_control_all(), "{}", b.name());
    seq.set(vec![(valve.into(), Series::from_vec(vec![1u8]))]).await.unwrap();
    assert_eq!(seq.value(&valve.into()).unwrap().value_f64(0), Some(1.0));
    assert_eq!(seq.value(&press.into()), None, "no sensor value yet");

    // Another client writes the sensor; the sequence waits (async form, as Node drives it).
    let other = b.another().await;
    let feeder = tokio::spawn(async move {
        let mut w = other.open_writer(WriterConfig::new(TimeStamp::now(), vec![pt, press])).await.unwrap();
        for i in 1..=5i64 {
            let now = TimeStamp::now().0;
            w.write(&Frame::new().with(pt, Series::timestamps(vec![now])).with(press, Series::from_vec(vec![i as f64 * 20.0])))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        w.close().await.unwrap();
    });
    let mut wait = Wait::new(Until::True, Some(SECOND));
    let reached = loop {
        seq.observe(&mut wait).unwrap();
        let holds = seq.value(&press.into()).and_then(|s| s.value_f64(0)).is_some_and(|v| v >= 100.0);
        if let Some(answer) = wait.check(holds) {
            break answer;
        }
        seq.changed(&wait).await;
    };
    assert!(reached, "{}: the sensor reached 100 and the sequence saw it", b.name());
    feeder.await.unwrap();

    // Blocking form (as Python drives it): the pressure holds for 30 ms; a timeout is false.
    let held = tokio::task::block_in_place(|| {
        let mut w = Wait::new(Until::TrueFor(Duration::from_millis(30)), Some(SECOND));
        let started = std::time::Instant::now();
        let ok = seq.wait_blocking(&mut w, || Ok(seq.value(&press.into()).and_then(|s| s.value_f64(0)) == Some(100.0)), || Ok(())).unwrap();
        (ok, started.elapsed())
    });
    assert!(held.0 && held.1 >= Duration::from_millis(30), "{held:?}");
    let timed_out = tokio::task::block_in_place(|| {
        let mut w = Wait::new(Until::True, Some(Duration::from_millis(20)));
        seq.wait_blocking(&mut w, || Ok(false), || Ok(())).unwrap()
    });
    assert!(!timed_out);

    // Precise sleep and a fixed-rate loop.
    tokio::task::block_in_place(|| {
        let t0 = std::time::Instant::now();
        seq.sleep_blocking(Duration::from_millis(3), || Ok(())).unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(3));
        let mut ticker = Ticker::new(1000.0).unwrap().with_count(20);
        let mut n = 0;
        while seq.tick_blocking(&mut ticker, || Ok(())).unwrap().is_some() {
            n += 1;
        }
        assert_eq!((n, ticker.stats().ticks), (20, 20));
    });

    seq.set(vec![(valve.into(), Series::from_vec(vec![0u8]))]).await.unwrap();
    assert_eq!(
        code(seq.set(vec![(press.into(), Series::from_vec(vec![1.0f64]))]).await),
        "invalid_argument",
        "a read channel cannot be commanded"
    );
    seq.release().await.unwrap();
    seq.release().await.unwrap();
    assert_eq!(code(seq.set(vec![(valve.into(), Series::from_vec(vec![1u8]))]).await), "engine.closed");

    // The record: two commands, with their channel, value, authority and outcome.
    let rec = c
        .channels(&[
            "seq press/commands/time".into(),
            "seq press/commands/value".into(),
            "seq press/commands/outcome".into(),
            "seq press/commands/authority".into(),
        ])
        .await
        .unwrap();
    let f = c.read(TimeRange::MAX, &rec.iter().map(|c| c.key).collect::<Vec<_>>()).await.unwrap();
    let values = f.concat(rec[1].key).unwrap().unwrap();
    assert_eq!(values.as_slice::<f64>().unwrap(), &[1.0, 0.0], "{}", b.name());
    let outcome = f.concat(rec[2].key).unwrap().unwrap();
    assert_eq!((outcome.value_str(0), outcome.value_str(1)), (Some("ok"), Some("ok")));
    assert_eq!(f.concat(rec[3].key).unwrap().unwrap().as_slice::<u8>().unwrap(), &[200, 200]);
    // The valve's commands are stored like any write.
    assert_eq!(c.read(TimeRange::MAX, &[valve]).await.unwrap().concat(valve).unwrap().unwrap().as_slice::<u8>().unwrap(), &[1, 0]);
}

/// A higher authority takes the valve: the sequence hears of it, its next command fails
/// with `control.lost` (never a silent drop), and an abort writes the safe state only where
/// the sequence still has control.
async fn sequences_fail_loudly_when_control_is_lost(b: &Backend) {
    use std::sync::{Arc, Mutex as StdMutex};
    let c = &b.client;
    let (valve, _pt, _press) = stand(c, "lost").await;
    let heard: Arc<StdMutex<Vec<String>>> = Arc::default();
    let mut cfg = sequence("lost seq", &[valve], &[], 100);
    let h = heard.clone();
    cfg.on_lost = Some(Arc::new(move |names: &[String]| h.lock().unwrap().extend(names.iter().cloned())));
    cfg.safe = vec![(valve.into(), Series::from_vec(vec![0u8]))];
    let seq = c.acquire(cfg).await.unwrap();
    seq.set(vec![(valve.into(), Series::from_vec(vec![1u8]))]).await.unwrap();

    // Equal authority: commands are exclusive, the first holder keeps the valve.
    let twin = b
        .another()
        .await
        .acquire({
            let mut t = sequence("twin seq", &[valve], &[], 100);
            t.record = false;
            t
        })
        .await
        .unwrap();
    assert!(!twin.has_control(valve), "{}: two sequences at equal authority cannot both command", b.name());
    let e = twin.set(vec![(valve.into(), Series::from_vec(vec![7u8]))]).await.unwrap_err();
    assert_eq!(e.code(), "control.lost", "{e}");
    twin.release().await.unwrap();

    let other = b.another().await;
    let hi = other.acquire(sequence("operator", &[valve], &[], 250)).await.unwrap();
    let deadline = std::time::Instant::now() + SECOND;
    while heard.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(*heard.lock().unwrap(), vec!["lost_valve".to_string()], "{}", b.name());
    assert!(!seq.has_control(valve));
    let e = seq.set(vec![(valve.into(), Series::from_vec(vec![2u8]))]).await.unwrap_err();
    assert_eq!(e.code(), "control.lost", "{}: {e}", b.name());
    // Raised once: the next command is attempted, and refused as lost too.
    let e = seq.set(vec![(valve.into(), Series::from_vec(vec![3u8]))]).await.unwrap_err();
    assert_eq!(e.code(), "control.lost", "{}: {e}", b.name());
    // The abort cannot write the valve it lost.
    seq.abort().await.unwrap();
    hi.set(vec![(valve.into(), Series::from_vec(vec![9u8]))]).await.unwrap();
    hi.release().await.unwrap();
    let stored = c.read(TimeRange::MAX, &[valve]).await.unwrap().concat(valve).unwrap().unwrap();
    assert_eq!(stored.as_slice::<u8>().unwrap(), &[1, 9], "{}: only commands that took effect are stored", b.name());
    let outcome = c.channel("lost seq/commands/outcome").await.unwrap();
    let outcomes = c.read(TimeRange::MAX, &[outcome.key]).await.unwrap().concat(outcome.key).unwrap().unwrap();
    assert_eq!((0..outcomes.len()).filter_map(|i| outcomes.value_str(i)).collect::<Vec<_>>(), ["ok", "control.lost"]);

    // A sequence that still holds its valve puts it in the safe state on abort.
    let seq = c
        .acquire({
            let mut s = sequence("safe seq", &[valve], &[], 100);
            s.safe = vec![(valve.into(), Series::from_vec(vec![0u8]))];
            s
        })
        .await
        .unwrap();
    seq.set(vec![(valve.into(), Series::from_vec(vec![5u8]))]).await.unwrap();
    seq.abort().await.unwrap();
    let stored = c.read(TimeRange::MAX, &[valve]).await.unwrap().concat(valve).unwrap().unwrap();
    assert_eq!(stored.as_slice::<u8>().unwrap().last(), Some(&0), "{}", b.name());
    // Two sequences of one name cannot keep one record; once the first is released, a
    // new run of the same name records again.
    let first = c.acquire(sequence("same", &[], &[], 100)).await.unwrap();
    assert_eq!(code(c.acquire(sequence("same", &[], &[], 100)).await), "invalid_argument");
    first.release().await.unwrap();
    c.acquire(sequence("same", &[], &[], 100)).await.unwrap().release().await.unwrap();

    // Handing a valve over by lowering one's own authority is not a loss.
    let heard: Arc<StdMutex<Vec<String>>> = Arc::default();
    let mut cfg = sequence("yielding seq", &[valve], &[], 200);
    let h = heard.clone();
    cfg.on_lost = Some(Arc::new(move |names: &[String]| h.lock().unwrap().extend(names.iter().cloned())));
    let yielding = c.acquire(cfg).await.unwrap();
    let waiting = other.acquire(sequence("waiting seq", &[valve], &[], 150)).await.unwrap();
    yielding.set_authority(vec![(None, 10)]).await.unwrap();
    let deadline = std::time::Instant::now() + SECOND;
    while !waiting.has_control(valve) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(waiting.has_control(valve) && !yielding.has_control(valve), "{}", b.name());
    tokio::time::sleep(Duration::from_millis(50)).await; // let the transfer reach the follower
    yielding.check().unwrap();
    assert!(heard.lock().unwrap().is_empty(), "{}: a voluntary handoff is not a loss", b.name());
    // Taking it back and then losing it to a higher authority is one again.
    yielding.set_authority(vec![(None, 200)]).await.unwrap();
    waiting.set_authority(vec![(None, 250)]).await.unwrap();
    let deadline = std::time::Instant::now() + SECOND;
    while heard.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(*heard.lock().unwrap(), vec!["lost_valve".to_string()], "{}", b.name());
    // Lowering that keeps the valve hands nothing over: a later takeover is a loss again.
    waiting.set_authority(vec![(None, 100)]).await.unwrap();
    let deadline = std::time::Instant::now() + SECOND;
    while !yielding.has_control(valve) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(yielding.has_control(valve), "{}: control comes back to the higher authority", b.name());
    yielding.set_authority(vec![(None, 180)]).await.unwrap();
    assert!(yielding.has_control(valve), "{}: 180 still outranks 100", b.name());
    let _ = yielding.check();
    heard.lock().unwrap().clear();
    waiting.set_authority(vec![(None, 250)]).await.unwrap();
    let deadline = std::time::Instant::now() + SECOND;
    while heard.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(*heard.lock().unwrap(), vec!["lost_valve".to_string()], "{}: lowered but kept, then taken", b.name());
    waiting.release().await.unwrap();
    yielding.release().await.unwrap();
}

on_both!(sequences_command_wait_and_record, sequences_fail_loudly_when_control_is_lost);
