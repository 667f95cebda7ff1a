//! Iterators: walk a time range of channels in chunks, forwards or backwards.

use serde::{Deserialize, Serialize};

use crate::channel::ChannelKey;
use crate::error::Result;
use crate::storage::{ReadPlan, extent, nth_after, nth_before, read_channels};
use crate::telem::{Frame, ReduceGroup, Reduction, TimeRange, TimeSpan, TimeStamp, reduce_frame};

/// How far `next`/`prev` move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "value")]
pub enum IterSpan {
    /// The configured chunk size in samples.
    Auto,
    /// This many samples of the first channel's index.
    Samples(u64),
    /// This much time.
    Time(TimeSpan),
}

/// How to open an iterator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IteratorConfig {
    /// The range to iterate over.
    pub bounds: TimeRange,
    /// Channels to read (stored channels only).
    pub channels: Vec<crate::channel::ChannelKey>,
    /// Samples per chunk for [`IterSpan::Auto`] (default 100,000).
    #[serde(default = "default_chunk")]
    pub chunk_size: u64,
    /// Reduce each chunk to at most this many points per channel (see
    /// [`crate::Engine::read_reduced`]); `None` (the default) returns every sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce: Option<Reduction>,
}

fn default_chunk() -> u64 {
    100_000
}

impl IteratorConfig {
    /// Iterate `channels` over `bounds` in chunks of 100,000 samples.
    pub fn new(bounds: TimeRange, channels: Vec<crate::channel::ChannelKey>) -> IteratorConfig {
        IteratorConfig { bounds, channels, chunk_size: default_chunk(), reduce: None }
    }
}

/// A cursor over stored data.
///
/// The iterator holds a *view*, a time range inside its bounds. `seek_*` moves the view to
/// a point (empty view); `next` and `prev` move it forwards or backwards by a span and
/// read it: [`RangeIterator::value`] is then the frame for the view (possibly empty when a time
/// span falls in a gap). `next`/`prev` return `false` once there is nothing more in that
/// direction.
///
/// # Examples
///
/// ```
/// # use telemetron::{Engine, channel::NewChannel, telem::*, framer::*};
/// # let dir = tempfile::tempdir().unwrap();
/// # let engine = Engine::open(dir.path()).unwrap();
/// # let t = engine.create_channel(NewChannel::index("t")).unwrap();
/// # engine.write(TimeStamp(0), Frame::new().with(t.key, Series::timestamps((0..10).collect()))).unwrap();
/// let mut it = engine.open_iterator(IteratorConfig { chunk_size: 4, ..IteratorConfig::new(TimeRange::MAX, vec![t.key]) }).unwrap();
/// it.seek_first().unwrap();
/// let mut seen = 0;
/// while it.next(IterSpan::Auto).unwrap() {
///     seen += it.value().samples(t.key);
/// }
/// assert_eq!(seen, 10);
/// ```
#[derive(Debug)]
pub struct RangeIterator {
    plan: ReadPlan,
    /// The reduction of each view, and the channels asked for (the plan also holds their
    /// indexes, which the reduction needs).
    reduce: Option<(Reduction, Vec<ChannelKey>)>,
    bounds: TimeRange,
    view: TimeRange,
    chunk_size: u64,
    value: Frame,
}

impl RangeIterator {
    pub(crate) fn new(plan: ReadPlan, cfg: &IteratorConfig) -> RangeIterator {
        let start = cfg.bounds.start;
        RangeIterator {
            plan,
            reduce: cfg.reduce.map(|r| (r, cfg.channels.clone())),
            bounds: cfg.bounds,
            view: TimeRange::new(start, start),
            chunk_size: cfg.chunk_size.max(1),
            value: Frame::new(),
        }
    }

    /// The current view.
    pub fn view(&self) -> TimeRange {
        self.view
    }

    /// The frame read by the last `next`/`prev`.
    pub fn value(&self) -> &Frame {
        &self.value
    }

    /// Take the frame read by the last `next`/`prev`.
    pub fn take_value(&mut self) -> Frame {
        std::mem::take(&mut self.value)
    }

    fn extent(&self) -> Result<Option<TimeRange>> {
        match self.plan.lead_index() {
            Some(i) => Ok(extent(i, self.bounds)?),
            None => Ok(None),
        }
    }

    fn point(&mut self, t: TimeStamp) {
        self.view = TimeRange::new(t, t);
        self.value = Frame::new();
    }

    /// Move to the first sample. Returns false if the bounds hold no data.
    ///
    /// # Errors
    /// A storage error.
    pub fn seek_first(&mut self) -> Result<bool> {
        let e = self.extent()?;
        self.point(e.map_or(self.bounds.start, |r| r.start));
        Ok(e.is_some())
    }

    /// Move past the last sample. Returns false if the bounds hold no data.
    ///
    /// # Errors
    /// A storage error.
    pub fn seek_last(&mut self) -> Result<bool> {
        let e = self.extent()?;
        self.point(e.map_or(self.bounds.end, |r| r.end));
        Ok(e.is_some())
    }

    /// Move to the first sample at or after `t`. Returns false if there is none.
    ///
    /// # Errors
    /// A storage error.
    pub fn seek_ge(&mut self, t: TimeStamp) -> Result<bool> {
        let from = t.max(self.bounds.start);
        let found = match self.plan.lead_index() {
            Some(i) => nth_after(i, from, self.bounds.end, 0)?,
            None => None,
        };
        self.point(found.unwrap_or(self.bounds.end));
        Ok(found.is_some())
    }

    /// Move just past the last sample at or before `t`. Returns false if there is none.
    ///
    /// # Errors
    /// A storage error.
    pub fn seek_le(&mut self, t: TimeStamp) -> Result<bool> {
        let to = TimeStamp(t.0.saturating_add(1)).min(self.bounds.end);
        let found = match self.plan.lead_index() {
            Some(i) => nth_before(i, to, self.bounds.start, 1)?,
            None => None,
        };
        self.point(found.map_or(self.bounds.start, |f| TimeStamp(f.0.saturating_add(1))));
        Ok(found.is_some())
    }

    /// Move the view forward by `span` and read it. Returns false when nothing was read.
    ///
    /// # Errors
    /// A storage error.
    pub fn next(&mut self, span: IterSpan) -> Result<bool> {
        let start = self.view.end.max(self.bounds.start);
        if start >= self.bounds.end {
            self.view = TimeRange::new(self.bounds.end, self.bounds.end);
            self.value = Frame::new();
            return Ok(false);
        }
        let end = match span {
            IterSpan::Time(d) => (start + d).min(self.bounds.end),
            IterSpan::Auto | IterSpan::Samples(_) => {
                let n = if let IterSpan::Samples(n) = span { n } else { self.chunk_size };
                match self.plan.lead_index() {
                    Some(i) => nth_after(i, start, self.bounds.end, n)?.unwrap_or(self.bounds.end),
                    None => self.bounds.end,
                }
            }
        };
        self.view = TimeRange::new(start, end);
        self.value = read_view(&self.plan, self.view, self.reduce.as_ref().map(|(r, k)| (r, k.as_slice())))?;
        if !self.value.is_empty() {
            return Ok(true);
        }
        // An empty window inside the data (a gap longer than the span) is not the end.
        Ok(match self.plan.lead_index() {
            Some(i) => nth_after(i, end, self.bounds.end, 0)?.is_some(),
            None => false,
        })
    }

    /// Move the view backward by `span` and read it. Returns false when nothing was read.
    ///
    /// # Errors
    /// A storage error.
    pub fn prev(&mut self, span: IterSpan) -> Result<bool> {
        let end = self.view.start.min(self.bounds.end);
        if end <= self.bounds.start {
            self.view = TimeRange::new(self.bounds.start, self.bounds.start);
            self.value = Frame::new();
            return Ok(false);
        }
        let start = match span {
            IterSpan::Time(d) => (end - d).max(self.bounds.start),
            IterSpan::Auto | IterSpan::Samples(_) => {
                let n = if let IterSpan::Samples(n) = span { n } else { self.chunk_size };
                match self.plan.lead_index() {
                    Some(i) => nth_before(i, end, self.bounds.start, n)?.unwrap_or(self.bounds.start),
                    None => self.bounds.start,
                }
            }
        };
        self.view = TimeRange::new(start, end);
        self.value = read_view(&self.plan, self.view, self.reduce.as_ref().map(|(r, k)| (r, k.as_slice())))?;
        if !self.value.is_empty() {
            return Ok(true);
        }
        Ok(match self.plan.lead_index() {
            Some(i) => nth_before(i, start, self.bounds.start, 1)?.is_some(),
            None => false,
        })
    }
}

/// Read `tr` of a plan, reduced when `reduce` names a reduction and the channels to output
/// (the plan must hold their indexes).
pub(crate) fn read_view(plan: &ReadPlan, tr: TimeRange, reduce: Option<(&Reduction, &[ChannelKey])>) -> Result<Frame> {
    let frame = read_channels(plan, tr)?;
    let Some((r, order)) = reduce else { return Ok(frame) };
    let groups: Vec<ReduceGroup> =
        plan.groups.iter().map(|(i, m)| ReduceGroup { index: i.key, members: m.iter().map(|s| s.key).collect() }).collect();
    Ok(reduce_frame(&frame, &groups, order, r)?)
}
