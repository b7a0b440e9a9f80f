//! Call vocabulary shared by the user agent and its users: ids, states and why a call ended.

use std::fmt;

/// Our handle for one call (stable for its whole life, unlike SIP dialog ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a call ended. Every ended call carries exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// We hung up (BYE or CANCEL from us).
    LocalHangup,
    /// The other side hung up (BYE, or CANCEL of a call ringing here).
    RemoteHangup,
    /// 486/600 Busy.
    Busy,
    /// 603 Decline, or we declined an incoming call.
    Declined,
    /// Nobody answered in time (408/480/487 after our timer, or our own no-answer timer).
    Timeout,
    /// The call could not be set up or kept: a failure response, no common codec, transport
    /// or media failure.
    Failed {
        /// SIP status code, when one explains it.
        status: Option<u16>,
        /// What went wrong.
        reason: String,
    },
    /// The media path died (no RTP for too long).
    MediaFailure,
}

impl EndReason {
    /// Stable lower-case name used in events (`local_hangup`, `busy`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::LocalHangup => "local_hangup",
            EndReason::RemoteHangup => "remote_hangup",
            EndReason::Busy => "busy",
            EndReason::Declined => "declined",
            EndReason::Timeout => "timeout",
            EndReason::Failed { .. } => "failed",
            EndReason::MediaFailure => "media_failure",
        }
    }

    /// The reason for a final failure response to our INVITE.
    pub fn from_failure_status(status: u16, phrase: &str) -> Self {
        match status {
            486 | 600 => EndReason::Busy,
            603 => EndReason::Declined,
            408 | 480 => EndReason::Timeout,
            487 => EndReason::LocalHangup,
            _ => EndReason::Failed {
                status: Some(status),
                reason: if phrase.is_empty() {
                    format!("the call was refused with {status}")
                } else {
                    format!("{status} {phrase}")
                },
            },
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Failed { reason, .. } => write!(f, "failed: {reason}"),
            other => f.write_str(other.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_statuses_map_to_reasons() {
        assert_eq!(
            EndReason::from_failure_status(486, "Busy Here"),
            EndReason::Busy
        );
        assert_eq!(EndReason::from_failure_status(600, ""), EndReason::Busy);
        assert_eq!(
            EndReason::from_failure_status(603, "Decline"),
            EndReason::Declined
        );
        assert_eq!(EndReason::from_failure_status(408, ""), EndReason::Timeout);
        assert_eq!(
            EndReason::from_failure_status(487, ""),
            EndReason::LocalHangup
        );
        let f = EndReason::from_failure_status(404, "Not Found");
        assert_eq!(f.as_str(), "failed");
        assert_eq!(f.to_string(), "failed: 404 Not Found");
    }
}
