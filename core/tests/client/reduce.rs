//! Reductions on both backends: every reduced point checked against a brute-force
//! reduction of the same samples read in full, over several writes with gaps, NaN, integer
//! and boolean channels, a data channel missing part of its index, iterators and errors.

use crate::backends;

use backends::{Backend, code};
use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::framer::{IterSpan, IteratorConfig};
use telemetron::telem::{DataType, Frame, ReduceMethod, Reduction, Series, TimeRange, TimeSpan, TimeStamp};

/// The reference: reduce `(ts, values)` (in time order) by the rules of
/// `telemetron::telem::Reduction`, one sample at a time.
fn brute(ts: &[i64], v: &[f64], r: &Reduction) -> (Vec<i64>, Vec<f64>) {
    let (mut t_out, mut v_out) = (Vec::new(), Vec::new());
    let (Some(&start), Some(&end)) = (ts.first(), ts.last()) else { return (t_out, v_out) };
    let buckets = match r.method {
        ReduceMethod::MinMax => i128::from(r.points / 2),
        ReduceMethod::Average => i128::from(r.points),
    }
    .max(1);
    let span = i128::from(end) - i128::from(start) + 1;
    let width = ((span + buckets - 1) / buckets).max(1);
    let mut i = 0;
    while i < ts.len() {
        let b = (i128::from(ts[i]) - i128::from(start)) / width;
        let mut j = i;
        while j < ts.len() && (i128::from(ts[j]) - i128::from(start)) / width == b {
            j += 1;
        }
        let (tb, vb) = (&ts[i..j], &v[i..j]);
        let ok: Vec<(usize, f64)> = vb.iter().copied().enumerate().filter(|(_, x)| !x.is_nan()).collect();
        match r.method {
            ReduceMethod::MinMax => {
                let lo = ok.iter().copied().fold(None, |a: Option<(usize, f64)>, x| if a.is_none_or(|a| x.1 < a.1) { Some(x) } else { a });
                let hi = ok.iter().copied().fold(None, |a: Option<(usize, f64)>, x| if a.is_none_or(|a| x.1 > a.1) { Some(x) } else { a });
                let (lo, hi) = (lo.unwrap_or((0, f64::NAN)), hi.unwrap_or((0, f64::NAN)));
                if tb.len() == 1 {
                    t_out.push(tb[0]);
                    v_out.push(vb[0]);
                } else {
                    t_out.extend([tb[0], tb[tb.len() - 1]]);
                    v_out.extend(if lo.0 <= hi.0 { [lo.1, hi.1] } else { [hi.1, lo.1] });
                }
            }
            ReduceMethod::Average => {
                t_out.push(tb[0] + (tb[tb.len() - 1] - tb[0]) / 2);
                v_out.push(if ok.is_empty() { f64::NAN } else { ok.iter().map(|x| x.1).sum::<f64>() / ok.len() as f64 });
            }
        }
        i = j;
    }
    (t_out, v_out)
}

fn f64s(s: &Series) -> Vec<f64> {
    (0..s.len()).map(|i| s.value_f64(i).unwrap()).collect()
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(1.0))
}

struct Chans {
    t: ChannelKey,
    p: ChannelKey,
    n: ChannelKey,
    b: ChannelKey,
    s: ChannelKey,
}

/// Three writes with gaps between them: a noisy f64 with NaN, an i32 sawtooth with a spike,
/// a valve state as bool, and a string channel that cannot be reduced.
async fn history(b: &Backend) -> Chans {
    let c = &b.client;
    let ch = c
        .create_channels(
            vec![
                NewChannel::index("red_t"),
                NewChannel::data("red_p", DataType::F64, "red_t"),
                NewChannel::data("red_n", DataType::I32, "red_t"),
                NewChannel::data("red_b", DataType::Bool, "red_t"),
                NewChannel::data("red_s", DataType::String, "red_t"),
            ],
            false,
        )
        .await
        .unwrap();
    let k = Chans { t: ch[0].key, p: ch[1].key, n: ch[2].key, b: ch[3].key, s: ch[4].key };
    let mut seed = 7u64;
    for (start, len, step) in [(1_000i64, 5_000i64, 10i64), (200_000, 3_000, 7), (300_000, 1, 1)] {
        let ts: Vec<i64> = (0..len).map(|i| start + i * step).collect();
        let p: Vec<f64> = ts
            .iter()
            .map(|&t| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                if seed.is_multiple_of(97) { f64::NAN } else { (t as f64 / 3_000.0).sin() + (seed >> 40) as f64 / 1e7 }
            })
            .collect();
        let n: Vec<i32> = ts.iter().map(|&t| if t == 201_337 { 1_000_000 } else { (t % 1_000) as i32 - 500 }).collect();
        let bools: Vec<bool> = ts.iter().map(|&t| (t / 5_000) % 2 == 0).collect();
        let strings: Vec<String> = ts.iter().map(|t| t.to_string()).collect();
        let f = Frame::new()
            .with(k.t, Series::timestamps(ts))
            .with(k.p, Series::from_vec(p))
            .with(k.n, Series::from_vec(n))
            .with(k.b, Series::bools(&bools))
            .with(k.s, Series::strings(&strings));
        c.write(TimeStamp(start), f).await.unwrap();
    }
    k
}

/// Reduce `keys` over `range` and compare every channel with the brute force of a full read.
async fn check(b: &Backend, k: &Chans, range: TimeRange, keys: &[ChannelKey], r: Reduction) {
    let c = &b.client;
    let got = c.read_reduced(range, keys, r).await.unwrap();
    let full = c.read(range, &[k.t, k.p, k.n, k.b]).await.unwrap();
    let ts = full.concat(k.t).unwrap().map(|s| s.as_timestamps().unwrap().to_vec()).unwrap_or_default();
    for &key in keys {
        let Some(s) = got.concat(key).unwrap() else {
            assert!(ts.is_empty(), "{} {r}: channel {key} missing", b.name());
            continue;
        };
        assert!(s.len() <= r.points as usize, "{} {r}: {} points", b.name(), s.len());
        if key == k.t {
            let (want, _) = brute(&ts, &vec![0.0; ts.len()], &r);
            assert_eq!(s.as_timestamps().unwrap(), want.as_slice(), "{} {r}: index", b.name());
            continue;
        }
        let v = f64s(&full.concat(key).unwrap().unwrap());
        let (_, want) = brute(&ts, &v, &r);
        let expect_type = match r.method {
            ReduceMethod::Average => DataType::F64,
            ReduceMethod::MinMax => full.concat(key).unwrap().unwrap().data_type(),
        };
        assert_eq!(s.data_type(), expect_type, "{} {r}", b.name());
        assert!(
            same(&f64s(&s), &want),
            "{} {r}: channel {key}\n got {:?}\nwant {:?}",
            b.name(),
            &f64s(&s)[..want.len().min(8)],
            &want[..want.len().min(8)]
        );
        // Every reduced series carries the time range of its points.
        let t = got.concat(k.t).unwrap().map(|t| t.as_timestamps().unwrap().to_vec());
        if let Some(t) = t {
            assert_eq!(s.time_range(), TimeRange::from_nanos(t[0], t[t.len() - 1] + 1));
        }
    }
}

async fn reductions_match_brute_force(b: &Backend) {
    let k = history(b).await;
    let all = [k.t, k.p, k.n, k.b];
    for points in [2, 3, 10, 101, 2_000, 20_000] {
        for method in [ReduceMethod::MinMax, ReduceMethod::Average] {
            let r = Reduction { points, method };
            check(b, &k, TimeRange::MAX, &all, r).await;
            // A window inside one write, one across the gap, one over the last lone sample.
            check(b, &k, TimeRange::from_nanos(2_345, 40_001), &all, r).await;
            check(b, &k, TimeRange::from_nanos(30_000, 210_000), &[k.p, k.t], r).await;
            check(b, &k, TimeRange::from_nanos(299_999, 400_000), &all, r).await;
        }
    }
    // The spike survives a reduction 400 times smaller.
    let got = b.client.read_reduced(TimeRange::MAX, &[k.n], Reduction::min_max(40)).await.unwrap();
    assert!(got.concat(k.n).unwrap().unwrap().as_slice::<i32>().unwrap().contains(&1_000_000), "{}", b.name());
    // Without the index requested, only the data channel comes back; an empty range gives nothing.
    assert_eq!(got.unique_keys(), [k.n]);
    let none = b.client.read_reduced(TimeRange::from_nanos(60_000, 70_000), &[k.p, k.t], Reduction::min_max(10)).await.unwrap();
    assert!(none.is_empty(), "{none:?}");
    // A channel with no samples at all is left out and does not hide its siblings' points.
    let empty = b.client.create_channels(vec![NewChannel::data("red_empty", DataType::F64, "red_t")], false).await.unwrap()[0].key;
    let with = b.client.read_reduced(TimeRange::MAX, &[k.p, empty, k.t], Reduction::min_max(100)).await.unwrap();
    let without = b.client.read_reduced(TimeRange::MAX, &[k.p, k.t], Reduction::min_max(100)).await.unwrap();
    assert!(with.samples(k.p) > 0, "{}", b.name());
    assert_eq!(with, without, "{}", b.name());
    assert!(!with.contains(empty));
}

async fn reductions_skip_buckets_a_channel_lacks(b: &Backend) {
    let k = history(b).await;
    // The f64 channel loses 10,000..20,000 (its index keeps it).
    b.client.delete(TimeRange::from_nanos(10_000, 20_000), &[k.p]).await.unwrap();
    let r = Reduction::average(100);
    let both = b.client.read_reduced(TimeRange::from_nanos(1_000, 51_000), &[k.t, k.p, k.n], r).await.unwrap();
    let alone = b.client.read_reduced(TimeRange::from_nanos(1_000, 51_000), &[k.t, k.n], r).await.unwrap();
    let tb = both.concat(k.t).unwrap().unwrap();
    let ta = alone.concat(k.t).unwrap().unwrap();
    assert_eq!(ta.len(), 100, "{}", b.name());
    // The buckets wholly inside the hole are left out, for every channel of the group.
    let inside = ta.as_timestamps().unwrap().iter().filter(|&&t| (10_500..19_500).contains(&t)).count();
    assert!(inside >= 15, "{inside}");
    assert!(tb.len() <= 100 - inside && tb.len() >= 100 - inside - 2, "{} of 100 kept, {inside} in the hole", tb.len());
    assert_eq!(both.samples(k.p), tb.len());
    assert_eq!(both.samples(k.n), tb.len());
}

async fn iterators_reduce_each_chunk(b: &Backend) {
    let k = history(b).await;
    let r = Reduction::min_max(50);
    // By samples: every chunk within the bound, index and data alike.
    let cfg = IteratorConfig { chunk_size: 1_000, reduce: Some(r), ..IteratorConfig::new(TimeRange::MAX, vec![k.p, k.t]) };
    let mut it = b.client.open_iterator(cfg).await.unwrap();
    assert!(it.seek_first().await.unwrap());
    let (mut chunks, mut points) = (0, 0);
    while it.next(IterSpan::Auto).await.unwrap() {
        let f = it.take_value();
        let n = f.samples(k.t);
        assert!(n <= 50 && n == f.samples(k.p), "{} chunk {chunks}: {n} points", b.name());
        chunks += 1;
        points += n;
    }
    assert_eq!(chunks, 9, "{}", b.name()); // 8,001 samples in chunks of 1,000
    assert!(points > 8 * 40, "{points}");
    // By time: each chunk is the reduction of its own window.
    let cfg = IteratorConfig { reduce: Some(r), ..IteratorConfig::new(TimeRange::MAX, vec![k.p, k.t]) };
    let mut it = b.client.open_iterator(cfg).await.unwrap();
    assert!(it.seek_first().await.unwrap());
    let mut from = 1_000;
    let mut windows = 0;
    while it.next(IterSpan::Time(TimeSpan(10_000))).await.unwrap() {
        let want = b.client.read_reduced(TimeRange::from_nanos(from, from + 10_000), &[k.p, k.t], r).await.unwrap();
        assert_eq!(it.value(), &want, "{} window at {from}", b.name());
        from += 10_000;
        windows += 1;
    }
    assert_eq!(windows, 30, "{}", b.name());
}

async fn reductions_refuse_what_they_cannot_do(b: &Backend) {
    let k = history(b).await;
    let c = &b.client;
    assert_eq!(code(c.read_reduced(TimeRange::MAX, &[k.s], Reduction::min_max(10)).await), "invalid_argument");
    assert_eq!(code(c.read_reduced(TimeRange::MAX, &[k.p], Reduction::min_max(1)).await), "invalid_argument");
    assert_eq!(code(c.read_reduced(TimeRange::MAX, &[k.p], Reduction::average(0)).await), "invalid_argument");
    assert_eq!(code(c.read_reduced(TimeRange::MAX, &[k.p], Reduction::average(Reduction::MAX_POINTS + 1)).await), "invalid_argument");
    assert_eq!(code(c.read_reduced(TimeRange::from_nanos(10, 5), &[k.p], Reduction::average(10)).await), "invalid_argument");
    assert_eq!(code(c.read_reduced(TimeRange::MAX, &[99_999], Reduction::average(10)).await), "channel.not_found");
    let cfg = IteratorConfig { reduce: Some(Reduction::min_max(10)), ..IteratorConfig::new(TimeRange::MAX, vec![k.s]) };
    assert_eq!(code(c.open_iterator(cfg).await.map(|_| ())), "invalid_argument");
    // The message says what to do.
    let e = c.read_reduced(TimeRange::MAX, &[k.s], Reduction::min_max(10)).await.unwrap_err();
    assert!(e.to_string().contains("without a reduction"), "{e}");
    // Nothing was harmed: the full read still sees every sample.
    assert_eq!(c.read(TimeRange::MAX, &[k.s]).await.unwrap().samples(k.s), 8_001);
}

on_both!(
    reductions_match_brute_force,
    reductions_skip_buckets_a_channel_lacks,
    iterators_reduce_each_chunk,
    reductions_refuse_what_they_cannot_do,
);
