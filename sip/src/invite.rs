//! One call's INVITE dialog as a sans-IO state machine: what to send, answer and tell the user.
//!
//! [`CallMachine`] holds everything a call decides: the dialog (tags, target, route set, CSeq),
//! the phase of the call, the CANCEL rules, digest retries, re-INVITEs in both directions with
//! glare handling, transfers, and the timers around them. It sends nothing and reads no clock.
//! The driver ([`crate::ua`]) runs the transactions with rsipstack and feeds the machine:
//!
//! - local commands: [`CallMachine::hangup`], [`CallMachine::answer`], [`CallMachine::reoffer`] …
//! - responses to our requests, reduced to plain data: [`CallMachine::handle_response`] (and
//!   [`CallMachine::handle_request_failed`] when a transaction got no answer or could not be sent);
//! - requests from the other side: [`CallMachine::handle_request`] (with a [`ServerTxn`] handle
//!   the driver chose), [`CallMachine::handle_ack`], [`CallMachine::handle_cancel`];
//! - timers: [`CallMachine::handle_timeout`] once [`CallMachine::poll_timeout`] is due.
//!
//! Every input carries `now`. After each input the driver drains [`CallMachine::poll_action`]
//! and carries the [`CallAction`]s out in order: build and send a request from
//! [`CallMachine::dialog`], answer a server transaction, abandon the INVITE transaction, or pass
//! a [`SipEvent`] to the application. Once [`CallMachine::is_terminated`] is true (after the
//! drain), the call can be forgotten.
//!
//! Rules kept here, with their sources:
//! - A CANCEL goes only after a provisional response (RFC 3261 §9.1). A hangup before one is
//!   remembered and the CANCEL goes when the first provisional arrives; if none comes, the INVITE
//!   is abandoned after 64·T1. A 2xx that crosses the CANCEL is ACKed and ended with a BYE.
//! - An INVITE with no response at all (not even 100 Trying) within [`NO_RESPONSE`] ends the
//!   call as failed with 408, so that the application can fail over to another provider now
//!   rather than after timer B.
//! - A 401/407 is answered once with credentials — a KRYPTON Bearer token when the account has a
//!   signer ([`CallMachine::set_bearer`]) and the challenge offers Bearer, else digest; a second
//!   challenge means the credentials were refused (unless it only says the digest nonce was
//!   stale, RFC 7616 §3.3, which is answered once more). A `403 stale proof` after our token is
//!   retried once without credentials for a fresh nonce; other 403s end the call with the
//!   provider's `Reason` text ([`crate::bearer::AuthRetry`] decides all this).
//! - A re-INVITE that meets ours gets 491; ours, refused with 491, goes again after a random
//!   2.1–4 s when we own the Call-ID and 0–2 s otherwise (RFC 3261 §14.1). Our re-INVITEs are
//!   sent one at a time; one asked for while another INVITE transaction runs waits its turn.
//! - A 200 to an incoming INVITE that is never ACKed ends the call with a BYE after 64·T1
//!   (RFC 3261 §13.3.1.4).
//! - A 408 or 481 to our re-INVITE means the other side no longer has the dialog: the call
//!   ends with a BYE (RFC 3261 §12.2.1.2, §14.1).
//! - A re-INVITE that arrives while we have not answered the previous one gets 500 with a
//!   `Retry-After` of a random 0–10 s (RFC 3261 §14.2).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::bearer::{AuthAnswer, AuthResponse, AuthRetry, AuthStep, BearerChallenge};
use crate::call::{CallId, EndReason, SipEvent};

/// How long an INVITE may go without any response before the proxy counts as unreachable.
pub const NO_RESPONSE: Duration = Duration::from_secs(4);
/// 64·T1 (T1 = 500 ms): how long a 200 waits for its ACK, and a cancelled INVITE for its end.
pub const TIMER_64_T1: Duration = Duration::from_secs(32);
/// How long the application may take to answer a re-INVITE before we answer 500.
pub const REOFFER_ANSWER: Duration = Duration::from_secs(10);

/// A request we received and must answer; the driver picks the number and keeps the
/// transaction under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxn(pub u64);

/// The SIP methods a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE (initial or re-INVITE).
    Invite,
    /// ACK.
    Ack,
    /// CANCEL.
    Cancel,
    /// BYE.
    Bye,
    /// INFO (DTMF fallback).
    Info,
    /// REFER (blind transfer).
    Refer,
    /// NOTIFY (transfer progress).
    Notify,
}

/// The dialog state of a call (RFC 3261 §12), as plain strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag (From of our requests, To of our responses).
    pub local_tag: String,
    /// Their tag, once known.
    pub remote_tag: Option<String>,
    /// Our URI (From of our requests), without tag.
    pub local_uri: String,
    /// Their URI (To of our requests), without tag.
    pub remote_uri: String,
    /// Where in-dialog requests go (their Contact).
    pub remote_target: String,
    /// Route headers for in-dialog requests, in the order to send them.
    pub route_set: Vec<String>,
    /// CSeq of our last request.
    pub local_cseq: u32,
}

/// A challenge to answer in the next INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// 401 (answer in Authorization) or 407 (answer in Proxy-Authorization).
    pub status: u16,
    /// The WWW-Authenticate / Proxy-Authenticate header values.
    pub headers: Vec<String>,
    /// Answer this KRYPTON Bearer challenge with a token from the account's signer; `None`:
    /// answer `headers` with digest.
    pub bearer: Option<BearerChallenge>,
}

/// A request the machine wants sent; the driver builds it from [`CallMachine::dialog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutRequest {
    /// The initial INVITE (again, with credentials, after a challenge).
    Invite {
        /// CSeq number.
        cseq: u32,
        /// SDP offer.
        sdp: Vec<u8>,
        /// The challenge to answer, if any. When the driver cannot answer it, it reports
        /// [`CallMachine::handle_request_failed`] for this CSeq.
        challenge: Option<Challenge>,
    },
    /// CANCEL of the initial INVITE (same CSeq number and branch).
    Cancel {
        /// CSeq number of the INVITE.
        cseq: u32,
    },
    /// ACK of a 2xx to our INVITE or re-INVITE with this CSeq. rsipstack's client transaction
    /// sends it by itself; a driver on another stack would send it here.
    Ack {
        /// CSeq number of the INVITE.
        cseq: u32,
    },
    /// BYE.
    Bye {
        /// CSeq number.
        cseq: u32,
    },
    /// re-INVITE with a new offer (hold, resume).
    ReInvite {
        /// CSeq number.
        cseq: u32,
        /// SDP offer.
        sdp: Vec<u8>,
    },
    /// INFO.
    Info {
        /// CSeq number.
        cseq: u32,
        /// Content-Type.
        content_type: String,
        /// Body.
        body: Vec<u8>,
    },
    /// REFER to `target` (blind transfer).
    Refer {
        /// CSeq number.
        cseq: u32,
        /// Refer-To URI.
        target: String,
    },
    /// NOTIFY with a `message/sipfrag` status about a REFER we accepted.
    Notify {
        /// CSeq number.
        cseq: u32,
        /// Status of our call to the transfer target.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
}

impl OutRequest {
    /// The request's method.
    pub fn method(&self) -> Method {
        match self {
            OutRequest::Invite { .. } | OutRequest::ReInvite { .. } => Method::Invite,
            OutRequest::Cancel { .. } => Method::Cancel,
            OutRequest::Ack { .. } => Method::Ack,
            OutRequest::Bye { .. } => Method::Bye,
            OutRequest::Info { .. } => Method::Info,
            OutRequest::Refer { .. } => Method::Refer,
            OutRequest::Notify { .. } => Method::Notify,
        }
    }

    /// The request's CSeq number.
    pub fn cseq(&self) -> u32 {
        match self {
            OutRequest::Invite { cseq, .. }
            | OutRequest::Cancel { cseq }
            | OutRequest::Ack { cseq }
            | OutRequest::Bye { cseq }
            | OutRequest::ReInvite { cseq, .. }
            | OutRequest::Info { cseq, .. }
            | OutRequest::Refer { cseq, .. }
            | OutRequest::Notify { cseq, .. } => *cseq,
        }
    }
}

/// What the driver must do, in order.
#[derive(Debug, Clone)]
pub enum CallAction {
    /// Send this request (a new client transaction, except ACK and CANCEL).
    Send(OutRequest),
    /// Answer a request we received (100 Trying, 180, 200 with SDP, 4xx …).
    Respond {
        /// Which request.
        txn: ServerTxn,
        /// Status code.
        status: u16,
        /// SDP body (with a 2xx to an INVITE).
        sdp: Option<Vec<u8>>,
        /// A `Retry-After` header in seconds (the 500 to an overlapping re-INVITE).
        retry_after: Option<u32>,
    },
    /// Stop the initial INVITE's client transaction: no response to it is wanted any more.
    AbandonInvite,
    /// Tell the application.
    Event(SipEvent),
}

/// A response to one of our requests, reduced to what the call needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InResponse {
    /// Method of the request it answers (from CSeq).
    pub method: Option<Method>,
    /// CSeq number of the request it answers.
    pub cseq: u32,
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// The To tag.
    pub to_tag: Option<String>,
    /// URI of the first Contact (without angle brackets or parameters).
    pub contact: Option<String>,
    /// Record-Route entries, one per route, in message order.
    pub record_route: Vec<String>,
    /// Body (SDP answer for INVITE).
    pub body: Vec<u8>,
    /// WWW-Authenticate (401) or Proxy-Authenticate (407) values.
    pub challenges: Vec<String>,
    /// The `Reason` header's text (RFC 3326), the provider's explanation of a 403.
    pub reason_text: Option<String>,
}

/// A request from the other side inside this call (not ACK or CANCEL: see
/// [`CallMachine::handle_ack`] and [`CallMachine::handle_cancel`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InRequest {
    /// Method: INVITE (a re-INVITE), BYE, INFO, REFER or NOTIFY.
    pub method: Method,
    /// CSeq number.
    pub cseq: u32,
    /// URI of the first Contact, if any.
    pub contact: Option<String>,
    /// Content-Type, if any.
    pub content_type: Option<String>,
    /// Body.
    pub body: Vec<u8>,
    /// The Event header (NOTIFY).
    pub event: Option<String>,
    /// The Refer-To URI (REFER), without angle brackets.
    pub refer_to: Option<String>,
}

impl InRequest {
    /// A request of `method` with CSeq `cseq` and nothing else.
    pub fn new(method: Method, cseq: u32) -> Self {
        InRequest {
            method,
            cseq,
            contact: None,
            content_type: None,
            body: Vec::new(),
            event: None,
            refer_to: None,
        }
    }
}

/// A new incoming INVITE, reduced to what the call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingInvite {
    /// The dialog as the INVITE defines it (our tag freshly made, the route set in
    /// Record-Route order, `local_cseq` where our own requests start).
    pub dialog: Dialog,
    /// The INVITE's CSeq number (its ACK carries the same).
    pub cseq: u32,
    /// The account it arrived on.
    pub account: String,
    /// Caller (From URI).
    pub from: String,
    /// SDP offer, if any.
    pub offer: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Our INVITE is out, no final answer yet.
    Calling,
    /// We hung up before the final answer: the Ended event went out; a CANCEL went out (or
    /// waits for a provisional), and we wait for the INVITE to end.
    Cancelling,
    /// Incoming INVITE not answered yet.
    Offered,
    /// We sent 200, waiting for the ACK.
    Accepted,
    /// Both sides agree the call is up.
    Established,
    /// Over; nothing more to do.
    Terminated,
}

/// Our re-INVITE in flight.
#[derive(Debug)]
struct LocalReoffer {
    cseq: u32,
    sdp: Vec<u8>,
}

/// Their re-INVITE waiting for the application's answer.
#[derive(Debug)]
struct RemoteReoffer {
    txn: ServerTxn,
    deadline: Instant,
}

/// One call: its dialog, phase and timers. See the [module docs](self).
#[derive(Debug)]
pub struct CallMachine {
    id: CallId,
    state: State,
    dialog: Dialog,
    /// We made the Call-ID (outgoing call): decides the glare back-off range.
    owner: bool,
    // Outgoing: the initial INVITE.
    invite_cseq: u32,
    invite_sdp: Vec<u8>,
    got_provisional: bool,
    cancel_sent: bool,
    auth: AuthRetry,
    no_response_at: Option<Instant>,
    give_up_at: Option<Instant>,
    // Incoming: the initial INVITE.
    invite_txn: Option<ServerTxn>,
    remote_invite_cseq: u32,
    ack_deadline: Option<Instant>,
    // re-INVITEs.
    local_reoffer: Option<LocalReoffer>,
    queued_reoffers: VecDeque<Vec<u8>>,
    glare_retry: Option<(Instant, Vec<u8>)>,
    remote_reoffer: Option<RemoteReoffer>,
    // REFERs we sent, by CSeq.
    refers: Vec<u32>,
    rng: u64,
    actions: VecDeque<CallAction>,
}

impl CallMachine {
    /// A call we place: sends the INVITE with `sdp` at once. `dialog` has our tag, the
    /// target as `remote_uri`/`remote_target`, no remote tag or route set, and the INVITE's
    /// CSeq as `local_cseq`. `seed` feeds the glare back-off (any random number).
    pub fn outgoing(id: CallId, dialog: Dialog, sdp: Vec<u8>, now: Instant, seed: u64) -> Self {
        let mut m = CallMachine::new(id, dialog, State::Calling, true, seed);
        m.invite_cseq = m.dialog.local_cseq;
        m.invite_sdp = sdp.clone();
        m.no_response_at = Some(now + NO_RESPONSE);
        m.push_send(OutRequest::Invite {
            cseq: m.invite_cseq,
            sdp,
            challenge: None,
        });
        m
    }

    /// A call the other side placed, arriving as the request `txn`: answers 100 Trying and
    /// tells the application ([`SipEvent::Incoming`]).
    pub fn incoming(
        id: CallId,
        txn: ServerTxn,
        invite: IncomingInvite,
        _now: Instant,
        seed: u64,
    ) -> Self {
        let mut m = CallMachine::new(id, invite.dialog, State::Offered, false, seed);
        m.invite_txn = Some(txn);
        m.remote_invite_cseq = invite.cseq;
        m.respond(txn, 100, None);
        m.emit(SipEvent::Incoming {
            call: id,
            account: invite.account,
            from: invite.from,
            offer: invite.offer,
        });
        m
    }

    fn new(id: CallId, dialog: Dialog, state: State, owner: bool, seed: u64) -> Self {
        CallMachine {
            id,
            state,
            dialog,
            owner,
            invite_cseq: 0,
            invite_sdp: Vec::new(),
            got_provisional: false,
            cancel_sent: false,
            auth: AuthRetry::new(false),
            no_response_at: None,
            give_up_at: None,
            invite_txn: None,
            remote_invite_cseq: 0,
            ack_deadline: None,
            local_reoffer: None,
            queued_reoffers: VecDeque::new(),
            glare_retry: None,
            remote_reoffer: None,
            refers: Vec::new(),
            // xorshift must not start at 0.
            rng: seed | 1,
            actions: VecDeque::new(),
        }
    }

    /// The account can answer KRYPTON Bearer challenges (it has a signer): prefer them to
    /// digest. Set it before the first response arrives.
    pub fn set_bearer(&mut self, bearer: bool) {
        self.auth = AuthRetry::new(bearer);
    }

    /// Our handle for the call.
    pub fn id(&self) -> CallId {
        self.id
    }

    /// The dialog: what the driver needs to build in-dialog requests.
    pub fn dialog(&self) -> &Dialog {
        &self.dialog
    }

    /// True once the call is over and its last actions have been polled: forget it.
    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated && self.actions.is_empty()
    }

    /// True while the call is up (answered and confirmed both ways).
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// The next thing to do, if any. Drain it after every input.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// When [`CallMachine::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.no_response_at,
            self.give_up_at,
            self.ack_deadline,
            self.remote_reoffer.as_ref().map(|r| r.deadline),
            self.glare_retry.as_ref().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ------------------------------------------------------------------ local commands

    /// Hang up: CANCEL while our INVITE is pending (once a provisional came), 603 for an
    /// unanswered incoming call, BYE once answered. Tells the application at once.
    pub fn hangup(&mut self, now: Instant) {
        match self.state {
            State::Calling => {
                self.state = State::Cancelling;
                if self.got_provisional {
                    self.send_cancel(now);
                } else {
                    // RFC 3261 §9.1: no CANCEL before a provisional; it goes when one comes.
                    self.give_up_at = Some(now + TIMER_64_T1);
                }
                self.emit_ended(EndReason::LocalHangup);
            }
            State::Offered => {
                self.answer_invite(603, None);
                self.end(EndReason::LocalHangup);
            }
            State::Accepted | State::Established => {
                self.send_bye();
                self.end(EndReason::LocalHangup);
            }
            State::Cancelling | State::Terminated => {}
        }
    }

    /// Send 180 Ringing for an unanswered incoming call.
    pub fn ringing(&mut self, _now: Instant) {
        if self.state == State::Offered
            && let Some(txn) = self.invite_txn
        {
            self.respond(txn, 180, None);
        }
    }

    /// Accept an unanswered incoming call with an SDP answer (200); the call is established
    /// when the ACK comes.
    pub fn answer(&mut self, now: Instant, sdp: Vec<u8>) {
        if self.state != State::Offered {
            return;
        }
        self.answer_invite(200, Some(sdp));
        self.state = State::Accepted;
        self.ack_deadline = Some(now + TIMER_64_T1);
    }

    /// Refuse an unanswered incoming call with `status` (486, 603, 488 …; anything that is
    /// no failure status becomes 603).
    pub fn reject(&mut self, _now: Instant, status: u16) {
        if self.state != State::Offered {
            return;
        }
        let status = if (300..700).contains(&status) {
            status
        } else {
            603
        };
        self.answer_invite(status, None);
        self.end(EndReason::Declined);
    }

    /// Send a re-INVITE with a new offer; the outcome comes as [`SipEvent::ReofferResult`].
    /// While another INVITE transaction runs (ours or theirs), it waits its turn.
    pub fn reoffer(&mut self, now: Instant, sdp: Vec<u8>) {
        match self.state {
            State::Established | State::Accepted => {
                self.queued_reoffers.push_back(sdp);
                self.next_reoffer(now);
            }
            _ => self.emit(SipEvent::ReofferResult {
                call: self.id,
                result: Err(491),
            }),
        }
    }

    /// Answer the other side's re-INVITE: `Ok(sdp)` → 200 with it, `Err(status)` → that failure.
    pub fn answer_reoffer(&mut self, now: Instant, answer: Result<Vec<u8>, u16>) {
        let Some(pending) = self.remote_reoffer.take() else {
            return;
        };
        match answer {
            Ok(sdp) => self.respond(pending.txn, 200, Some(sdp)),
            Err(status) => {
                let status = if (300..700).contains(&status) {
                    status
                } else {
                    488
                };
                self.respond(pending.txn, status, None);
            }
        }
        self.next_reoffer(now);
    }

    /// Send an INFO inside the call.
    pub fn info(&mut self, _now: Instant, content_type: &str, body: Vec<u8>) {
        if !self.in_dialog() {
            return;
        }
        let cseq = self.next_cseq();
        self.push_send(OutRequest::Info {
            cseq,
            content_type: content_type.to_string(),
            body,
        });
    }

    /// Ask the other side to call `target` (a SIP URI) instead; the answer comes as
    /// [`SipEvent::TransferAccepted`].
    pub fn refer(&mut self, _now: Instant, target: &str) {
        if !matches!(self.state, State::Established | State::Accepted) {
            self.emit(SipEvent::TransferAccepted {
                call: self.id,
                accepted: false,
                status: None,
            });
            return;
        }
        let cseq = self.next_cseq();
        self.refers.push(cseq);
        self.push_send(OutRequest::Refer {
            cseq,
            target: target.to_string(),
        });
    }

    /// Tell the transferor how our call to the REFER target goes.
    pub fn notify_transfer(&mut self, _now: Instant, status: u16, reason: &str) {
        if !self.in_dialog() {
            return;
        }
        let cseq = self.next_cseq();
        self.push_send(OutRequest::Notify {
            cseq,
            status,
            reason: reason.to_string(),
        });
    }

    // ------------------------------------------------------------------ network inputs

    /// A response to one of our requests arrived.
    pub fn handle_response(&mut self, now: Instant, r: InResponse) {
        match r.method {
            Some(Method::Invite) => {
                if self
                    .local_reoffer
                    .as_ref()
                    .is_some_and(|l| l.cseq == r.cseq)
                {
                    self.reoffer_response(now, r);
                } else if r.cseq == self.invite_cseq
                    && matches!(self.state, State::Calling | State::Cancelling)
                {
                    self.invite_response(now, r);
                }
            }
            Some(Method::Refer) if r.status >= 200 => {
                if let Some(i) = self.refers.iter().position(|c| *c == r.cseq) {
                    self.refers.remove(i);
                    self.emit(SipEvent::TransferAccepted {
                        call: self.id,
                        accepted: (200..300).contains(&r.status),
                        status: Some(r.status),
                    });
                }
            }
            _ => {}
        }
    }

    /// Our request `method`/`cseq` got no final response: it could not be sent, its
    /// challenge could not be answered, or nothing answered in time. `status` is the status
    /// to report (408 for no answer), `reason` says what happened.
    pub fn handle_request_failed(
        &mut self,
        now: Instant,
        method: Method,
        cseq: u32,
        status: Option<u16>,
        reason: String,
    ) {
        match method {
            Method::Invite if self.local_reoffer.as_ref().is_some_and(|l| l.cseq == cseq) => {
                self.local_reoffer = None;
                self.emit(SipEvent::ReofferResult {
                    call: self.id,
                    result: Err(status.unwrap_or(408)),
                });
                self.next_reoffer(now);
            }
            Method::Invite if cseq == self.invite_cseq => match self.state {
                State::Calling => self.end(EndReason::Failed { status, reason }),
                State::Cancelling => self.terminate(),
                _ => {}
            },
            Method::Refer => {
                if let Some(i) = self.refers.iter().position(|c| *c == cseq) {
                    self.refers.remove(i);
                    self.emit(SipEvent::TransferAccepted {
                        call: self.id,
                        accepted: false,
                        status,
                    });
                }
            }
            _ => {}
        }
    }

    /// A request from the other side inside this call, to be answered on `txn`.
    pub fn handle_request(&mut self, now: Instant, txn: ServerTxn, req: InRequest) {
        if self.state == State::Terminated {
            self.respond(txn, 481, None);
            return;
        }
        match req.method {
            Method::Bye => {
                self.respond(txn, 200, None);
                if self.state == State::Cancelling {
                    self.terminate();
                } else {
                    self.end(EndReason::RemoteHangup);
                }
            }
            Method::Invite => self.remote_reoffer(now, txn, req),
            Method::Info => {
                self.respond(txn, 200, None);
                self.emit(SipEvent::Info {
                    call: self.id,
                    content_type: req.content_type.unwrap_or_default(),
                    body: req.body,
                });
            }
            Method::Notify => {
                self.respond(txn, 200, None);
                let refer = req
                    .event
                    .is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("refer"));
                if refer && let Some(status) = sipfrag_status(&req.body) {
                    self.emit(SipEvent::TransferProgress {
                        call: self.id,
                        status,
                    });
                }
            }
            Method::Refer => match req
                .refer_to
                .filter(|t| t.starts_with("sip:") || t.starts_with("sips:"))
            {
                Some(target) => {
                    self.respond(txn, 202, None);
                    self.emit(SipEvent::TransferRequested {
                        call: self.id,
                        target,
                    });
                }
                None => self.respond(txn, 400, None),
            },
            Method::Ack | Method::Cancel => {}
        }
    }

    /// An ACK for the 2xx to the INVITE with CSeq `cseq` arrived.
    pub fn handle_ack(&mut self, now: Instant, cseq: u32) {
        if self.state == State::Accepted && cseq == self.remote_invite_cseq {
            self.state = State::Established;
            self.ack_deadline = None;
            self.emit(SipEvent::Confirmed { call: self.id });
            self.next_reoffer(now);
        }
    }

    /// The other side cancelled its INVITE (the transaction layer answers the CANCEL itself).
    pub fn handle_cancel(&mut self, _now: Instant) {
        if self.state == State::Offered {
            self.answer_invite(487, None);
            self.end(EndReason::RemoteHangup);
        }
    }

    /// Run due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.no_response_at.is_some_and(|t| now >= t) {
            self.no_response_at = None;
            match self.state {
                State::Calling => {
                    self.actions.push_back(CallAction::AbandonInvite);
                    self.end(EndReason::Failed {
                        status: Some(408),
                        reason: format!(
                            "the proxy did not answer within {} s",
                            NO_RESPONSE.as_secs()
                        ),
                    });
                }
                State::Cancelling => {
                    self.actions.push_back(CallAction::AbandonInvite);
                    self.terminate();
                }
                _ => {}
            }
        }
        if self.give_up_at.is_some_and(|t| now >= t) {
            self.give_up_at = None;
            if self.state == State::Cancelling {
                self.actions.push_back(CallAction::AbandonInvite);
                self.terminate();
            }
        }
        if self.ack_deadline.is_some_and(|t| now >= t) {
            self.ack_deadline = None;
            if self.state == State::Accepted {
                self.send_bye();
                self.end(EndReason::Failed {
                    status: None,
                    reason: "the caller never acknowledged our answer (no ACK)".into(),
                });
            }
        }
        if self
            .remote_reoffer
            .as_ref()
            .is_some_and(|r| now >= r.deadline)
        {
            self.answer_reoffer(now, Err(500));
        }
        if let Some((at, _)) = &self.glare_retry
            && now >= *at
            && let Some((_, sdp)) = self.glare_retry.take()
        {
            // The retry goes before anything queued after it.
            self.queued_reoffers.push_front(sdp);
            self.next_reoffer(now);
        }
    }

    // ------------------------------------------------------------------ internals

    fn invite_response(&mut self, now: Instant, r: InResponse) {
        self.no_response_at = None;
        let status = r.status;
        if self.state == State::Cancelling {
            if (101..200).contains(&status) {
                self.got_provisional = true;
                if !self.cancel_sent {
                    self.send_cancel(now);
                }
            } else if (200..300).contains(&status) {
                // The answer crossed our CANCEL: confirm it and end it at once.
                self.learn_dialog(&r);
                self.push_send(OutRequest::Ack {
                    cseq: self.invite_cseq,
                });
                self.send_bye();
                self.terminate();
            } else if status >= 300 {
                self.terminate();
            }
            return;
        }
        match status {
            100 => {}
            101..=199 => {
                self.got_provisional = true;
                if self.dialog.remote_tag.is_none() {
                    self.dialog.remote_tag = r.to_tag;
                }
                let sdp = (!r.body.is_empty()).then_some(r.body);
                self.emit(SipEvent::Progress {
                    call: self.id,
                    status,
                    sdp,
                });
            }
            200..=299 => {
                self.learn_dialog(&r);
                self.push_send(OutRequest::Ack {
                    cseq: self.invite_cseq,
                });
                self.state = State::Established;
                self.emit(SipEvent::Answered {
                    call: self.id,
                    sdp: r.body,
                });
                self.next_reoffer(now);
            }
            _ => {
                let step = self.auth.handle(&AuthResponse {
                    status,
                    phrase: &r.reason,
                    challenges: &r.challenges,
                    reason_text: r.reason_text.as_deref(),
                });
                let challenge = match step {
                    AuthStep::Retry(AuthAnswer::Fresh) => None,
                    AuthStep::Retry(AuthAnswer::Bearer { challenge, .. }) => Some(Challenge {
                        status,
                        headers: r.challenges,
                        bearer: Some(challenge),
                    }),
                    AuthStep::Retry(AuthAnswer::Digest { challenges, .. }) => Some(Challenge {
                        status,
                        headers: challenges,
                        bearer: None,
                    }),
                    AuthStep::Refused { status, reason } => {
                        self.end(EndReason::Failed {
                            status: Some(status),
                            reason,
                        });
                        return;
                    }
                    AuthStep::Pass => {
                        let reason = match (status, r.reason_text) {
                            // Not ours: we never sent a CANCEL in this state.
                            (487, _) => EndReason::RemoteHangup,
                            // The provider's explanation (AUTH.md §7).
                            (403, Some(text)) if !text.trim().is_empty() => EndReason::Failed {
                                status: Some(403),
                                reason: text,
                            },
                            _ => EndReason::from_failure_status(status, &r.reason),
                        };
                        self.end(reason);
                        return;
                    }
                };
                // Again with credentials (or, after a stale proof, without, for a fresh
                // challenge): CSeq + 1, same Call-ID and tag.
                self.got_provisional = false;
                self.invite_cseq = self.next_cseq();
                self.no_response_at = Some(now + NO_RESPONSE);
                self.push_send(OutRequest::Invite {
                    cseq: self.invite_cseq,
                    sdp: self.invite_sdp.clone(),
                    challenge,
                });
            }
        }
    }

    fn reoffer_response(&mut self, now: Instant, r: InResponse) {
        let status = r.status;
        if status < 200 {
            return;
        }
        let Some(ours) = self.local_reoffer.take() else {
            return;
        };
        if (200..300).contains(&status) {
            if let Some(contact) = r.contact {
                self.dialog.remote_target = contact;
            }
            self.push_send(OutRequest::Ack { cseq: ours.cseq });
            self.emit(SipEvent::ReofferResult {
                call: self.id,
                result: Ok(r.body),
            });
        } else if status == 491 {
            // Glare: try again after a random time (RFC 3261 §14.1).
            let delay = self.glare_delay();
            self.glare_retry = Some((now + delay, ours.sdp));
            return;
        } else if matches!(status, 408 | 481) {
            // The other side lost the dialog (RFC 3261 §12.2.1.2, §14.1): end it on our side.
            self.send_bye();
            self.end(EndReason::Failed {
                status: Some(status),
                reason: format!(
                    "the other side no longer knows this call: our re-INVITE got {status} {}",
                    r.reason
                ),
            });
            return;
        } else {
            self.emit(SipEvent::ReofferResult {
                call: self.id,
                result: Err(status),
            });
        }
        self.next_reoffer(now);
    }

    fn remote_reoffer(&mut self, now: Instant, txn: ServerTxn, req: InRequest) {
        if !matches!(self.state, State::Established | State::Accepted) {
            self.respond(txn, 481, None);
            return;
        }
        if self.local_reoffer.is_some() {
            // Glare (RFC 3261 §14.2): both sides sent a re-INVITE.
            self.respond(txn, 491, None);
            return;
        }
        if self.remote_reoffer.is_some() {
            // A second one before we answered the first (RFC 3261 §14.2): 500 with a
            // Retry-After of a random 0–10 s.
            let retry_after = Some(self.random(11) as u32);
            self.actions.push_back(CallAction::Respond {
                txn,
                status: 500,
                sdp: None,
                retry_after,
            });
            return;
        }
        self.respond(txn, 100, None);
        if let Some(contact) = req.contact {
            self.dialog.remote_target = contact;
        }
        self.remote_reoffer = Some(RemoteReoffer {
            txn,
            deadline: now + REOFFER_ANSWER,
        });
        self.emit(SipEvent::RemoteOffer {
            call: self.id,
            sdp: req.body,
        });
    }

    /// Send the next queued re-INVITE if no INVITE transaction runs in either direction.
    fn next_reoffer(&mut self, _now: Instant) {
        if self.state != State::Established
            || self.local_reoffer.is_some()
            || self.remote_reoffer.is_some()
            || self.glare_retry.is_some()
        {
            return;
        }
        let Some(sdp) = self.queued_reoffers.pop_front() else {
            return;
        };
        let cseq = self.next_cseq();
        self.local_reoffer = Some(LocalReoffer {
            cseq,
            sdp: sdp.clone(),
        });
        self.push_send(OutRequest::ReInvite { cseq, sdp });
    }

    fn learn_dialog(&mut self, r: &InResponse) {
        self.dialog.remote_tag = r.to_tag.clone();
        if let Some(contact) = &r.contact {
            self.dialog.remote_target = contact.clone();
        }
        // RFC 3261 §12.1.2: the UAC's route set is the Record-Route in reverse order.
        self.dialog.route_set = r.record_route.iter().rev().cloned().collect();
    }

    fn send_cancel(&mut self, now: Instant) {
        self.cancel_sent = true;
        // RFC 3261 §9.1: if the INVITE does not end within 64·T1 of the CANCEL, give up.
        self.give_up_at = Some(now + TIMER_64_T1);
        self.push_send(OutRequest::Cancel {
            cseq: self.invite_cseq,
        });
    }

    fn send_bye(&mut self) {
        let cseq = self.next_cseq();
        self.push_send(OutRequest::Bye { cseq });
    }

    /// A final (or provisional) answer to the incoming INVITE.
    fn answer_invite(&mut self, status: u16, sdp: Option<Vec<u8>>) {
        if let Some(txn) = self.invite_txn {
            self.respond(txn, status, sdp);
            if status >= 200 {
                self.invite_txn = None;
            }
        }
    }

    fn in_dialog(&self) -> bool {
        !matches!(self.state, State::Terminated)
    }

    fn next_cseq(&mut self) -> u32 {
        self.dialog.local_cseq = self.dialog.local_cseq.wrapping_add(1);
        self.dialog.local_cseq
    }

    /// Tell the application the call is over and stop.
    fn end(&mut self, reason: EndReason) {
        self.emit_ended(reason);
        self.terminate();
    }

    fn emit_ended(&mut self, reason: EndReason) {
        self.emit(SipEvent::Ended {
            call: self.id,
            reason,
        });
    }

    /// Stop: answer what is still pending and drop every timer.
    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.answer_invite(487, None);
        if let Some(pending) = self.remote_reoffer.take() {
            self.respond(pending.txn, 487, None);
        }
        self.no_response_at = None;
        self.give_up_at = None;
        self.ack_deadline = None;
        self.glare_retry = None;
        self.local_reoffer = None;
        self.queued_reoffers.clear();
        self.refers.clear();
    }

    fn push_send(&mut self, r: OutRequest) {
        self.actions.push_back(CallAction::Send(r));
    }

    fn respond(&mut self, txn: ServerTxn, status: u16, sdp: Option<Vec<u8>>) {
        self.actions.push_back(CallAction::Respond {
            txn,
            status,
            sdp,
            retry_after: None,
        });
    }

    fn emit(&mut self, e: SipEvent) {
        self.actions.push_back(CallAction::Event(e));
    }

    /// RFC 3261 §14.1: 2.1–4 s if we own the Call-ID, else 0–2 s, in units of 10 ms.
    fn glare_delay(&mut self) -> Duration {
        let tens = if self.owner {
            210 + self.random(191)
        } else {
            self.random(201)
        };
        Duration::from_millis(tens * 10)
    }

    /// A random number in `0..n`.
    fn random(&mut self, n: u64) -> u64 {
        // xorshift64*: a few random bits need no crypto.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }
}

/// The status code of a `message/sipfrag` body (`SIP/2.0 200 OK`).
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    parts
        .next()?
        .parse()
        .ok()
        .filter(|s| (100..700).contains(s))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const OFFER: &[u8] = b"offer";
    const ANSWER: &[u8] = b"answer";

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Side {
        A,
        B,
    }

    impl Side {
        fn other(self) -> Side {
            match self {
                Side::A => Side::B,
                Side::B => Side::A,
            }
        }
    }

    /// Something in flight through the proxy.
    #[derive(Debug, Clone)]
    enum Wire {
        Req(Side, OutRequest),
        Resp(Side, InResponse),
    }

    #[derive(Default)]
    struct Peer {
        m: Option<CallMachine>,
        events: Vec<SipEvent>,
        sent: Vec<OutRequest>,
        abandoned: bool,
    }

    /// Two call machines joined through an in-memory proxy, in virtual time. A calls B.
    struct Net {
        t0: Instant,
        now: Instant,
        a: Peer,
        b: Peer,
        wire: VecDeque<Wire>,
        /// Messages the proxy holds back (see `hold`).
        held: Vec<Wire>,
        hold: Option<fn(&Wire) -> bool>,
        /// Server transactions: which request each answers.
        txns: HashMap<(Side, ServerTxn), (Method, u32)>,
        next_txn: u64,
        /// The proxy answers this many INVITEs with 407 itself.
        challenges: Vec<String>,
    }

    impl Net {
        fn new(seed: u64) -> Net {
            let t0 = Instant::now();
            let dialog = Dialog {
                call_id: "call-1".into(),
                local_tag: "a-tag".into(),
                remote_tag: None,
                local_uri: "sip:alice@p.test".into(),
                remote_uri: "sip:bob@p.test".into(),
                remote_target: "sip:bob@p.test".into(),
                route_set: Vec::new(),
                local_cseq: 1,
            };
            let a = CallMachine::outgoing(CallId(1), dialog, OFFER.to_vec(), t0, seed);
            Net {
                t0,
                now: t0,
                a: Peer {
                    m: Some(a),
                    ..Peer::default()
                },
                b: Peer::default(),
                wire: VecDeque::new(),
                held: Vec::new(),
                hold: None,
                txns: HashMap::new(),
                next_txn: 1,
                challenges: Vec::new(),
            }
        }

        fn peer(&mut self, s: Side) -> &mut Peer {
            match s {
                Side::A => &mut self.a,
                Side::B => &mut self.b,
            }
        }

        fn m(&mut self, s: Side) -> &mut CallMachine {
            self.peer(s).m.as_mut().expect("a call machine")
        }

        /// Move every machine's actions onto the wire.
        fn pump(&mut self) {
            for s in [Side::A, Side::B] {
                while let Some(action) = self.peer(s).m.as_mut().and_then(|m| m.poll_action()) {
                    match action {
                        CallAction::Send(r) => {
                            self.peer(s).sent.push(r.clone());
                            self.put(Wire::Req(s.other(), r));
                        }
                        CallAction::Respond {
                            txn, status, sdp, ..
                        } => {
                            let resp = self.response(s, txn, status, sdp);
                            self.put(Wire::Resp(s.other(), resp));
                        }
                        CallAction::AbandonInvite => self.peer(s).abandoned = true,
                        CallAction::Event(e) => self.peer(s).events.push(e),
                    }
                }
            }
        }

        fn put(&mut self, w: Wire) {
            if self.hold.is_some_and(|h| h(&w)) {
                self.held.push(w);
            } else {
                self.wire.push_back(w);
            }
        }

        fn release(&mut self) {
            self.hold = None;
            self.wire.extend(self.held.drain(..));
        }

        fn response(
            &mut self,
            from: Side,
            txn: ServerTxn,
            status: u16,
            sdp: Option<Vec<u8>>,
        ) -> InResponse {
            let (method, cseq) = self.txns[&(from, txn)];
            let m = self.m(from);
            InResponse {
                method: Some(method),
                cseq,
                status,
                reason: format!("status {status}"),
                to_tag: (status > 100).then(|| m.dialog().local_tag.clone()),
                contact: Some(format!("sip:{from:?}@10.0.0.1")),
                record_route: vec!["<sip:p1.test;lr>".into(), "<sip:p2.test;lr>".into()],
                body: sdp.unwrap_or_default(),
                challenges: Vec::new(),
                reason_text: None,
            }
        }

        fn txn(&mut self, at: Side, method: Method, cseq: u32) -> ServerTxn {
            let txn = ServerTxn(self.next_txn);
            self.next_txn += 1;
            self.txns.insert((at, txn), (method, cseq));
            txn
        }

        /// Deliver one message; false when nothing is in flight.
        fn step(&mut self) -> bool {
            self.pump();
            let Some(w) = self.wire.pop_front() else {
                return false;
            };
            let now = self.now;
            match w {
                Wire::Resp(to, r) => self.m(to).handle_response(now, r),
                Wire::Req(
                    Side::B,
                    OutRequest::Invite {
                        cseq,
                        sdp,
                        challenge: _,
                    },
                ) if self.b.m.is_none() => {
                    if !self.challenges.is_empty() {
                        // The proxy challenges.
                        let value = self.challenges.remove(0);
                        self.m(Side::A).handle_response(
                            now,
                            InResponse {
                                method: Some(Method::Invite),
                                cseq,
                                status: 407,
                                reason: "Proxy Authentication Required".into(),
                                to_tag: Some("proxy-tag".into()),
                                challenges: vec![value],
                                ..InResponse::default()
                            },
                        );
                        return true;
                    }
                    let a = self.m(Side::A).dialog().clone();
                    let txn = self.txn(Side::B, Method::Invite, cseq);
                    let invite = IncomingInvite {
                        dialog: Dialog {
                            call_id: a.call_id,
                            local_tag: "b-tag".into(),
                            remote_tag: Some(a.local_tag),
                            local_uri: a.remote_uri,
                            remote_uri: a.local_uri.clone(),
                            remote_target: "sip:A@10.0.0.1".into(),
                            route_set: vec!["<sip:p1.test;lr>".into(), "<sip:p2.test;lr>".into()],
                            local_cseq: cseq + 1000,
                        },
                        cseq,
                        account: "bob".into(),
                        from: a.local_uri,
                        offer: Some(sdp),
                    };
                    self.b.m = Some(CallMachine::incoming(CallId(7), txn, invite, now, 99));
                }
                Wire::Req(to, OutRequest::Cancel { .. }) => self.m(to).handle_cancel(now),
                Wire::Req(to, OutRequest::Ack { cseq }) => self.m(to).handle_ack(now, cseq),
                Wire::Req(to, r) => {
                    let method = r.method();
                    let txn = self.txn(to, method, r.cseq());
                    let mut req = InRequest::new(method, r.cseq());
                    match r {
                        OutRequest::ReInvite { sdp, .. } => {
                            req.body = sdp;
                            req.contact = Some(format!("sip:{:?}@10.0.0.9", to.other()));
                        }
                        OutRequest::Info {
                            content_type, body, ..
                        } => {
                            req.content_type = Some(content_type);
                            req.body = body;
                        }
                        OutRequest::Refer { target, .. } => req.refer_to = Some(target),
                        OutRequest::Notify { status, reason, .. } => {
                            req.event = Some("refer".into());
                            req.body = format!("SIP/2.0 {status} {reason}\r\n").into_bytes();
                        }
                        _ => {}
                    }
                    self.m(to).handle_request(now, txn, req);
                }
            }
            true
        }

        /// Deliver until nothing is in flight (no time passes).
        fn run(&mut self) {
            while self.step() {}
            self.pump();
        }

        /// Jump to the next timer of either machine and run it.
        fn advance(&mut self) -> Duration {
            let next = [&self.a, &self.b]
                .iter()
                .filter_map(|p| p.m.as_ref().and_then(CallMachine::poll_timeout))
                .min()
                .expect("a timer");
            self.now = next;
            let now = self.now;
            for s in [Side::A, Side::B] {
                if let Some(m) = self.peer(s).m.as_mut() {
                    m.handle_timeout(now);
                }
            }
            self.run();
            self.now - self.t0
        }

        fn ended(&self, s: Side) -> Vec<EndReason> {
            let p = match s {
                Side::A => &self.a,
                Side::B => &self.b,
            };
            p.events
                .iter()
                .filter_map(|e| match e {
                    SipEvent::Ended { reason, .. } => Some(reason.clone()),
                    _ => None,
                })
                .collect()
        }

        fn terminated(&self, s: Side) -> bool {
            let p = match s {
                Side::A => &self.a,
                Side::B => &self.b,
            };
            p.m.as_ref().is_some_and(CallMachine::is_terminated)
        }

        fn sent(&self, s: Side, method: Method) -> usize {
            let p = match s {
                Side::A => &self.a,
                Side::B => &self.b,
            };
            p.sent.iter().filter(|r| r.method() == method).count()
        }

        /// A rings B, B answers, both established.
        fn established(seed: u64) -> Net {
            let mut n = Net::new(seed);
            n.run();
            let now = n.now;
            n.m(Side::B).ringing(now);
            n.run();
            n.m(Side::B).answer(now, ANSWER.to_vec());
            n.run();
            assert!(n.m(Side::A).is_established() && n.m(Side::B).is_established());
            n
        }

        fn reoffer_results(&self, s: Side) -> Vec<Result<Vec<u8>, u16>> {
            let p = match s {
                Side::A => &self.a,
                Side::B => &self.b,
            };
            p.events
                .iter()
                .filter_map(|e| match e {
                    SipEvent::ReofferResult { result, .. } => Some(result.clone()),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn a_call_rings_is_answered_and_either_side_hangs_up() {
        for hangs_up in [Side::A, Side::B] {
            let mut n = Net::established(1);
            assert!(matches!(
                n.b.events.as_slice(),
                [SipEvent::Incoming { call: CallId(7), offer: Some(o), from, .. }, SipEvent::Confirmed { .. }]
                    if o == OFFER && from == "sip:alice@p.test"
            ));
            assert!(matches!(
                n.a.events.as_slice(),
                [SipEvent::Progress { status: 180, sdp: None, .. }, SipEvent::Answered { sdp, .. }]
                    if sdp == ANSWER
            ));
            // A learnt the dialog from the 200: tag, target, route set in reverse.
            let d = n.m(Side::A).dialog().clone();
            assert_eq!(d.remote_tag.as_deref(), Some("b-tag"));
            assert_eq!(d.remote_target, "sip:B@10.0.0.1");
            assert_eq!(d.route_set, ["<sip:p2.test;lr>", "<sip:p1.test;lr>"]);
            assert_eq!(n.sent(Side::A, Method::Ack), 1);

            let now = n.now;
            n.m(hangs_up).hangup(now);
            n.run();
            assert_eq!(n.sent(hangs_up, Method::Bye), 1);
            assert_eq!(n.ended(hangs_up), [EndReason::LocalHangup]);
            assert_eq!(n.ended(hangs_up.other()), [EndReason::RemoteHangup]);
            assert!(n.terminated(Side::A) && n.terminated(Side::B));
            assert_eq!(n.m(Side::A).poll_timeout(), None);
        }
    }

    #[test]
    fn refusals_end_the_call_with_the_matching_reason() {
        let cases = [
            (486, EndReason::Busy),
            (600, EndReason::Busy),
            (603, EndReason::Declined),
            (480, EndReason::Timeout),
            (
                404,
                EndReason::Failed {
                    status: Some(404),
                    reason: "404 status 404".into(),
                },
            ),
            (
                500,
                EndReason::Failed {
                    status: Some(500),
                    reason: "500 status 500".into(),
                },
            ),
        ];
        for (status, reason) in cases {
            let mut n = Net::new(1);
            n.run();
            let now = n.now;
            n.m(Side::B).reject(now, status);
            n.run();
            assert_eq!(n.ended(Side::A), [reason], "status {status}");
            assert_eq!(n.ended(Side::B), [EndReason::Declined]);
            assert!(n.terminated(Side::A) && n.terminated(Side::B));
            assert_eq!(n.sent(Side::A, Method::Cancel), 0);
        }
    }

    #[test]
    fn nobody_answers_the_proxy_gives_up_and_cancels_the_callee() {
        let mut n = Net::new(1);
        n.run();
        let now = n.now;
        n.m(Side::B).ringing(now);
        n.run();
        // The proxy's no-answer timer: 408 upstream, CANCEL downstream.
        n.now += Duration::from_secs(60);
        let now = n.now;
        n.m(Side::A).handle_response(
            now,
            InResponse {
                method: Some(Method::Invite),
                cseq: 1,
                status: 408,
                reason: "Request Timeout".into(),
                ..InResponse::default()
            },
        );
        n.m(Side::B).handle_cancel(now);
        n.run();
        assert_eq!(n.ended(Side::A), [EndReason::Timeout]);
        assert_eq!(n.ended(Side::B), [EndReason::RemoteHangup]);
        assert!(n.terminated(Side::A) && n.terminated(Side::B));
    }

    #[test]
    fn a_hangup_before_any_provisional_cancels_only_after_the_180() {
        let mut n = Net::new(1);
        // The proxy is slow: the INVITE sits there.
        n.hold = Some(|w| matches!(w, Wire::Req(_, OutRequest::Invite { .. })));
        n.run();
        n.now += Duration::from_millis(300);
        let now = n.now;
        n.m(Side::A).hangup(now);
        n.run();
        // The user hears at once; no CANCEL yet (RFC 3261 §9.1).
        assert_eq!(n.ended(Side::A), [EndReason::LocalHangup]);
        assert_eq!(n.sent(Side::A, Method::Cancel), 0);
        assert!(!n.terminated(Side::A));
        n.release();
        n.run();
        // 100 Trying came back: still no CANCEL.
        assert_eq!(n.sent(Side::A, Method::Cancel), 0);
        n.m(Side::B).ringing(now);
        n.run();
        // The 180 let the CANCEL go; B answered 487 and A's INVITE is over.
        assert_eq!(n.sent(Side::A, Method::Cancel), 1);
        assert_eq!(n.ended(Side::B), [EndReason::RemoteHangup]);
        assert_eq!(n.ended(Side::A), [EndReason::LocalHangup]);
        assert!(n.terminated(Side::A) && n.terminated(Side::B));
        // A told the user nothing about ringing after the hangup.
        assert!(
            !n.a.events
                .iter()
                .any(|e| matches!(e, SipEvent::Progress { .. }))
        );
    }

    #[test]
    fn a_cancelled_invite_that_never_ends_is_abandoned_after_64_t1() {
        let mut n = Net::new(1);
        n.run();
        let now = n.now;
        n.m(Side::B).ringing(now);
        n.run();
        // The CANCEL is lost; the INVITE never gets its 487.
        n.hold = Some(|w| matches!(w, Wire::Req(_, OutRequest::Cancel { .. })));
        n.m(Side::A).hangup(now);
        n.run();
        assert_eq!(n.sent(Side::A, Method::Cancel), 1);
        assert_eq!(n.advance(), TIMER_64_T1);
        assert!(n.a.abandoned && n.terminated(Side::A));
        assert_eq!(n.ended(Side::A), [EndReason::LocalHangup]);
    }

    #[test]
    fn a_200_crossing_the_cancel_is_acked_and_ended_with_a_bye() {
        let mut n = Net::new(1);
        n.run();
        let now = n.now;
        n.m(Side::B).ringing(now);
        n.run();
        // B answers and A hangs up before the 200 reaches A: the 200 and the CANCEL cross.
        n.m(Side::B).answer(now, ANSWER.to_vec());
        n.pump();
        n.m(Side::A).hangup(now);
        n.run();
        assert_eq!(n.sent(Side::A, Method::Cancel), 1);
        assert_eq!(n.sent(Side::A, Method::Ack), 1);
        assert_eq!(n.sent(Side::A, Method::Bye), 1);
        assert_eq!(n.ended(Side::A), [EndReason::LocalHangup]);
        assert!(
            !n.a.events
                .iter()
                .any(|e| matches!(e, SipEvent::Answered { .. }))
        );
        // B's call was confirmed by the ACK, then ended by the BYE.
        assert!(
            n.b.events
                .iter()
                .any(|e| matches!(e, SipEvent::Confirmed { .. }))
        );
        assert_eq!(n.ended(Side::B), [EndReason::RemoteHangup]);
        assert!(n.terminated(Side::A) && n.terminated(Side::B));
    }

    #[test]
    fn hold_and_resume_by_reinvite_in_both_directions() {
        let mut n = Net::established(1);
        for (from, offer, answer) in [
            (Side::A, &b"hold"[..], Ok(&b"held"[..])),
            (Side::B, b"hold-2", Ok(b"held-2")),
            (Side::A, b"video?", Err(488)),
            (Side::B, b"resume", Ok(b"resumed")),
        ] {
            let to = from.other();
            let now = n.now;
            n.m(from).reoffer(now, offer.to_vec());
            n.run();
            let got = n.peer(to).events.pop();
            assert!(
                matches!(&got, Some(SipEvent::RemoteOffer { sdp, .. }) if sdp == offer),
                "{got:?}"
            );
            n.m(to).answer_reoffer(now, answer.map(<[u8]>::to_vec));
            n.run();
            assert_eq!(
                n.reoffer_results(from).last(),
                Some(&answer.map(<[u8]>::to_vec))
            );
        }
        // The re-INVITE refreshed the remote target.
        assert_eq!(n.m(Side::A).dialog().remote_target, "sip:B@10.0.0.9");
        assert!(n.m(Side::A).is_established() && n.m(Side::B).is_established());
        // One ACK for the 200 to the INVITE, one per successful re-INVITE.
        assert_eq!(n.sent(Side::A, Method::Ack), 2);
        assert_eq!(n.sent(Side::B, Method::Ack), 2);
    }

    #[test]
    fn reinvite_glare_gets_491_on_both_sides_and_each_retries_in_its_rfc_range() {
        for seed in 1..40u64 {
            let mut n = Net::established(seed);
            let start = n.now;
            let now = n.now;
            n.m(Side::A).reoffer(now, b"a-hold".to_vec());
            n.m(Side::B).reoffer(now, b"b-hold".to_vec());
            n.run();
            // Both re-INVITEs met: each side answered the other 491, nobody was told yet.
            assert!(n.reoffer_results(Side::A).is_empty());
            assert!(n.reoffer_results(Side::B).is_empty());
            assert_eq!(n.sent(Side::A, Method::Invite), 2);
            // B does not own the Call-ID: 0–2 s. It goes first and A answers.
            n.advance();
            let b_wait = n.now - start;
            assert!(b_wait <= Duration::from_secs(2), "{b_wait:?}");
            assert_eq!(b_wait.as_millis() % 10, 0);
            let got = n.a.events.pop();
            assert!(
                matches!(&got, Some(SipEvent::RemoteOffer { sdp, .. }) if sdp == b"b-hold"),
                "{got:?}"
            );
            let now = n.now;
            n.m(Side::A).answer_reoffer(now, Ok(b"a-ok".to_vec()));
            n.run();
            assert_eq!(n.reoffer_results(Side::B), [Ok(b"a-ok".to_vec())]);
            // A owns the Call-ID: 2.1–4 s after the 491.
            n.advance();
            let a_wait = n.now - start;
            assert!(
                (Duration::from_millis(2100)..=Duration::from_secs(4)).contains(&a_wait),
                "{a_wait:?}"
            );
            let now = n.now;
            n.m(Side::B).answer_reoffer(now, Ok(b"b-ok".to_vec()));
            n.run();
            assert_eq!(n.reoffer_results(Side::A), [Ok(b"b-ok".to_vec())]);
            assert_eq!(n.sent(Side::A, Method::Invite), 3);
        }
    }

    #[test]
    fn reoffers_wait_for_the_running_invite_transaction() {
        let mut n = Net::established(1);
        let now = n.now;
        n.m(Side::A).reoffer(now, b"one".to_vec());
        n.m(Side::A).reoffer(now, b"two".to_vec());
        n.run();
        assert_eq!(
            n.sent(Side::A, Method::Invite),
            2,
            "only one re-INVITE at a time"
        );
        n.b.events.pop();
        n.m(Side::B).answer_reoffer(now, Ok(b"ok-one".to_vec()));
        n.run();
        assert_eq!(n.sent(Side::A, Method::Invite), 3);
        n.m(Side::B).answer_reoffer(now, Ok(b"ok-two".to_vec()));
        n.run();
        assert_eq!(
            n.reoffer_results(Side::A),
            [Ok(b"ok-one".to_vec()), Ok(b"ok-two".to_vec())]
        );
    }

    #[test]
    fn an_unanswered_reoffer_gets_500_after_10_s() {
        let mut n = Net::established(1);
        let now = n.now;
        n.m(Side::A).reoffer(now, b"hold".to_vec());
        n.run();
        assert_eq!(n.advance(), REOFFER_ANSWER);
        assert_eq!(n.reoffer_results(Side::A), [Err(500)]);
        // A late answer is ignored.
        let now = n.now;
        n.m(Side::B).answer_reoffer(now, Ok(b"late".to_vec()));
        n.run();
        assert_eq!(n.reoffer_results(Side::A), [Err(500)]);
    }

    #[test]
    fn a_408_or_481_to_our_reinvite_ends_the_call_with_a_bye() {
        for status in [408, 481] {
            let mut n = Net::established(1);
            // The proxy keeps A's re-INVITE from B and answers it itself.
            n.hold = Some(|w| matches!(w, Wire::Req(Side::B, OutRequest::ReInvite { .. })));
            let now = n.now;
            n.m(Side::A).reoffer(now, b"hold".to_vec());
            n.run();
            let cseq = n.a.sent.last().expect("the re-INVITE").cseq();
            n.m(Side::A).handle_response(
                now,
                InResponse {
                    method: Some(Method::Invite),
                    cseq,
                    status,
                    reason: "Gone".into(),
                    ..InResponse::default()
                },
            );
            n.hold = None;
            n.run();
            assert_eq!(n.sent(Side::A, Method::Bye), 1, "{status}");
            assert!(n.terminated(Side::A), "{status}");
            let ended = n.ended(Side::A);
            assert!(
                matches!(ended.as_slice(), [EndReason::Failed { status: Some(s), reason }]
                    if *s == status && reason.contains("no longer knows this call")),
                "{status}: {ended:?}"
            );
            assert!(n.reoffer_results(Side::A).is_empty(), "{status}");
            assert_eq!(n.ended(Side::B), [EndReason::RemoteHangup], "{status}");
        }
        // Other refusals keep the call.
        let mut n = Net::established(1);
        let now = n.now;
        n.m(Side::A).reoffer(now, b"hold".to_vec());
        n.run();
        n.m(Side::B).answer_reoffer(now, Err(488));
        n.run();
        assert_eq!(n.reoffer_results(Side::A), [Err(488)]);
        assert!(n.m(Side::A).is_established() && n.m(Side::B).is_established());
    }

    #[test]
    fn an_overlapping_reinvite_gets_500_with_a_random_retry_after_of_0_to_10_s() {
        let mut n = Net::established(1);
        let now = n.now;
        n.m(Side::A).reoffer(now, b"hold".to_vec());
        n.run();
        // B has not answered A's re-INVITE; more arrive (a peer that does not wait).
        let mut waits = Vec::new();
        for cseq in 100..140 {
            let txn = n.txn(Side::B, Method::Invite, cseq);
            n.m(Side::B)
                .handle_request(now, txn, InRequest::new(Method::Invite, cseq));
            match n.m(Side::B).poll_action() {
                Some(CallAction::Respond {
                    txn: t,
                    status: 500,
                    sdp: None,
                    retry_after: Some(seconds),
                }) if t == txn => waits.push(seconds),
                other => panic!("{other:?}"),
            }
            assert!(n.m(Side::B).poll_action().is_none());
        }
        assert!(waits.iter().all(|w| *w <= 10), "{waits:?}");
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() >= 5, "not random: {waits:?}");
        // The first re-INVITE is still answered normally, without Retry-After.
        n.m(Side::B).answer_reoffer(now, Ok(b"held".to_vec()));
        assert!(matches!(
            n.m(Side::B).poll_action(),
            Some(CallAction::Respond {
                status: 200,
                retry_after: None,
                ..
            })
        ));
    }

    #[test]
    fn no_response_within_4_s_fails_with_408_so_the_caller_can_fail_over() {
        let mut n = Net::new(1);
        // The proxy is down: nothing comes back.
        n.hold = Some(|_| true);
        n.run();
        assert_eq!(n.advance(), NO_RESPONSE);
        assert!(n.a.abandoned);
        assert!(matches!(
            n.ended(Side::A).as_slice(),
            [EndReason::Failed {
                status: Some(408),
                ..
            }]
        ));
        assert!(n.terminated(Side::A));
    }

    #[test]
    fn a_100_trying_stops_the_no_response_timer() {
        let mut n = Net::new(1);
        n.run();
        // B got the INVITE and answered 100; nothing else happens for a while.
        assert_eq!(n.m(Side::A).poll_timeout(), None);
        n.now += Duration::from_secs(20);
        let now = n.now;
        n.m(Side::B).answer(now, ANSWER.to_vec());
        n.run();
        assert!(n.m(Side::A).is_established());
        assert!(n.ended(Side::A).is_empty());
    }

    #[test]
    fn a_challenge_is_answered_once_and_a_second_one_fails_the_call() {
        // One 407: the INVITE goes again with credentials (CSeq + 1) and the call works.
        let mut n = Net::new(1);
        n.challenges = vec!["Digest realm=\"p.test\", nonce=\"n1\"".into()];
        n.run();
        assert!(matches!(
            &n.a.sent[..2],
            [
                OutRequest::Invite { cseq: 1, challenge: None, .. },
                OutRequest::Invite { cseq: 2, challenge: Some(Challenge { status: 407, .. }), sdp, .. },
            ] if sdp == OFFER
        ));
        let now = n.now;
        n.m(Side::B).answer(now, ANSWER.to_vec());
        n.run();
        assert!(n.m(Side::A).is_established());
        assert_eq!(n.m(Side::B).dialog().remote_tag.as_deref(), Some("a-tag"));

        // Two: our credentials were refused.
        let mut n = Net::new(1);
        n.challenges = vec![
            "Digest realm=\"p.test\", nonce=\"n1\"".into(),
            "Digest realm=\"p.test\", nonce=\"n2\"".into(),
        ];
        n.run();
        assert_eq!(n.sent(Side::A, Method::Invite), 2);
        assert_eq!(
            n.ended(Side::A),
            [EndReason::Failed {
                status: Some(407),
                reason: "wrong user name or password (the proxy refused our credentials)".into()
            }]
        );
        assert!(n.terminated(Side::A));

        // A second challenge that only says the nonce was stale is answered once more.
        let mut n = Net::new(1);
        n.challenges = vec![
            "Digest realm=\"p.test\", nonce=\"n1\"".into(),
            "Digest realm=\"p.test\", nonce=\"n2\", stale=true".into(),
            "Digest realm=\"p.test\", nonce=\"n3\", stale=true".into(),
        ];
        n.run();
        assert_eq!(n.sent(Side::A, Method::Invite), 3);
        assert!(matches!(
            n.ended(Side::A).as_slice(),
            [EndReason::Failed {
                status: Some(407),
                ..
            }]
        ));
    }

    #[test]
    fn a_challenge_the_driver_cannot_answer_fails_the_call_with_the_reason() {
        let t0 = Instant::now();
        let mut m = CallMachine::outgoing(
            CallId(1),
            Net::new(1).a.m.unwrap().dialog().clone(),
            OFFER.to_vec(),
            t0,
            1,
        );
        while m.poll_action().is_some() {}
        m.handle_response(
            t0,
            InResponse {
                method: Some(Method::Invite),
                cseq: 1,
                status: 401,
                challenges: vec!["Basic realm=\"x\"".into()],
                ..InResponse::default()
            },
        );
        let Some(CallAction::Send(OutRequest::Invite { cseq: 2, .. })) = m.poll_action() else {
            panic!("expected a retry");
        };
        m.handle_request_failed(t0, Method::Invite, 2, Some(401), "no digest".into());
        assert!(matches!(
            m.poll_action(),
            Some(CallAction::Event(SipEvent::Ended {
                call: CallId(1),
                reason: EndReason::Failed { status: Some(401), reason },
            })) if reason == "no digest"
        ));
        assert!(m.is_terminated());
    }

    /// The requests and events a machine asks for, drained.
    fn drain_call(m: &mut CallMachine) -> (Vec<OutRequest>, Vec<SipEvent>) {
        let (mut sent, mut events) = (Vec::new(), Vec::new());
        while let Some(a) = m.poll_action() {
            match a {
                CallAction::Send(r) => sent.push(r),
                CallAction::Event(e) => events.push(e),
                _ => {}
            }
        }
        (sent, events)
    }

    fn bearer_407(cseq: u32, nonce: &str) -> InResponse {
        InResponse {
            method: Some(Method::Invite),
            cseq,
            status: 407,
            reason: "Proxy Authentication Required".into(),
            challenges: vec![
                format!("Bearer realm=\"p.test\", scope=\"krypton\", nonce=\"{nonce}\""),
                "Digest realm=\"p.test\", nonce=\"d1\"".into(),
            ],
            ..InResponse::default()
        }
    }

    fn forbidden(cseq: u32, text: &str) -> InResponse {
        InResponse {
            method: Some(Method::Invite),
            cseq,
            status: 403,
            reason: "Forbidden".into(),
            reason_text: Some(text.into()),
            ..InResponse::default()
        }
    }

    fn bearer_call(t0: Instant) -> CallMachine {
        let dialog = Net::new(1).a.m.unwrap().dialog().clone();
        let mut m = CallMachine::outgoing(CallId(1), dialog, OFFER.to_vec(), t0, 1);
        m.set_bearer(true);
        let (sent, _) = drain_call(&mut m);
        assert!(matches!(
            sent.as_slice(),
            [OutRequest::Invite {
                cseq: 1,
                challenge: None,
                ..
            }]
        ));
        m
    }

    fn bearer_nonce(r: &OutRequest) -> Option<(u32, &str)> {
        match r {
            OutRequest::Invite {
                cseq,
                challenge:
                    Some(Challenge {
                        status: 407,
                        bearer: Some(b),
                        ..
                    }),
                ..
            } => Some((*cseq, b.nonce.as_str())),
            _ => None,
        }
    }

    #[test]
    fn a_bearer_407_gets_a_token_and_a_stale_proof_one_fresh_try() {
        let t0 = Instant::now();
        let mut m = bearer_call(t0);
        // Bearer is preferred to the digest challenge next to it.
        m.handle_response(t0, bearer_407(1, "n1"));
        let (sent, _) = drain_call(&mut m);
        assert_eq!(
            sent.iter().filter_map(bearer_nonce).collect::<Vec<_>>(),
            [(2, "n1")]
        );
        // The provider had seen the nonce: one fresh INVITE without credentials …
        m.handle_response(t0, forbidden(2, "stale proof: retry"));
        let (sent, events) = drain_call(&mut m);
        assert!(events.is_empty(), "{events:?}");
        assert!(matches!(
            sent.as_slice(),
            [OutRequest::Invite {
                cseq: 3,
                challenge: None,
                ..
            }]
        ));
        // … whose challenge gets a new token, and the call goes on.
        m.handle_response(t0, bearer_407(3, "n2"));
        let (sent, _) = drain_call(&mut m);
        assert_eq!(
            sent.iter().filter_map(bearer_nonce).collect::<Vec<_>>(),
            [(4, "n2")]
        );
        m.handle_response(
            t0,
            InResponse {
                method: Some(Method::Invite),
                cseq: 4,
                status: 180,
                to_tag: Some("b".into()),
                ..InResponse::default()
            },
        );
        assert!(!m.is_terminated());
        // A second stale proof is a refusal with the provider's text.
        m.handle_response(t0, forbidden(4, "stale proof: retry"));
        let (_, events) = drain_call(&mut m);
        assert!(matches!(
            events.last(),
            Some(SipEvent::Ended {
                reason: EndReason::Failed { status: Some(403), reason },
                ..
            }) if reason == "stale proof: retry"
        ));
    }

    #[test]
    fn a_refused_bearer_token_ends_the_call_with_the_providers_text() {
        let t0 = Instant::now();
        // A 403 after the token: the Reason text is the call's end reason.
        let mut m = bearer_call(t0);
        m.handle_response(t0, bearer_407(1, "n1"));
        drain_call(&mut m);
        let text = "registered with provider NXYZ on chain, not with this one";
        m.handle_response(t0, forbidden(2, text));
        let (sent, events) = drain_call(&mut m);
        assert!(sent.is_empty());
        assert!(matches!(
            events.as_slice(),
            [SipEvent::Ended {
                reason: EndReason::Failed { status: Some(403), reason },
                ..
            }] if reason == text
        ));
        assert!(m.is_terminated());

        // A second 407 after the token: refused, with its Reason text.
        let mut m = bearer_call(t0);
        m.handle_response(t0, bearer_407(1, "n1"));
        drain_call(&mut m);
        let mut again = bearer_407(2, "n2");
        again.reason_text = Some("the proof is not signed by this address's key".into());
        m.handle_response(t0, again);
        let (sent, events) = drain_call(&mut m);
        assert!(sent.is_empty());
        assert!(matches!(
            events.as_slice(),
            [SipEvent::Ended {
                reason: EndReason::Failed { status: Some(407), reason },
                ..
            }] if reason == "the proof is not signed by this address's key"
        ));

        // Without a signer the same 407 is answered with digest.
        let dialog = Net::new(1).a.m.unwrap().dialog().clone();
        let mut m = CallMachine::outgoing(CallId(1), dialog, OFFER.to_vec(), t0, 1);
        drain_call(&mut m);
        m.handle_response(t0, bearer_407(1, "n1"));
        let (sent, _) = drain_call(&mut m);
        assert!(matches!(
            sent.as_slice(),
            [OutRequest::Invite {
                cseq: 2,
                challenge: Some(Challenge { status: 407, bearer: None, headers }),
                ..
            }] if headers.len() == 2
        ));
    }

    #[test]
    fn an_unacknowledged_200_ends_the_call_with_a_bye_after_64_t1() {
        let mut n = Net::new(1);
        n.run();
        n.hold = Some(|w| matches!(w, Wire::Req(_, OutRequest::Ack { .. })));
        let now = n.now;
        n.m(Side::B).answer(now, ANSWER.to_vec());
        n.run();
        assert_eq!(n.advance(), TIMER_64_T1);
        assert_eq!(n.sent(Side::B, Method::Bye), 1);
        assert!(matches!(
            n.ended(Side::B).as_slice(),
            [EndReason::Failed { status: None, .. }]
        ));
        assert_eq!(n.ended(Side::A), [EndReason::RemoteHangup]);
    }

    #[test]
    fn blind_transfer_refer_and_notify_progress() {
        let mut n = Net::established(1);
        let now = n.now;
        n.m(Side::A).refer(now, "sip:carol@p.test");
        n.run();
        assert!(n.a.events.iter().any(|e| matches!(
            e,
            SipEvent::TransferAccepted {
                accepted: true,
                status: Some(202),
                ..
            }
        )));
        assert!(n.b.events.iter().any(|e| matches!(
            e,
            SipEvent::TransferRequested { target, .. } if target == "sip:carol@p.test"
        )));
        n.m(Side::B).notify_transfer(now, 100, "Trying");
        n.m(Side::B).notify_transfer(now, 200, "OK");
        n.run();
        let progress: Vec<u16> =
            n.a.events
                .iter()
                .filter_map(|e| match e {
                    SipEvent::TransferProgress { status, .. } => Some(*status),
                    _ => None,
                })
                .collect();
        assert_eq!(progress, [100, 200]);
        // A REFER to something that is no SIP URI is refused.
        n.m(Side::A).refer(now, "mailto:x@y");
        n.run();
        assert!(matches!(
            n.a.events.last(),
            Some(SipEvent::TransferAccepted {
                accepted: false,
                status: Some(400),
                ..
            })
        ));
        // INFO both ways.
        n.m(Side::A)
            .info(now, "application/dtmf-relay", b"Signal=5".to_vec());
        n.run();
        assert!(matches!(
            n.b.events.last(),
            Some(SipEvent::Info { content_type, body, .. })
                if content_type == "application/dtmf-relay" && body == b"Signal=5"
        ));
    }

    #[test]
    fn a_refer_without_answer_is_reported_as_not_accepted() {
        let mut n = Net::established(1);
        let now = n.now;
        n.m(Side::A).refer(now, "sip:carol@p.test");
        n.pump();
        n.wire.clear();
        let cseq = n.m(Side::A).dialog().local_cseq;
        n.m(Side::A)
            .handle_request_failed(now, Method::Refer, cseq, None, "no answer".into());
        n.run();
        assert!(matches!(
            n.a.events.last(),
            Some(SipEvent::TransferAccepted {
                accepted: false,
                status: None,
                ..
            })
        ));
    }

    #[test]
    fn sipfrag_bodies() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 abc"), None);
        assert_eq!(sipfrag_status(b"\xff\xfe"), None);
        assert_eq!(sipfrag_status(b""), None);
    }
}
