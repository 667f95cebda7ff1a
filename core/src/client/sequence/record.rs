//! The command record: every command of a sequence kept as channels
//! (`<name>/commands/{time,channel,value,authority,outcome}`).

use crate::channel::{ChannelKey, NewChannel};
use crate::client::{Client, ClientWriter};
use crate::control::{Authority, Subject};
use crate::error::{Error, Result};
use crate::framer::WriterConfig;
use crate::telem::{DataType, Frame, Series, TimeStamp};

/// The command record's writer.
pub(super) struct Recorder {
    pub(super) writer: ClientWriter,
    /// time, channel, value, authority, outcome.
    pub(super) keys: [ChannelKey; 5],
    pub(super) last: i64,
}

/// One command, as recorded.
pub(super) struct Command {
    pub(super) time: i64,
    pub(super) channel: String,
    pub(super) value: f64,
    pub(super) authority: Authority,
    pub(super) outcome: String,
}

impl Recorder {
    /// The record channels of sequence `name`.
    pub(super) fn channels(name: &str) -> Vec<NewChannel> {
        let p = format!("{name}/commands");
        let t = format!("{p}/time");
        vec![
            NewChannel::index(&t),
            NewChannel::data(format!("{p}/channel"), DataType::String, &t),
            NewChannel::data(format!("{p}/value"), DataType::F64, &t),
            NewChannel::data(format!("{p}/authority"), DataType::U8, &t),
            NewChannel::data(format!("{p}/outcome"), DataType::String, &t),
        ]
    }

    pub(super) async fn open(client: &Client, name: &str) -> Result<Recorder> {
        let want = Recorder::channels(name);
        let got = client.create_channels(want.clone(), true).await?;
        for (w, g) in want.iter().zip(&got) {
            if g.data_type != w.data_type || g.is_virtual() {
                return Err(Error::InvalidArgument {
                    reason: format!(
                        "channel {:?} exists as {} but holds the command record of sequence {name:?} ({}); rename the sequence or pass record=False",
                        g.name, g.data_type, w.data_type
                    ),
                });
            }
        }
        let keys: Vec<ChannelKey> = got.iter().map(|c| c.key).collect();
        let mut config = WriterConfig::new(TimeStamp::now(), keys.clone());
        config.authorities = vec![crate::control::ABSOLUTE];
        config.subject = Subject { key: uuid::Uuid::new_v4().to_string(), name: format!("{name} (command record)"), group: 0 };
        config.name = format!("{name} (command record)");
        let writer = client.open_writer(config).await?;
        if !keys.iter().all(|&k| writer.has_control(k)) {
            writer.abort().await;
            return Err(Error::InvalidArgument {
                reason: format!(
                    "another control sequence named {name:?} is running and recording to \"{name}/commands/*\"; give this one another name or pass record=False"
                ),
            });
        }
        let [a, b, c, d, e] = keys[..] else { return Err(Error::InvalidArgument { reason: "command record channels".into() }) };
        Ok(Recorder { writer, keys: [a, b, c, d, e], last: i64::MIN })
    }

    pub(super) async fn record(&mut self, rows: &[Command]) {
        if rows.is_empty() {
            return;
        }
        let mut times = Vec::with_capacity(rows.len());
        for r in rows {
            let t = r.time.max(self.last.saturating_add(1));
            self.last = t;
            times.push(t);
        }
        let [t, ch, v, a, o] = self.keys;
        let frame = Frame::new()
            .with(t, Series::timestamps(times))
            .with(ch, Series::strings(&rows.iter().map(|r| r.channel.as_str()).collect::<Vec<_>>()))
            .with(v, Series::from_vec(rows.iter().map(|r| r.value).collect::<Vec<f64>>()))
            .with(a, Series::from_vec(rows.iter().map(|r| r.authority).collect::<Vec<u8>>()))
            .with(o, Series::strings(&rows.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>()));
        if let Err(e) = self.writer.write(&frame).await {
            tracing::warn!(key = "client/sequence", error = %e, "could not record control commands");
        }
    }
}
