//! Call vocabulary shared by the user agent and its users: ids, states and why a call ended.

use std::fmt;
use std::time::Duration;

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

/// What happened, for the application. Names match the headless phone's JSON events.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SipEvent {
    /// The registrar accepted our binding.
    Registered {
        /// Account id.
        account: String,
        /// Granted expiry in seconds.
        expires: u32,
    },
    /// A REGISTER failed.
    RegistrationFailed {
        /// Account id.
        account: String,
        /// SIP status, if a response came back.
        status: Option<u16>,
        /// What happened.
        reason: String,
        /// When we try again (none: not until the user changes something).
        retry_in: Option<Duration>,
    },
    /// Our binding was removed.
    Unregistered {
        /// Account id.
        account: String,
    },
    /// A new incoming call.
    Incoming {
        /// Our handle.
        call: CallId,
        /// Account it arrived on.
        account: String,
        /// Caller (From URI).
        from: String,
        /// SDP offer, if the INVITE carried one.
        offer: Option<Vec<u8>>,
    },
    /// A provisional answer to our INVITE (180/183), maybe with early media SDP.
    Progress {
        /// Call.
        call: CallId,
        /// Status code.
        status: u16,
        /// SDP answer for early media.
        sdp: Option<Vec<u8>>,
    },
    /// Our INVITE was answered (2xx); the SDP is the answer.
    Answered {
        /// Call.
        call: CallId,
        /// SDP answer.
        sdp: Vec<u8>,
    },
    /// An incoming call we accepted was confirmed by the caller's ACK.
    Confirmed {
        /// Call.
        call: CallId,
    },
    /// The other side sent a re-INVITE (hold/resume/codec change); answer it with
    /// [`UserAgent::answer_reoffer`](crate::UserAgent::answer_reoffer).
    RemoteOffer {
        /// Call.
        call: CallId,
        /// The new offer (empty for an offer-less re-INVITE).
        sdp: Vec<u8>,
    },
    /// Our re-INVITE finished.
    ReofferResult {
        /// Call.
        call: CallId,
        /// The answer SDP on success, or the failure status.
        result: Result<Vec<u8>, u16>,
    },
    /// Our REFER (blind transfer) was answered: `accepted` = 2xx; then progress arrives as
    /// [`SipEvent::TransferProgress`].
    TransferAccepted {
        /// Call.
        call: CallId,
        /// Whether the other side accepted to be transferred.
        accepted: bool,
        /// Status of the REFER's answer (none: no answer).
        status: Option<u16>,
    },
    /// A NOTIFY about our REFER: the status of the transferee's call to the target.
    TransferProgress {
        /// Call.
        call: CallId,
        /// Status code from the `message/sipfrag` body.
        status: u16,
    },
    /// The other side asks us to call `target` instead (REFER, blind transfer). Report how it
    /// goes with [`UserAgent::notify_transfer`](crate::UserAgent::notify_transfer).
    TransferRequested {
        /// Call.
        call: CallId,
        /// The Refer-To URI.
        target: String,
    },
    /// An INFO request inside a call (DTMF fallback).
    Info {
        /// Call.
        call: CallId,
        /// Content-Type.
        content_type: String,
        /// Body.
        body: Vec<u8>,
    },
    /// The call is over.
    Ended {
        /// Call.
        call: CallId,
        /// Why.
        reason: EndReason,
    },
    /// A MESSAGE arrived.
    MessageReceived {
        /// Account it arrived on.
        account: String,
        /// Sender URI.
        from: String,
        /// Content-Type.
        content_type: String,
        /// Body.
        body: Vec<u8>,
        /// Call-ID + CSeq: the same for retransmissions, for de-duplication.
        dedupe_key: String,
    },
    /// Our MESSAGE got a final answer (or none).
    MessageResult {
        /// The id [`UserAgent::message`](crate::UserAgent::message) returned.
        id: u64,
        /// Final status, `None` if nothing answered.
        status: Option<u16>,
        /// Reason phrase or what went wrong.
        reason: String,
    },
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
