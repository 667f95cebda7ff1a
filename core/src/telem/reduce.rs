//! Reductions: a read shrunk to a target number of points next to the data, so a plot of
//! a day at 1 kHz moves 2,000 points over the wire instead of 86 million samples.
//!
//! The time covered by an index group's samples is cut into equal buckets. Every data
//! channel of the group is reduced over the same buckets, so the reduced channels still
//! share one reduced index:
//! - [`ReduceMethod::MinMax`] keeps, per bucket, the lowest and the highest sample in the
//!   order they occurred, at the bucket's first and last timestamps. Every peak survives,
//!   and a point is off in time by less than one bucket. A bucket holding one sample keeps
//!   it as it is. `points / 2` buckets, so at most `points` points.
//! - [`ReduceMethod::Average`] keeps the mean of each bucket's samples (as `f64`) at the
//!   middle of the bucket's first and last timestamps. `points` buckets.
//!
//! Buckets without samples emit nothing (a gap stays a gap). A bucket is emitted when every
//! requested data channel of the group has a sample in it. NaN samples are skipped; a bucket
//! holding only NaN reduces to NaN. Reduced series carry their time range but no storage
//! alignment: their samples are not stored samples.
//!
//! [`reduce_frame`] works on any frame read from storage (series aligned to their index
//! by [`Alignment`]): the engine's reads and iterators call it on zero-copy views, so a
//! reduction costs one pass over the samples and no copy of them.

use serde::{Deserialize, Serialize};

use super::{Alignment, ChannelKey, DataType, Frame, Sample, Series, SeriesError, TimeRange};

/// How a bucket is reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub enum ReduceMethod {
    /// The lowest and the highest sample of each bucket, in the order they occurred.
    #[default]
    #[serde(rename = "minmax")]
    MinMax,
    /// The mean of each bucket's samples, as `f64`.
    #[serde(rename = "average")]
    Average,
}

impl std::fmt::Display for ReduceMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReduceMethod::MinMax => "minmax",
            ReduceMethod::Average => "average",
        })
    }
}

impl std::str::FromStr for ReduceMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<ReduceMethod, String> {
        match s {
            "minmax" | "min_max" | "min-max" => Ok(ReduceMethod::MinMax),
            "average" | "avg" | "mean" => Ok(ReduceMethod::Average),
            other => Err(format!("unknown reduction {other:?}: use \"minmax\" (keeps every peak) or \"average\"")),
        }
    }
}

/// A reduction of a read to at most `points` points per channel.
///
/// # Examples
///
/// ```
/// use telemetron::telem::{ReduceMethod, Reduction};
///
/// let r: Reduction = serde_json::from_str(r#"{"points": 2000}"#).unwrap();
/// assert_eq!(r, Reduction::min_max(2000));
/// assert!(Reduction::min_max(1).validate().is_err()); // a min and a max need two points
/// assert_eq!(Reduction { points: 500, method: ReduceMethod::Average }.to_string(), "average to 500 points");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reduction {
    /// The most points returned per channel.
    pub points: u32,
    /// How each bucket is reduced (min-max by default).
    #[serde(default)]
    pub method: ReduceMethod,
}

impl std::fmt::Display for Reduction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} to {} points", self.method, self.points)
    }
}

impl Reduction {
    /// The most points a reduction may ask for (per channel).
    pub const MAX_POINTS: u32 = 10_000_000;

    /// Min-max to at most `points` points.
    pub const fn min_max(points: u32) -> Reduction {
        Reduction { points, method: ReduceMethod::MinMax }
    }

    /// Averages to at most `points` points.
    pub const fn average(points: u32) -> Reduction {
        Reduction { points, method: ReduceMethod::Average }
    }

    /// A reduction from an SDK's arguments: a number of points and a method's name
    /// (`"minmax"` when `None`), checked.
    ///
    /// # Errors
    /// An unknown method or a number of points out of range, and what to ask for instead.
    pub fn from_parts(points: u64, method: Option<&str>) -> Result<Reduction, String> {
        let method = method.map_or(Ok(ReduceMethod::MinMax), str::parse)?;
        let r = Reduction { points: u32::try_from(points).unwrap_or(u32::MAX), method };
        r.validate()?;
        Ok(r)
    }

    /// Check the request.
    ///
    /// # Errors
    /// What is wrong and what to ask for instead.
    pub fn validate(&self) -> Result<(), String> {
        let least = match self.method {
            ReduceMethod::MinMax => 2,
            ReduceMethod::Average => 1,
        };
        if self.points < least || self.points > Reduction::MAX_POINTS {
            return Err(format!(
                "a {} reduction takes {least} to {} points, not {}; ask for about the width of the plot in pixels",
                self.method,
                Reduction::MAX_POINTS,
                self.points
            ));
        }
        Ok(())
    }

    fn buckets(&self) -> u64 {
        match self.method {
            ReduceMethod::MinMax => u64::from(self.points / 2),
            ReduceMethod::Average => u64::from(self.points),
        }
        .max(1)
    }
}

/// True if channels of type `dt` can be reduced: numbers, booleans and timestamps.
pub fn reducible(dt: DataType) -> bool {
    !matches!(dt, DataType::Uuid | DataType::String | DataType::Json | DataType::Bytes)
}

/// An index channel and the channels read with it (the index itself may be one of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReduceGroup {
    /// The index channel; its series must be in the frame.
    pub index: ChannelKey,
    /// The channels of the group to output (data channels, and the index if requested).
    pub members: Vec<ChannelKey>,
}

/// Reduce a frame read from storage: one series per key of `order` (keys without samples
/// in the frame are left out), each at most `r.points` long.
///
/// # Errors
/// [`SeriesError::TypeMismatch`] for a channel that cannot be reduced (see [`reducible`]).
pub fn reduce_frame(frame: &Frame, groups: &[ReduceGroup], order: &[ChannelKey], r: &Reduction) -> Result<Frame, SeriesError> {
    let mut out: Vec<(ChannelKey, Series)> = Vec::new();
    for g in groups {
        out.extend(reduce_group(frame, g, r)?);
    }
    let mut f = Frame::with_capacity(order.len());
    for k in order {
        if let Some(at) = out.iter().position(|(o, _)| o == k) {
            let (k, s) = out.swap_remove(at);
            f.push(k, s);
        }
    }
    Ok(f)
}

/// A non-empty bucket of the index.
#[derive(Debug, Clone, Copy)]
struct Slot {
    bucket: u64,
    first_ts: i64,
    last_ts: i64,
    n: u64,
}

/// Positions `[lo, hi)` of one domain that fall in one slot; `ord` is the group-wide
/// ordinal of `lo` (to tell which of a bucket's min and max came first).
#[derive(Debug, Clone, Copy)]
struct Seg {
    slot: usize,
    domain: u32,
    lo: u32,
    hi: u32,
    ord: u64,
}

/// The buckets of a group: slots in time order and the segments that fill them.
struct Grid {
    slots: Vec<Slot>,
    segs: Vec<Seg>,
    /// `(domain, first seg, end seg)`: a domain's segments are contiguous and sorted by
    /// position, since the index is read domain by domain in time order.
    domains: Vec<(u32, usize, usize)>,
}

impl Grid {
    fn build(index: &[&Series], r: &Reduction) -> Result<Option<Grid>, SeriesError> {
        let mut start = i64::MAX;
        let mut end = i64::MIN;
        for s in index {
            let t = s.as_timestamps()?;
            if let (Some(&a), Some(&b)) = (t.first(), t.last()) {
                start = start.min(a);
                end = end.max(b);
            }
        }
        if start > end {
            return Ok(None);
        }
        let span = i128::from(end) - i128::from(start) + 1;
        let buckets = i128::from(r.buckets());
        let width = ((span + buckets - 1) / buckets).max(1);
        let bucket_of = |t: i64| ((i128::from(t) - i128::from(start)) / width) as u64;
        let mut slots: Vec<Slot> = Vec::new();
        let mut segs = Vec::new();
        let mut ord = 0u64;
        for s in index {
            let t = s.as_timestamps()?;
            let a = s.alignment();
            let mut i = 0usize;
            while let Some(&first) = t.get(i) {
                let b = bucket_of(first);
                let limit = i128::from(start) + (i128::from(b) + 1) * width;
                let j = i + t[i..].partition_point(|&x| i128::from(x) < limit);
                let last = t[j - 1];
                let n = (j - i) as u64;
                match slots.last_mut() {
                    Some(sl) if sl.bucket == b => {
                        sl.last_ts = last;
                        sl.n += n;
                    }
                    _ => slots.push(Slot { bucket: b, first_ts: first, last_ts: last, n }),
                }
                let lo = a.sample().saturating_add(i as u32);
                segs.push(Seg { slot: slots.len() - 1, domain: a.domain(), lo, hi: lo.saturating_add(n as u32), ord: ord + i as u64 });
                i = j;
            }
            ord += t.len() as u64;
        }
        let mut domains: Vec<(u32, usize, usize)> = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            match domains.last_mut() {
                Some(d) if d.0 == s.domain => d.2 = i + 1,
                _ => domains.push((s.domain, i, i + 1)),
            }
        }
        Ok(Some(Grid { slots, segs, domains }))
    }

    /// Segments overlapping positions `[lo, hi)` of `domain`.
    fn overlapping(&self, domain: u32, lo: u32, hi: u32) -> impl Iterator<Item = &Seg> {
        let segs = self.domains.iter().find(|d| d.0 == domain).map_or(&[][..], |&(_, a, b)| &self.segs[a..b]);
        let from = segs.partition_point(|s| s.hi <= lo);
        segs[from..].iter().take_while(move |s| s.lo < hi)
    }
}

/// Numbers a bucket can be reduced over.
trait Num: Sample + PartialOrd {
    /// Above every sample (the start of a minimum).
    const HIGHEST: Self;
    /// Below every sample (the start of a maximum).
    const LOWEST: Self;
    fn to_f64(self) -> f64;
    /// What a bucket of only NaN reduces to (integers never lack a comparable sample).
    fn nan() -> Self;
}

macro_rules! impl_num {
    ($nan:expr, $hi:ident, $lo:ident => $($t:ident),*) => {$(impl Num for $t {
        const HIGHEST: Self = $t::$hi;
        const LOWEST: Self = $t::$lo;
        #[allow(clippy::cast_lossless, clippy::cast_precision_loss)]
        fn to_f64(self) -> f64 { self as f64 }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        fn nan() -> Self { $nan as $t }
    })*};
}
impl_num!(0, MAX, MIN => u8, u16, u32, u64, i8, i16, i32, i64);
impl_num!(f64::NAN, INFINITY, NEG_INFINITY => f32, f64);

/// Per slot of one channel: samples seen, and the extremes with their ordinals.
#[derive(Clone, Copy)]
struct Extremes<T> {
    seen: u64,
    /// `(min, ordinal, max, ordinal)` once a comparable (non-NaN) sample was seen.
    ext: Option<(T, u64, T, u64)>,
}

/// Per slot of one channel: samples seen, and the sum and count of the non-NaN ones.
#[derive(Clone, Copy, Default)]
struct Mean {
    seen: u64,
    sum: f64,
    n: u64,
}

/// The lowest and highest comparable samples of `v`, eight lanes at a time so the
/// comparisons vectorize; `lo > hi` when `v` holds none (empty, or only NaN).
fn extremes<T: Num>(v: &[T]) -> (T, T) {
    const LANES: usize = 8;
    let mut lo = [T::HIGHEST; LANES];
    let mut hi = [T::LOWEST; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            // `x < m ? x : m` keeps `m` when `x` is NaN (and is one minimum instruction).
            lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
            hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
        }
    }
    let (mut a, mut b) = (T::HIGHEST, T::LOWEST);
    for (&x, &y) in lo.iter().zip(&hi).chain(tail.iter().zip(tail)) {
        a = if x < a { x } else { a };
        b = if y > b { y } else { b };
    }
    (a, b)
}

/// `v` into `e`; `ord` is the ordinal of `v[0]`. The extremes come from a vectorized pass;
/// only when they improve on the bucket's does a second pass look for where they are, and
/// it stops at the first of them: which came first is all the order needs.
fn scan_extremes<T: Num>(v: &[T], ord: u64, e: &mut Extremes<T>) {
    e.seen += v.len() as u64;
    let (lo, hi) = extremes(v);
    if lo > hi {
        return;
    }
    let at = |want: &dyn Fn(T) -> bool| ord + v.iter().position(|&x| want(x)).unwrap_or(0) as u64;
    let (new_lo, new_hi) = match e.ext {
        Some((alo, _, ahi, _)) => (lo < alo, hi > ahi),
        None => (true, true),
    };
    e.ext = match (e.ext, new_lo, new_hi) {
        (Some(_), false, false) => e.ext,
        (Some((_, _, ahi, aihi)), true, false) => Some((lo, at(&|x| x == lo), ahi, aihi)),
        (Some((alo, ailo, _, _)), false, true) => Some((alo, ailo, hi, at(&|x| x == hi))),
        _ => {
            // Both from this slice: the first found gets its position, the other one just
            // after it (it lies later in this slice, so every order stays right).
            let p = at(&|x| x == lo || x == hi);
            let first_is_lo = v[(p - ord) as usize] == lo;
            match (lo == hi, first_is_lo) {
                (true, _) => Some((lo, p, hi, p)),
                (false, true) => Some((lo, p, hi, p + 1)),
                (false, false) => Some((lo, p + 1, hi, p)),
            }
        }
    };
}

/// `v` into `m`, four lanes at a time so the additions pipeline.
fn scan_mean<T: Num>(v: &[T], m: &mut Mean) {
    m.seen += v.len() as u64;
    let mut sum = [0.0f64; 4];
    let mut n = [0u64; 4];
    let chunks = v.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..4 {
            let x = c[l].to_f64();
            #[allow(clippy::eq_op)]
            let ok = x == x;
            sum[l] += if ok { x } else { 0.0 };
            n[l] += u64::from(ok);
        }
    }
    for &x in tail {
        let x = x.to_f64();
        if !x.is_nan() {
            sum[0] += x;
            n[0] += 1;
        }
    }
    m.sum += (sum[0] + sum[1]) + (sum[2] + sum[3]);
    m.n += n.iter().sum::<u64>();
}

/// Run `f` over each slice of `series` that falls in a slot: `(slot, values, ordinal)`.
fn for_each_slice<'a, T: Num>(grid: &Grid, series: &[&'a Series], mut f: impl FnMut(usize, &'a [T], u64)) -> Result<(), SeriesError> {
    for s in series {
        let v = s.as_slice::<T>()?;
        let a = s.alignment();
        let (lo, hi) = (a.sample(), a.sample().saturating_add(v.len() as u32));
        for seg in grid.overlapping(a.domain(), lo, hi) {
            let from = seg.lo.max(lo);
            let to = seg.hi.min(hi);
            let part = &v[(from - lo) as usize..(to - lo) as usize];
            f(seg.slot, part, seg.ord + u64::from(from - seg.lo));
        }
    }
    Ok(())
}

/// One channel reduced over the grid: which slots it has samples in, and how to build its
/// series from the slots kept.
struct Reduced {
    present: Vec<bool>,
    build: BuildSeries,
}

/// Builds a reduced channel's series from the slots kept.
type BuildSeries = Box<dyn FnOnce(&Grid, &[bool]) -> Result<Series, SeriesError>>;

fn reduce_typed<T: Num>(grid: &Grid, series: &[&Series], r: &Reduction, dt: DataType) -> Result<Reduced, SeriesError> {
    let slots = grid.slots.len();
    match r.method {
        ReduceMethod::MinMax => {
            let mut acc = vec![Extremes::<T> { seen: 0, ext: None }; slots];
            for_each_slice::<T>(grid, series, |slot, v, ord| scan_extremes(v, ord, &mut acc[slot]))?;
            let present = acc.iter().map(|a| a.seen > 0).collect();
            let build = move |grid: &Grid, keep: &[bool]| {
                let mut out: Vec<T> = Vec::with_capacity(2 * keep.iter().filter(|k| **k).count());
                for ((a, sl), _) in acc.iter().zip(&grid.slots).zip(keep).filter(|(_, k)| **k) {
                    let (lo, ilo, hi, ihi) = match a.ext {
                        Some(x) => x,
                        None => (T::nan(), 0, T::nan(), 0),
                    };
                    if sl.n == 1 {
                        out.push(lo);
                    } else if ilo <= ihi {
                        out.extend([lo, hi]);
                    } else {
                        out.extend([hi, lo]);
                    }
                }
                Series::from_vec(out).cast(dt)
            };
            Ok(Reduced { present, build: Box::new(build) })
        }
        ReduceMethod::Average => {
            let mut acc = vec![Mean::default(); slots];
            for_each_slice::<T>(grid, series, |slot, v, _| scan_mean(v, &mut acc[slot]))?;
            let present = acc.iter().map(|a| a.seen > 0).collect();
            let build = move |_: &Grid, keep: &[bool]| {
                #[allow(clippy::cast_precision_loss)]
                let out: Vec<f64> =
                    acc.iter().zip(keep).filter(|(_, k)| **k).map(|(a, _)| if a.n == 0 { f64::NAN } else { a.sum / a.n as f64 }).collect();
                Ok(Series::from_vec(out))
            };
            Ok(Reduced { present, build: Box::new(build) })
        }
    }
}

fn reduce_member(grid: &Grid, series: &[&Series], r: &Reduction, dt: DataType) -> Result<Reduced, SeriesError> {
    match dt {
        DataType::U8 | DataType::Bool => reduce_typed::<u8>(grid, series, r, dt),
        DataType::U16 => reduce_typed::<u16>(grid, series, r, dt),
        DataType::U32 => reduce_typed::<u32>(grid, series, r, dt),
        DataType::U64 => reduce_typed::<u64>(grid, series, r, dt),
        DataType::I8 => reduce_typed::<i8>(grid, series, r, dt),
        DataType::I16 => reduce_typed::<i16>(grid, series, r, dt),
        DataType::I32 => reduce_typed::<i32>(grid, series, r, dt),
        DataType::I64 | DataType::Timestamp => reduce_typed::<i64>(grid, series, r, dt),
        DataType::F32 => reduce_typed::<f32>(grid, series, r, dt),
        DataType::F64 => reduce_typed::<f64>(grid, series, r, dt),
        DataType::Uuid | DataType::String | DataType::Json | DataType::Bytes => {
            Err(SeriesError::TypeMismatch { actual: dt, requested: DataType::F64 })
        }
    }
}

/// The reduced index: per kept slot, its first and last timestamps (min-max; one point for
/// a single sample) or the middle of them (average).
fn reduced_index(grid: &Grid, keep: &[bool], r: &Reduction) -> Series {
    let mut t = Vec::new();
    for (sl, _) in grid.slots.iter().zip(keep).filter(|(_, k)| **k) {
        match r.method {
            ReduceMethod::MinMax if sl.n > 1 => t.extend([sl.first_ts, sl.last_ts]),
            ReduceMethod::MinMax => t.push(sl.first_ts),
            ReduceMethod::Average => t.push(sl.first_ts + (sl.last_ts - sl.first_ts) / 2),
        }
    }
    Series::timestamps(t)
}

fn reduce_group(frame: &Frame, g: &ReduceGroup, r: &Reduction) -> Result<Vec<(ChannelKey, Series)>, SeriesError> {
    let index: Vec<&Series> = frame.get(g.index).collect();
    let Some(grid) = Grid::build(&index, r)? else { return Ok(Vec::new()) };
    let mut reduced: Vec<(ChannelKey, Reduced)> = Vec::new();
    let mut keep = vec![true; grid.slots.len()];
    for &k in g.members.iter().filter(|&&k| k != g.index) {
        let series: Vec<&Series> = frame.get(k).collect();
        // A channel without samples in the range is left out, as in a plain read, and
        // does not hide the buckets of its siblings.
        let Some(dt) = series.first().map(|s| s.data_type()) else { continue };
        let red = reduce_member(&grid, &series, r, dt)?;
        for (k, p) in keep.iter_mut().zip(&red.present) {
            *k &= *p;
        }
        reduced.push((k, red));
    }
    let ts = reduced_index(&grid, &keep, r);
    let tr = match ts.as_timestamps()? {
        [] => TimeRange::default(),
        t => TimeRange::from_nanos(t[0], t[t.len() - 1].saturating_add(1)),
    };
    let stamp = |s: Series| s.with_time_range(tr).with_alignment(Alignment::default());
    let mut out = Vec::with_capacity(g.members.len());
    if g.members.contains(&g.index) {
        out.push((g.index, stamp(ts)));
    }
    for (k, red) in reduced {
        out.push((k, stamp((red.build)(&grid, &keep)?)));
    }
    // As in a plain read, a channel without samples in the range is left out.
    out.retain(|(_, s)| !s.is_empty());
    Ok(out)
}
