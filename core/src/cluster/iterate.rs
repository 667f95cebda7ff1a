//! Iterators over channels stored on several nodes.
//!
//! A single-node iterator positions itself by one index only, the **lead** (the index of its
//! first channel; `framer/iterator.rs`): seeks find samples of the lead, and `next`/`prev`
//! with a sample count measure the view on the lead. The other channels are read over
//! whatever view the lead chose. A spanning iterator does exactly that across nodes:
//! - the lead part is an ordinary iterator on the node that stores the first channel, for
//!   that node's channels (this node's engine, or a peer's iterator stream);
//! - every seek, `next` and `prev` goes to it;
//! - after `next`/`prev`, the view it reports (`IteratorResponse::Result::view`) is read on
//!   the other nodes (a fan-out read, reduced like the iterator), and the parts are merged.
//!
//! So a spanning iterator answers as one node would if it stored every channel: the same
//! views, the same `ok`, the same frames.

use crate::channel::ChannelKey;
use crate::client::ClientIterator;
use crate::error::{Error, Result};
use crate::framer::{IterSpan, IteratorConfig};
use crate::net::NetError;
use crate::telem::{Frame, Reduction, TimeStamp};

use super::Cluster;

/// A cursor over channels of several nodes ([`Cluster::open_spanning_iterator`]).
pub struct SpanningIterator {
    cluster: Cluster,
    /// The lead node's iterator, for its channels.
    lead: ClientIterator,
    /// The lead node, for errors.
    lead_node: u8,
    /// Every other node's channels, read over the lead's views.
    others: Vec<ChannelKey>,
    reduce: Option<Reduction>,
    value: Frame,
}

impl std::fmt::Debug for SpanningIterator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanningIterator").field("lead_node", &self.lead_node).field("others", &self.others.len()).finish()
    }
}

impl Cluster {
    /// Open an iterator over `config.channels`, stored on several nodes.
    ///
    /// # Errors
    /// As [`crate::Engine::open_iterator`]; `node.unavailable` when the lead node is down.
    pub async fn open_spanning_iterator(&self, config: IteratorConfig) -> Result<SpanningIterator> {
        let groups = self.by_node(&config.channels)?;
        let first = *config.channels.first().ok_or_else(|| Error::InvalidArgument { reason: "an iterator needs channels".into() })?;
        let lead_node = super::leaseholder(first);
        let lead_keys = groups.get(&lead_node).cloned().unwrap_or_default();
        let others: Vec<ChannelKey> = config.channels.iter().copied().filter(|k| !lead_keys.contains(k)).collect();
        let lead_config = IteratorConfig { channels: lead_keys, ..config.clone() };
        let lead = if lead_node == self.node() {
            crate::Client::embedded(self.inner.engine.clone()).open_iterator(lead_config).await?
        } else {
            self.ask(lead_node, |peer| async move { peer.open_iterator(lead_config).await }).await?
        };
        Ok(SpanningIterator { cluster: self.clone(), lead, lead_node, others, reduce: config.reduce, value: Frame::new() })
    }
}

impl SpanningIterator {
    /// A failure of the lead, naming the lead node when it is gone.
    fn lead_err(&self, e: Error) -> Error {
        self.cluster.unavailable(self.lead_node, e)
    }

    /// See [`crate::framer::RangeIterator::seek_first`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_first(&mut self) -> Result<bool> {
        self.value = Frame::new();
        let r = self.lead.seek_first().await;
        r.map_err(|e| self.lead_err(e))
    }

    /// See [`crate::framer::RangeIterator::seek_last`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_last(&mut self) -> Result<bool> {
        self.value = Frame::new();
        let r = self.lead.seek_last().await;
        r.map_err(|e| self.lead_err(e))
    }

    /// See [`crate::framer::RangeIterator::seek_ge`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_ge(&mut self, t: TimeStamp) -> Result<bool> {
        self.value = Frame::new();
        let r = self.lead.seek_ge(t).await;
        r.map_err(|e| self.lead_err(e))
    }

    /// See [`crate::framer::RangeIterator::seek_le`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_le(&mut self, t: TimeStamp) -> Result<bool> {
        self.value = Frame::new();
        let r = self.lead.seek_le(t).await;
        r.map_err(|e| self.lead_err(e))
    }

    /// See [`crate::framer::RangeIterator::next`].
    ///
    /// # Errors
    /// A storage or transport error; `node.unavailable` when a node is down.
    pub async fn next(&mut self, span: IterSpan) -> Result<bool> {
        let r = self.lead.next(span).await;
        let ok = r.map_err(|e| self.lead_err(e))?;
        self.fill(ok).await
    }

    /// See [`crate::framer::RangeIterator::prev`].
    ///
    /// # Errors
    /// A storage or transport error; `node.unavailable` when a node is down.
    pub async fn prev(&mut self, span: IterSpan) -> Result<bool> {
        let r = self.lead.prev(span).await;
        let ok = r.map_err(|e| self.lead_err(e))?;
        self.fill(ok).await
    }

    /// Read the other nodes' channels over the lead's new view and merge them in; true if
    /// the lead said so or the merged frame holds samples (as a single node decides).
    async fn fill(&mut self, lead_ok: bool) -> Result<bool> {
        let mut frame = self.lead.take_value();
        let view = self.lead.view().ok_or_else(|| NetError::Server {
            reason: format!(
                "node {} answered an iterator step without its view; it runs an older Telemetron: upgrade it to iterate across nodes",
                self.cluster.node_name(self.lead_node)
            ),
        })?;
        if !self.others.is_empty() && !view.is_empty() {
            let part = self.cluster.read(view, &self.others, self.reduce).await?;
            for (k, s) in part.iter() {
                frame.push(k, s.clone());
            }
        }
        let ok = lead_ok || !frame.is_empty();
        self.value = frame;
        Ok(ok)
    }

    /// The time range covered now, as the lead node reports it.
    pub fn view(&self) -> Option<crate::telem::TimeRange> {
        self.lead.view()
    }

    /// The frame read by the last `next`/`prev`.
    pub fn value(&self) -> &Frame {
        &self.value
    }

    /// Take the frame read by the last `next`/`prev`.
    pub fn take_value(&mut self) -> Frame {
        std::mem::take(&mut self.value)
    }
}
