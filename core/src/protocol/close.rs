//! The WebSocket close codes the node ends a stream with (RFC 6455 §7.4.1).
//!
//! The code says how the stream ended; the `closed` message sent just before the close
//! frame carries the error itself (see `docs/protocol.md`, "Close codes").

/// How the node ended a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CloseCode {
    /// 1000: the stream ended as asked (the client's `close`, the end of its streamer), or
    /// after an error that leaves the protocol intact (a streamer disconnected for lag).
    Normal = 1000,
    /// 1001: the node is shutting down; its `closed` message carries `server.shutdown`.
    GoingAway = 1001,
    /// 1008: the stream was refused or broken off: its `open` failed (bad request, unknown
    /// channel, control refused), the client broke the protocol, or it stayed silent past
    /// the control timeout (`net.keepalive_timeout`).
    PolicyViolation = 1008,
    /// 1009: a message exceeded the node's size limit (`protocol.too_large`); the stream
    /// cannot continue mid-message.
    TooLarge = 1009,
}

impl CloseCode {
    /// Every code, in numeric order.
    pub const ALL: [CloseCode; 4] = [CloseCode::Normal, CloseCode::GoingAway, CloseCode::PolicyViolation, CloseCode::TooLarge];

    /// The number on the wire.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The code for `n`, if the node uses it.
    pub fn from_code(n: u16) -> Option<CloseCode> {
        CloseCode::ALL.into_iter().find(|c| c.code() == n)
    }
}

#[cfg(test)]
mod tests {
    use super::CloseCode;

    #[test]
    fn codes_round_trip_and_match_rfc_6455() {
        let numbers: Vec<u16> = CloseCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(numbers, [1000, 1001, 1008, 1009]);
        for c in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(c.code()), Some(c));
        }
        assert_eq!(CloseCode::from_code(1002), None);
    }
}
