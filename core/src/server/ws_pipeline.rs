//! Pipelined writes for writer streams: large frames are written to storage on a blocking
//! thread while the stream keeps reading and decoding the next ones, so receiving and
//! storing overlap. Small frames are written inline when nothing is queued (no thread
//! handoff on the latency path). Writes stay in order either way: inline writes, commits
//! and authority changes wait until the queue is empty.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::framer::{WriteReport, Writer};
use crate::telem::Frame;

/// Frames at least this large go through the pipeline.
pub(crate) const PIPELINE_MIN_BYTES: usize = 256 << 10;
/// Most frames queued at once (bounds the memory a fast client can pin).
const DEPTH: usize = 4;

/// The result of write number `seq`.
pub(crate) type Done = (u64, Result<WriteReport>);

/// The storage side of one writer stream.
#[derive(Debug)]
pub(crate) struct Pipeline {
    jobs: Option<std::sync::mpsc::SyncSender<(u64, Frame)>>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    done_tx: mpsc::UnboundedSender<Done>,
    inflight: usize,
    writer: Arc<Mutex<Option<Writer>>>,
}

impl Pipeline {
    pub(crate) fn new(writer: Arc<Mutex<Option<Writer>>>) -> Pipeline {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Pipeline { jobs: None, done_rx, done_tx, inflight: 0, writer }
    }

    /// True if no write is queued.
    pub(crate) fn idle(&self) -> bool {
        self.inflight == 0
    }

    fn start(&mut self) -> Result<&std::sync::mpsc::SyncSender<(u64, Frame)>> {
        if self.jobs.is_none() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Frame)>(DEPTH);
            let (writer, done) = (self.writer.clone(), self.done_tx.clone());
            // The stream's span goes with its writes (their storage spans are its children).
            let span = tracing::Span::current();
            std::thread::Builder::new()
                .name("telemetron-ingest".into())
                .spawn(move || {
                    let _in = span.enter();
                    while let Ok((seq, frame)) = rx.recv() {
                        let r = match writer.lock().as_mut() {
                            Some(w) => w.write(&frame),
                            None => Err(Error::Closed { what: "the writer".into() }),
                        };
                        drop(frame);
                        if done.send((seq, r)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| Error::InvalidArgument { reason: format!("cannot start an ingest thread: {e}") })?;
            self.jobs = Some(tx);
        }
        self.jobs.as_ref().ok_or(Error::Closed { what: "the writer".into() })
    }

    /// Queue write `seq`. When the queue is full, first waits for (and returns) the oldest
    /// result, which the caller must report.
    pub(crate) async fn queue(&mut self, seq: u64, frame: Frame) -> Vec<Done> {
        let mut out = Vec::new();
        while self.inflight >= DEPTH {
            match self.next().await {
                Some(d) => out.push(d),
                None => break,
            }
        }
        let sent = match self.start() {
            Ok(tx) => tx.send((seq, frame)).map_err(|_| Error::Closed { what: "the writer".into() }),
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => self.inflight += 1,
            Err(e) => out.push((seq, Err(e))),
        }
        out
    }

    /// The next finished write (waits; `None` if nothing is queued).
    pub(crate) async fn next(&mut self) -> Option<Done> {
        if self.inflight == 0 {
            return None;
        }
        let d = self.done_rx.recv().await;
        if d.is_some() {
            self.inflight -= 1;
        }
        d
    }

    /// Wait for every queued write; returns their results in order.
    pub(crate) async fn drain(&mut self) -> Vec<Done> {
        let mut out = Vec::new();
        while let Some(d) = self.next().await {
            out.push(d);
        }
        out
    }
}
