//! The user agent: a thin tokio driver over rsipstack's transports and transactions.
//!
//! rsipstack gives us RFC 3261 transactions (retransmissions, timers, the ACK of a 2xx) and
//! the UDP/TCP/TLS/WS transports. Everything a phone decides sits on top, in sans-IO machines:
//! when to register ([`crate::registration`]), how to answer a challenge ([`crate::bearer`]
//! decides between a KRYPTON Bearer token, digest, and a fresh try after a stale proof;
//! [`crate::digest`] is ours because rsipstack's rejects SHA-256 and qop lists; the account's
//! [`crate::BearerSigner`] is called here, in the driver), what a call does
//! and when ([`crate::invite`]: CANCEL, re-INVITE, glare, BYE, transfer, timers), why a call
//! ended ([`crate::call`]).
//!
//! One actor task owns all state (accounts and their registration machines, calls and their
//! call machines). Commands come in through [`UserAgent`]'s methods and go to the machines;
//! the actor carries out what the machines ask for: it builds requests with rsipstack and runs
//! each transaction in a small task that reports back (responses, CANCEL, ACK), and it wakes the
//! machines' timers. Everything the application needs to know comes out as [`SipEvent`]s. SDP
//! bodies pass through untouched: the media layer owns offer/answer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use rsipstack::EndpointBuilder;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::headers::make_header;
use rsipstack::sip::prelude::*;
use rsipstack::sip::{Header, HostWithPort, Method, Request, Response, SipMessage, StatusCode};
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::{CallIdFormat, make_call_id, make_tag};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TlsConfig, TransportLayer};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::account::{Account, TransportKind};
use crate::bearer::{self, AuthAnswer, AuthResponse, AuthRetry, AuthStep};
use crate::call::CallId;
pub use crate::call::SipEvent;
use crate::digest::{self, DigestClient};
use crate::invite::{
    self, CallAction, CallMachine, Dialog, InRequest, InResponse, IncomingInvite, OutRequest,
    ServerTxn,
};
use crate::registration::{RegisterOutcome, Registration, RegistrationAction};
use crate::tls::{self, TrustAnchors};

/// How long we wait for a final answer to a REGISTER/OPTIONS/MESSAGE before calling the
/// proxy unreachable (shorter than timer F so that a restarted proxy is found in seconds).
const NON_INVITE_TIMEOUT: Duration = Duration::from_secs(8);
/// How long opening a TCP/TLS/WS connection to the proxy (TLS handshake included) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);
/// Allowed methods, advertised in Allow.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, NOTIFY, REFER";

/// Errors of the user agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UaError {
    /// Could not open the SIP socket.
    #[error("cannot open a SIP socket on {addr}: {reason}")]
    Bind {
        /// Address we tried.
        addr: SocketAddr,
        /// OS or stack error.
        reason: String,
    },
    /// The user agent has stopped.
    #[error("the SIP user agent has stopped")]
    Stopped,
    /// No such account.
    #[error("no account '{0}'")]
    UnknownAccount(String),
    /// No such call.
    #[error("no call {0}")]
    UnknownCall(CallId),
    /// The target is not a SIP URI we can call.
    #[error("'{0}' is not a SIP address we can call")]
    BadTarget(String),
}

/// Settings of the user agent as a whole.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Local IP to bind and to advertise in Contact/Via.
    pub bind: IpAddr,
    /// Local SIP port for UDP (0 = any free port).
    pub port: u16,
    /// User-Agent header value.
    pub user_agent: String,
    /// RFC 5626 `+sip.instance` value (`urn:uuid:…`), stable per installation.
    pub instance: String,
}

/// Handle to a running user agent. Cheap to clone.
#[derive(Clone)]
pub struct UserAgent {
    commands: mpsc::UnboundedSender<Command>,
    local: SocketAddr,
}

enum Command {
    AddAccount(Box<Account>),
    RemoveAccount(String),
    Call {
        account: String,
        target: String,
        sdp: Vec<u8>,
        reply: oneshot::Sender<Result<CallId, UaError>>,
    },
    Ringing(CallId),
    Answer(CallId, Vec<u8>),
    Reject(CallId, u16),
    Hangup(CallId),
    Reoffer(CallId, Vec<u8>),
    AnswerReoffer(CallId, Result<Vec<u8>, u16>),
    Info(CallId, String, Vec<u8>),
    Refer(CallId, String),
    NotifyTransfer(CallId, u16, String),
    Message {
        account: String,
        target: String,
        content_type: String,
        body: Vec<u8>,
        reply: oneshot::Sender<Result<u64, UaError>>,
    },
    Shutdown(oneshot::Sender<()>),
}

impl UserAgent {
    /// Bind the SIP socket and start the user agent; events arrive on the returned receiver.
    pub async fn start(
        config: UaConfig,
    ) -> Result<(UserAgent, mpsc::UnboundedReceiver<SipEvent>), UaError> {
        let cancel = CancellationToken::new();
        let transport = TransportLayer::new(cancel.clone());
        let want = SocketAddr::new(config.bind, config.port);
        let udp = UdpConnection::create_connection(want, None, Some(cancel.child_token()))
            .await
            .map_err(|e| UaError::Bind {
                addr: want,
                reason: e.to_string(),
            })?;
        let local: SocketAddr =
            udp.get_addr()
                .addr
                .clone()
                .try_into()
                .map_err(|_| UaError::Bind {
                    addr: want,
                    reason: "no local address".into(),
                })?;
        transport.add_transport(udp.into());
        let option = EndpointOption {
            callid_format: CallIdFormat::Uuid,
            ..Default::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_transport_layer(transport)
            .with_cancel_token(cancel.clone())
            .with_user_agent(&config.user_agent)
            .with_option(option)
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| UaError::Bind {
                addr: want,
                reason: e.to_string(),
            })?;
        let inner = endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.serve().await {
                warn!(error = %e, "SIP endpoint stopped");
            }
        });
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (int_tx, int_rx) = mpsc::unbounded_channel();
        let actor = Actor {
            ep: endpoint.inner.clone(),
            _endpoint: endpoint,
            cancel,
            config,
            local,
            events: ev_tx,
            internal: int_tx,
            accounts: HashMap::new(),
            calls: HashMap::new(),
            servers: HashMap::new(),
            next_call: 1,
            next_txn: 1,
            next_message: 1,
            tls: Arc::default(),
        };
        tokio::spawn(actor.run(cmd_rx, incoming, int_rx));
        info!(%local, "SIP user agent listening");
        Ok((
            UserAgent {
                commands: cmd_tx,
                local,
            },
            ev_rx,
        ))
    }

    /// The local UDP address SIP listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn send(&self, c: Command) -> Result<(), UaError> {
        self.commands.send(c).map_err(|_| UaError::Stopped)
    }

    /// Add an account; it registers at once if it is set to.
    pub fn add_account(&self, account: Account) -> Result<(), UaError> {
        self.send(Command::AddAccount(Box::new(account)))
    }

    /// Unregister and forget an account.
    pub fn remove_account(&self, id: &str) -> Result<(), UaError> {
        self.send(Command::RemoveAccount(id.to_string()))
    }

    /// Place a call to `target` (a SIP URI, or a user part resolved in the account's domain)
    /// with an SDP offer.
    pub async fn call(&self, account: &str, target: &str, sdp: Vec<u8>) -> Result<CallId, UaError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Call {
            account: account.to_string(),
            target: target.to_string(),
            sdp,
            reply,
        })?;
        rx.await.map_err(|_| UaError::Stopped)?
    }

    /// Send 180 Ringing for an incoming call.
    pub fn ringing(&self, call: CallId) -> Result<(), UaError> {
        self.send(Command::Ringing(call))
    }

    /// Accept an incoming call with an SDP answer.
    pub fn answer(&self, call: CallId, sdp: Vec<u8>) -> Result<(), UaError> {
        self.send(Command::Answer(call, sdp))
    }

    /// Refuse an incoming call (486 busy, 603 decline, 488 not acceptable …).
    pub fn reject(&self, call: CallId, status: u16) -> Result<(), UaError> {
        self.send(Command::Reject(call, status))
    }

    /// Hang up: CANCEL while our INVITE is pending, BYE once established, 603 for an
    /// unanswered incoming call.
    pub fn hangup(&self, call: CallId) -> Result<(), UaError> {
        self.send(Command::Hangup(call))
    }

    /// Send a re-INVITE with a new offer (hold, resume); the result arrives as
    /// [`SipEvent::ReofferResult`].
    pub fn reoffer(&self, call: CallId, sdp: Vec<u8>) -> Result<(), UaError> {
        self.send(Command::Reoffer(call, sdp))
    }

    /// Answer the other side's re-INVITE: `Ok(sdp)` → 200 with that answer, `Err(status)` →
    /// that failure (488 when the offer is unacceptable).
    pub fn answer_reoffer(
        &self,
        call: CallId,
        answer: Result<Vec<u8>, u16>,
    ) -> Result<(), UaError> {
        self.send(Command::AnswerReoffer(call, answer))
    }

    /// Send an INFO inside a call.
    pub fn info(&self, call: CallId, content_type: &str, body: Vec<u8>) -> Result<(), UaError> {
        self.send(Command::Info(call, content_type.to_string(), body))
    }

    /// Ask the other side of `call` to call `target` instead (blind transfer, RFC 3515 REFER).
    pub fn refer(&self, call: CallId, target: &str) -> Result<(), UaError> {
        self.send(Command::Refer(call, target.to_string()))
    }

    /// Tell the transferor how our call to the REFER target goes (`status` with its reason
    /// phrase; a final status ends the implicit subscription).
    pub fn notify_transfer(&self, call: CallId, status: u16, reason: &str) -> Result<(), UaError> {
        self.send(Command::NotifyTransfer(call, status, reason.to_string()))
    }

    /// Send a MESSAGE (RFC 3428); the outcome arrives as [`SipEvent::MessageResult`] with the
    /// returned id.
    pub async fn message(
        &self,
        account: &str,
        target: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<u64, UaError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Message {
            account: account.to_string(),
            target: target.to_string(),
            content_type: content_type.to_string(),
            body,
            reply,
        })?;
        rx.await.map_err(|_| UaError::Stopped)?
    }

    /// Hang up every call, unregister every account (waiting up to a few seconds for the
    /// registrar) and stop.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

// ------------------------------------------------------------------------------------------
// The actor

enum Internal {
    RegisterDone {
        account: String,
        outcome: RegisterOutcome,
        expires: u32,
        flow: Option<SipAddr>,
    },
    KeepAliveDone {
        account: String,
        alive: bool,
    },
    /// A response to a request of a call's machine.
    Response {
        call: CallId,
        method: invite::Method,
        cseq: u32,
        response: Response,
    },
    /// A request of a call's machine got no final response.
    RequestFailed {
        call: CallId,
        method: invite::Method,
        cseq: u32,
        status: Option<u16>,
        reason: String,
    },
    /// The INVITE a call's server transaction holds was cancelled.
    ServerCancel {
        call: CallId,
    },
    /// An ACK for the 2xx of a call's server INVITE transaction.
    ServerAck {
        call: CallId,
        cseq: u32,
    },
    /// A server transaction's task ended.
    ServerDone {
        txn: ServerTxn,
    },
    MessageDone {
        id: u64,
        status: Option<u16>,
        reason: String,
    },
}

/// A response the machine asked for, to the task holding the server transaction.
struct ServerReply {
    status: u16,
    sdp: Option<Vec<u8>>,
    /// `Retry-After` seconds.
    retry_after: Option<u32>,
}

/// What goes into the responses of one server transaction besides status and body.
#[derive(Default)]
struct ResponseHeaders {
    /// Copied into 101–299 responses (RFC 3261 §12.1.1: dialog-creating responses).
    record_route: Vec<Header>,
    /// Our Contact, for 101–299 responses to an INVITE.
    contact: Option<String>,
    /// Advertise Allow in a 2xx (to the initial INVITE).
    allow: bool,
}
struct AccountState {
    account: Arc<Account>,
    registration: Registration,
    /// Call-ID and From tag stay the same across refreshes (RFC 3261 §10.2.4).
    call_id: String,
    from_tag: String,
    cseq: Arc<AtomicU32>,
    digest: Arc<std::sync::Mutex<DigestClient>>,
    register_in_flight: bool,
    /// Removed by the user: forget it once unregistered.
    removing: bool,
    /// Local end of the flow to the proxy (learnt by each REGISTER), for Via and Contact.
    flow: SipAddr,
    /// A REGISTER the machine asked for while one was in flight.
    queued_register: Option<u32>,
}

/// One call: its sans-IO machine and the rsipstack pieces it needs.
struct CallSlot {
    account: String,
    machine: CallMachine,
    /// Our last initial INVITE as sent (a CANCEL copies it).
    invite: Option<Request>,
    /// The task running the initial INVITE's client transaction.
    invite_task: Option<tokio::task::AbortHandle>,
}

/// A request from the other side waiting for its call's machine to answer it.
struct ServerSlot {
    call: CallId,
    replies: mpsc::UnboundedSender<ServerReply>,
}
struct Actor {
    ep: EndpointInnerRef,
    _endpoint: rsipstack::transaction::endpoint::Endpoint,
    cancel: CancellationToken,
    config: UaConfig,
    local: SocketAddr,
    events: mpsc::UnboundedSender<SipEvent>,
    internal: mpsc::UnboundedSender<Internal>,
    accounts: HashMap<String, AccountState>,
    calls: HashMap<CallId, CallSlot>,
    /// Requests of the other side waiting for their call's machine.
    servers: HashMap<ServerTxn, ServerSlot>,
    next_call: u64,
    next_txn: u64,
    next_message: u64,
    /// Trust anchors handed to rsipstack for TLS proxies (loaded on first use).
    tls: Arc<tokio::sync::Mutex<TrustAnchors>>,
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut incoming: rsipstack::transaction::TransactionReceiver,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) {
        let mut shutdown: Option<(oneshot::Sender<()>, Instant)> = None;
        loop {
            let now = Instant::now();
            self.drive_registrations();
            if let Some((_, deadline)) = &shutdown {
                let pending = self
                    .accounts
                    .values()
                    .any(|a| a.register_in_flight || a.registration.is_registered());
                if !pending || now >= *deadline {
                    break;
                }
            }
            let wake = self
                .accounts
                .values()
                .filter_map(|a| a.registration.poll_timeout())
                .chain(self.calls.values().filter_map(|c| c.machine.poll_timeout()))
                .chain(shutdown.as_ref().map(|(_, d)| *d))
                .min()
                .unwrap_or(now + Duration::from_secs(3600));
            tokio::select! {
                // Every branch takes the time it wakes at: `now` above is from before the wait, and
                // a command that arrives after the actor sat idle must not start its timers in
                // the past (a call placed after 4 s of quiet failed at once with 408).
                c = commands.recv() => match c {
                    Some(Command::Shutdown(done)) => {
                        let now = Instant::now();
                        self.begin_shutdown(now);
                        shutdown = Some((done, now + Duration::from_secs(4)));
                    }
                    Some(c) => self.handle_command(c, Instant::now()),
                    None => {
                        let now = Instant::now();
                        self.begin_shutdown(now);
                        shutdown.get_or_insert_with(|| {
                            let (tx, _) = oneshot::channel();
                            (tx, now + Duration::from_secs(4))
                        });
                    }
                },
                Some(tx) = incoming.recv() => self.handle_incoming(tx, Instant::now()),
                Some(i) = internal.recv() => self.handle_internal(i, Instant::now()),
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    for a in self.accounts.values_mut() {
                        a.registration.handle_timeout(now);
                    }
                    let due: Vec<CallId> = self
                        .calls
                        .iter()
                        .filter(|(_, c)| c.machine.poll_timeout().is_some_and(|t| t <= now))
                        .map(|(id, _)| *id)
                        .collect();
                    for id in due {
                        self.with_call(id, now, |m| m.handle_timeout(now));
                    }
                }
            }
        }
        self.cancel.cancel();
        if let Some((done, _)) = shutdown {
            let _ = done.send(());
        }
    }

    fn emit(&self, e: SipEvent) {
        let _ = self.events.send(e);
    }

    fn begin_shutdown(&mut self, now: Instant) {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            self.with_call(id, now, |m| m.hangup(now));
        }
        for a in self.accounts.values_mut() {
            if a.account.register {
                a.registration.stop(now);
            }
        }
    }

    fn handle_command(&mut self, c: Command, now: Instant) {
        match c {
            Command::AddAccount(account) => {
                let id = account.id.clone();
                let mut registration = Registration::new(account.policy.clone());
                if account.register {
                    registration.start(now);
                }
                let state = AccountState {
                    account: Arc::new(*account),
                    registration,
                    call_id: make_call_id(None, CallIdFormat::Uuid).value().to_string(),
                    from_tag: make_tag().to_string(),
                    cseq: Arc::new(AtomicU32::new(1)),
                    digest: Arc::new(std::sync::Mutex::new(DigestClient::default())),
                    register_in_flight: false,
                    removing: false,
                    flow: SipAddr {
                        r#type: Some(rsipstack::sip::Transport::Udp),
                        addr: HostWithPort::from(self.local),
                    },
                    queued_register: None,
                };
                self.accounts.insert(id, state);
            }
            Command::RemoveAccount(id) => {
                if let Some(a) = self.accounts.get_mut(&id) {
                    a.removing = true;
                    a.registration.stop(now);
                }
            }
            Command::Call {
                account,
                target,
                sdp,
                reply,
            } => {
                let _ = reply.send(self.start_call(&account, &target, sdp, now));
            }
            Command::Ringing(id) => self.with_call(id, now, |m| m.ringing(now)),
            Command::Answer(id, sdp) => self.with_call(id, now, |m| m.answer(now, sdp)),
            Command::Reject(id, status) => self.with_call(id, now, |m| m.reject(now, status)),
            Command::Hangup(id) => self.with_call(id, now, |m| m.hangup(now)),
            Command::Reoffer(id, sdp) => self.with_call(id, now, |m| m.reoffer(now, sdp)),
            Command::AnswerReoffer(id, answer) => {
                self.with_call(id, now, |m| m.answer_reoffer(now, answer))
            }
            Command::Info(id, content_type, body) => {
                self.with_call(id, now, |m| m.info(now, &content_type, body))
            }
            Command::Refer(id, target) => {
                let domain = self
                    .calls
                    .get(&id)
                    .and_then(|c| self.accounts.get(&c.account))
                    .map(|a| a.account.aor.domain.clone());
                let Some(domain) = domain else {
                    return;
                };
                match target_uri(&target, &domain) {
                    Ok(target) => self.with_call(id, now, |m| m.refer(now, &target)),
                    Err(_) => self.emit(SipEvent::TransferAccepted {
                        call: id,
                        accepted: false,
                        status: None,
                    }),
                }
            }
            Command::NotifyTransfer(id, status, reason) => {
                self.with_call(id, now, |m| m.notify_transfer(now, status, &reason))
            }
            Command::Message {
                account,
                target,
                content_type,
                body,
                reply,
            } => {
                let id = self.next_message;
                self.next_message += 1;
                let r = self.send_message(id, &account, &target, &content_type, body);
                let _ = reply.send(r.map(|()| id));
            }
            Command::Shutdown(_) => {}
        }
    }

    fn proxy_of_call(&self, id: CallId) -> Option<SipAddr> {
        let call = self.calls.get(&id)?;
        Some(proxy_addr(&self.accounts.get(&call.account)?.account))
    }

    // -------------------------------------------------------------------- registration

    /// Carry out what the registration machines ask for.
    fn drive_registrations(&mut self) {
        let ids: Vec<String> = self.accounts.keys().cloned().collect();
        for id in ids {
            while let Some(action) = self
                .accounts
                .get_mut(&id)
                .and_then(|a| a.registration.poll_action())
            {
                match action {
                    RegistrationAction::SendRegister { expires } => {
                        if let Some(a) = self.accounts.get_mut(&id)
                            && a.register_in_flight
                        {
                            a.queued_register = Some(expires);
                        } else {
                            self.spawn_register(&id, expires);
                        }
                    }
                    RegistrationAction::SendKeepAlive => self.spawn_keepalive(&id),
                    RegistrationAction::Registered { expires } => self.emit(SipEvent::Registered {
                        account: id.clone(),
                        expires,
                    }),
                    RegistrationAction::Failed {
                        status,
                        reason,
                        retry_in,
                    } => self.emit(SipEvent::RegistrationFailed {
                        account: id.clone(),
                        status,
                        reason,
                        retry_in,
                    }),
                    RegistrationAction::Unregistered => {
                        self.emit(SipEvent::Unregistered {
                            account: id.clone(),
                        });
                        // A removed account is forgotten once its binding is gone.
                        if self.accounts.get(&id).is_some_and(|a| a.removing) {
                            self.accounts.remove(&id);
                        }
                    }
                }
            }
        }
    }

    fn spawn_register(&mut self, id: &str, expires: u32) {
        let Some(a) = self.accounts.get_mut(id) else {
            return;
        };
        a.register_in_flight = true;
        let job = RegisterJob {
            ep: self.ep.clone(),
            account: a.account.clone(),
            call_id: a.call_id.clone(),
            from_tag: a.from_tag.clone(),
            cseq: a.cseq.clone(),
            digest: a.digest.clone(),
            instance: a.account.instance_or(&self.config.instance).to_string(),
            udp: self.local,
            tls: self.tls.clone(),
            expires,
        };
        let internal = self.internal.clone();
        let account = id.to_string();
        tokio::spawn(async move {
            let (outcome, flow) = job.run().await;
            let _ = internal.send(Internal::RegisterDone {
                account,
                outcome,
                expires,
                flow,
            });
        });
    }

    fn spawn_keepalive(&mut self, id: &str) {
        let Some(a) = self.accounts.get(id) else {
            return;
        };
        let proxy = proxy_addr(&a.account);
        let uri = format!("sip:{}:{}", a.account.proxy.host, a.account.proxy.port);
        let from = format!("<{}>;tag={}", a.account.aor, make_tag());
        let Ok(req) = build_request(
            &self.ep,
            &a.flow,
            Method::Options,
            &uri,
            &from,
            &format!("<{uri}>"),
            make_call_id(None, CallIdFormat::Uuid).value(),
            1,
            &[],
        ) else {
            return;
        };
        let ep = self.ep.clone();
        let internal = self.internal.clone();
        let account = id.to_string();
        tokio::spawn(async move {
            let alive = matches!(run_non_invite(ep, req, Some(proxy)).await, Ok(Some(_)));
            let _ = internal.send(Internal::KeepAliveDone { account, alive });
        });
    }

    // -------------------------------------------------------------------- calls

    fn start_call(
        &mut self,
        account: &str,
        target: &str,
        sdp: Vec<u8>,
        now: Instant,
    ) -> Result<CallId, UaError> {
        let a = self
            .accounts
            .get(account)
            .ok_or_else(|| UaError::UnknownAccount(account.to_string()))?;
        let target_uri = target_uri(target, &a.account.aor.domain)?;
        let id = CallId(self.next_call);
        self.next_call += 1;
        let dialog = Dialog {
            call_id: make_call_id(None, CallIdFormat::Uuid).value().to_string(),
            local_tag: make_tag().to_string(),
            remote_tag: None,
            local_uri: a.account.aor.to_string(),
            remote_uri: target_uri.clone(),
            remote_target: target_uri,
            route_set: Vec::new(),
            local_cseq: 1,
        };
        let mut machine = CallMachine::outgoing(id, dialog, sdp, now, OsRng.next_u64());
        machine.set_bearer(a.account.bearer.is_some());
        self.calls.insert(
            id,
            CallSlot {
                account: account.to_string(),
                machine,
                invite: None,
                invite_task: None,
            },
        );
        self.drive_call(id, now);
        Ok(id)
    }

    /// Give a call's machine an input, then carry out what it asks for.
    fn with_call(&mut self, id: CallId, now: Instant, f: impl FnOnce(&mut CallMachine)) {
        if let Some(slot) = self.calls.get_mut(&id) {
            f(&mut slot.machine);
            self.drive_call(id, now);
        }
    }

    /// Carry out a call machine's actions; forget the call once it is over.
    fn drive_call(&mut self, id: CallId, now: Instant) {
        while let Some(action) = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.machine.poll_action())
        {
            match action {
                CallAction::Send(request) => self.send_call_request(id, request, now),
                CallAction::Respond {
                    txn,
                    status,
                    sdp,
                    retry_after,
                } => {
                    if let Some(s) = self.servers.get(&txn) {
                        let _ = s.replies.send(ServerReply {
                            status,
                            sdp,
                            retry_after,
                        });
                    }
                }
                CallAction::AbandonInvite => {
                    if let Some(task) = self.calls.get_mut(&id).and_then(|c| c.invite_task.take()) {
                        debug!(call = id.0, "INVITE transaction abandoned");
                        task.abort();
                    }
                }
                CallAction::Event(e) => self.emit(e),
            }
        }
        if self
            .calls
            .get(&id)
            .is_some_and(|c| c.machine.is_terminated())
            && let Some(slot) = self.calls.remove(&id)
        {
            if let Some(task) = slot.invite_task {
                debug!(call = id.0, "call over: INVITE transaction dropped");
                task.abort();
            }
            // Tasks still holding a request of this call see their channel close.
            self.servers.retain(|_, s| s.call != id);
        }
    }

    /// Build a request the machine asked for and run its transaction.
    fn send_call_request(&mut self, id: CallId, request: OutRequest, now: Instant) {
        let method = request.method();
        match request {
            OutRequest::Invite {
                cseq,
                sdp,
                challenge,
            } => self.send_invite(id, cseq, sdp, challenge, now),
            OutRequest::Cancel { .. } => self.send_cancel(id),
            // rsipstack's INVITE client transaction ACKs a 2xx by itself (route set from its
            // Record-Route), for the initial INVITE and re-INVITEs alike.
            OutRequest::Ack { .. } => {}
            OutRequest::Bye { cseq } => {
                let req = self.in_dialog_request(id, Method::Bye, cseq, None);
                self.spawn_non_invite(id, req, None);
            }
            OutRequest::Info {
                cseq,
                content_type,
                body,
            } => {
                let req =
                    self.in_dialog_request(id, Method::Info, cseq, Some((&content_type, body)));
                self.spawn_non_invite(id, req, None);
            }
            OutRequest::Notify {
                cseq,
                status,
                reason,
            } => {
                let body = format!("SIP/2.0 {status} {reason}\r\n").into_bytes();
                let req = self
                    .in_dialog_request(
                        id,
                        Method::Notify,
                        cseq,
                        Some(("message/sipfrag;version=2.0", body)),
                    )
                    .map(|mut req| {
                        req.headers.push(make_header("Event", "refer".into()));
                        req.headers.push(make_header(
                            "Subscription-State",
                            if status >= 200 {
                                "terminated;reason=noresource".into()
                            } else {
                                "active;expires=60".into()
                            },
                        ));
                        req
                    });
                self.spawn_non_invite(id, req, None);
            }
            OutRequest::Refer { cseq, target } => {
                let (aor, contact) = self.our_contact(id).unzip();
                let req = self
                    .in_dialog_request(id, Method::Refer, cseq, None)
                    .map(|mut req| {
                        req.headers
                            .push(make_header("Refer-To", format!("<{target}>")));
                        if let (Some(aor), Some(contact)) = (aor, contact) {
                            req.headers
                                .push(make_header("Referred-By", format!("<{aor}>")));
                            req.headers.push(make_header("Contact", contact));
                        }
                        req
                    });
                self.spawn_non_invite(id, req, Some((method, cseq)));
            }
            OutRequest::ReInvite { cseq, sdp } => {
                let contact = self.our_contact(id).map(|(_, c)| c);
                let req = self
                    .in_dialog_request(id, Method::Invite, cseq, Some(("application/sdp", sdp)))
                    .map(|mut req| {
                        if let Some(contact) = contact {
                            req.headers.push(make_header("Contact", contact));
                        }
                        req
                    });
                let Some(req) = req else {
                    self.with_call(id, now, |m| {
                        m.handle_request_failed(
                            now,
                            method,
                            cseq,
                            Some(400),
                            "cannot build the re-INVITE".into(),
                        )
                    });
                    return;
                };
                let (ep, proxy, internal) = (
                    self.ep.clone(),
                    self.proxy_of_call(id),
                    self.internal.clone(),
                );
                tokio::spawn(async move {
                    let failed = |status, reason: &str| Internal::RequestFailed {
                        call: id,
                        method,
                        cseq,
                        status: Some(status),
                        reason: reason.to_string(),
                    };
                    let key = match TransactionKey::from_request(&req, TransactionRole::Client) {
                        Ok(k) => k,
                        Err(e) => {
                            let _ = internal.send(failed(400, &e.to_string()));
                            return;
                        }
                    };
                    let mut tx = Transaction::new_client(key, req, ep, None);
                    tx.destination = proxy;
                    if tx.send().await.is_ok() {
                        while let Some(msg) = tx.receive().await {
                            if let SipMessage::Response(response) = msg
                                && response.status_code.code() >= 200
                            {
                                let _ = internal.send(Internal::Response {
                                    call: id,
                                    method,
                                    cseq,
                                    response,
                                });
                                return;
                            }
                        }
                    }
                    let _ = internal.send(failed(408, "no answer to the re-INVITE"));
                });
            }
        }
    }

    /// Our AOR and Contact for a call's account.
    fn our_contact(&self, id: CallId) -> Option<(String, String)> {
        let a = self.accounts.get(&self.calls.get(&id)?.account)?;
        Some((
            a.account.aor.to_string(),
            contact_for(&a.account, &a.flow, &self.config.instance),
        ))
    }

    /// Run a non-INVITE request of a call; `report` = feed its outcome back to the machine.
    fn spawn_non_invite(
        &self,
        id: CallId,
        req: Option<Request>,
        report: Option<(invite::Method, u32)>,
    ) {
        let Some(req) = req else {
            return;
        };
        let (ep, proxy, internal) = (
            self.ep.clone(),
            self.proxy_of_call(id),
            self.internal.clone(),
        );
        tokio::spawn(async move {
            let outcome = run_non_invite(ep, req, proxy).await;
            let Some((method, cseq)) = report else {
                return;
            };
            let _ = internal.send(match outcome {
                Ok(Some(response)) => Internal::Response {
                    call: id,
                    method,
                    cseq,
                    response,
                },
                Ok(None) => Internal::RequestFailed {
                    call: id,
                    method,
                    cseq,
                    status: None,
                    reason: "no answer".into(),
                },
                Err(reason) => Internal::RequestFailed {
                    call: id,
                    method,
                    cseq,
                    status: None,
                    reason,
                },
            });
        });
    }

    /// Send our initial INVITE (again with credentials when `challenge` is set).
    fn send_invite(
        &mut self,
        id: CallId,
        cseq: u32,
        sdp: Vec<u8>,
        challenge: Option<invite::Challenge>,
        now: Instant,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(a) = self.accounts.get(&call.account) else {
            return;
        };
        let d = call.machine.dialog();
        let contact = contact_for(&a.account, &a.flow, &self.config.instance);
        let supported = if a.account.bearer.is_some() {
            bearer::supported_with_krypton("replaces")
        } else {
            "replaces".to_string()
        };
        let mut extra = vec![
            ("Contact".to_string(), contact),
            ("Allow".to_string(), ALLOW.to_string()),
            ("Supported".to_string(), supported),
            ("Content-Type".to_string(), "application/sdp".to_string()),
        ];
        let mut failure = None;
        if let Some(ch) = challenge {
            let proxy = ch.status != 401;
            let answer = match ch.bearer {
                Some(challenge) => AuthAnswer::Bearer { proxy, challenge },
                None => AuthAnswer::Digest {
                    proxy,
                    challenges: ch.headers,
                },
            };
            match answer_challenge(
                &a.account,
                &a.digest,
                &answer,
                "INVITE",
                &d.remote_target,
                &sdp,
                &d.call_id,
                a.account.instance_or(&self.config.instance),
            ) {
                Ok(Some(header)) => extra.push(header),
                Ok(None) => {}
                Err(reason) => failure = Some((Some(ch.status), reason)),
            }
        }
        let req = match failure {
            Some(f) => Err(f),
            None => build_request(
                &self.ep,
                &a.flow,
                Method::Invite,
                &d.remote_target,
                &format!(
                    "{}<{}>;tag={}",
                    display(&a.account.display_name),
                    d.local_uri,
                    d.local_tag
                ),
                &format!("<{}>", d.remote_uri),
                &d.call_id,
                cseq,
                &extra,
            )
            .map_err(|e| (None, e)),
        };
        let mut req = match req {
            Ok(r) => r,
            Err((status, reason)) => {
                self.with_call(id, now, |m| {
                    m.handle_request_failed(now, invite::Method::Invite, cseq, status, reason)
                });
                return;
            }
        };
        req.body = sdp;
        let proxy = proxy_addr(&a.account);
        let account = a.account.clone();
        let tls = self.tls.clone();
        let ep = self.ep.clone();
        let internal = self.internal.clone();
        let sent = req.clone();
        let task = tokio::spawn(async move {
            let failed = |status, reason| Internal::RequestFailed {
                call: id,
                method: invite::Method::Invite,
                cseq,
                status,
                reason,
            };
            if let Err(reason) = ensure_tls_trust(&ep, &tls, &account).await {
                let _ = internal.send(failed(None, reason));
                return;
            }
            let key = match TransactionKey::from_request(&req, TransactionRole::Client) {
                Ok(k) => k,
                Err(e) => {
                    let _ = internal.send(failed(None, e.to_string()));
                    return;
                }
            };
            let mut tx = Transaction::new_client(key, req, ep, None);
            tx.destination = Some(proxy);
            if let Err(e) = tx.send().await {
                let (FlowError::Transient(reason) | FlowError::Permanent(reason)) =
                    connect_error(&e, &account);
                let _ = internal.send(failed(None, format!("cannot send the INVITE: {reason}")));
                return;
            }
            // The machine's no-response timer covers silence; this task only relays.
            while let Some(msg) = tx.receive().await {
                if let SipMessage::Response(response) = msg {
                    let fin = response.status_code.code() >= 200;
                    let _ = internal.send(Internal::Response {
                        call: id,
                        method: invite::Method::Invite,
                        cseq,
                        response,
                    });
                    if fin {
                        return;
                    }
                }
            }
            let _ = internal.send(failed(Some(408), "no answer to the INVITE".into()));
        });
        if let Some(call) = self.calls.get_mut(&id) {
            call.invite = Some(sent);
            call.invite_task = Some(task.abort_handle());
        }
    }

    /// CANCEL our initial INVITE: the same Via, From, To, Call-ID and Route, CSeq method CANCEL.
    fn send_cancel(&mut self, id: CallId) {
        let Some(invite) = self.calls.get(&id).and_then(|c| c.invite.clone()) else {
            return;
        };
        let proxy = self.proxy_of_call(id);
        let ep = self.ep.clone();
        tokio::spawn(async move {
            let mut cancel = invite.clone();
            cancel.method = Method::Cancel;
            cancel.body.clear();
            cancel.headers.retain(|h| {
                matches!(
                    h,
                    Header::Via(_)
                        | Header::From(_)
                        | Header::To(_)
                        | Header::CallId(_)
                        | Header::MaxForwards(_)
                        | Header::Route(_)
                )
            });
            if let Ok(seq) = invite.cseq_header().and_then(|c| c.seq()) {
                cancel
                    .headers
                    .push(make_header("CSeq", format!("{seq} CANCEL")));
            }
            cancel
                .headers
                .push(make_header("Content-Length", "0".into()));
            let _ = run_non_invite(ep, cancel, proxy).await;
        });
    }

    /// A request inside a call's dialog (BYE, INFO, re-INVITE …) from our side.
    fn in_dialog_request(
        &self,
        id: CallId,
        method: Method,
        cseq: u32,
        body: Option<(&str, Vec<u8>)>,
    ) -> Option<Request> {
        let call = self.calls.get(&id)?;
        let local = &self.accounts.get(&call.account)?.flow;
        let d = call.machine.dialog();
        let to = match &d.remote_tag {
            Some(t) => format!("<{}>;tag={}", d.remote_uri, t),
            None => format!("<{}>", d.remote_uri),
        };
        let mut extra: Vec<(String, String)> = d
            .route_set
            .iter()
            .map(|r| ("Route".to_string(), r.clone()))
            .collect();
        if let Some((ct, _)) = &body {
            extra.push(("Content-Type".into(), ct.to_string()));
        }
        let mut req = build_request(
            &self.ep,
            local,
            method,
            &d.remote_target,
            &format!("<{}>;tag={}", d.local_uri, d.local_tag),
            &to,
            &d.call_id,
            cseq,
            &extra,
        )
        .ok()?;
        if let Some((_, b)) = body {
            req.body = b;
        }
        Some(req)
    }

    /// Hand a request of the other side to a task that answers it when the call's machine
    /// says so, and reports CANCEL and ACK back.
    fn spawn_server(
        &mut self,
        call: CallId,
        mut tx: Transaction,
        headers: ResponseHeaders,
    ) -> ServerTxn {
        let txn = ServerTxn(self.next_txn);
        self.next_txn += 1;
        let (replies, mut rx) = mpsc::unbounded_channel::<ServerReply>();
        self.servers.insert(txn, ServerSlot { call, replies });
        let internal = self.internal.clone();
        let is_invite = tx.original.method == Method::Invite;
        tokio::spawn(async move {
            if !is_invite {
                // The machine answers these at once; nothing else comes in on them.
                loop {
                    match rx.recv().await {
                        Some(ServerReply { status, .. }) if status < 200 => {}
                        Some(ServerReply { status, .. }) => {
                            let _ = tx.reply(StatusCode::from(status)).await;
                            break;
                        }
                        None => {
                            let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                            break;
                        }
                    }
                }
                let _ = internal.send(Internal::ServerDone { txn });
                return;
            }
            let mut answered = false;
            loop {
                tokio::select! {
                    biased;
                    reply = rx.recv() => match reply {
                        Some(ServerReply { status: 100, .. }) => {
                            let _ = tx.send_trying().await;
                        }
                        Some(ServerReply { status, sdp, retry_after }) if !answered => {
                            answered = status >= 200;
                            let mut extra = Vec::new();
                            if let Some(seconds) = retry_after {
                                extra.push(make_header("Retry-After", seconds.to_string()));
                            }
                            if (101..300).contains(&status) {
                                extra.extend(headers.record_route.iter().cloned());
                                if let Some(c) = &headers.contact {
                                    extra.push(make_header("Contact", c.clone()));
                                }
                                if headers.allow && status >= 200 {
                                    extra.push(make_header("Allow", ALLOW.into()));
                                }
                            }
                            if sdp.is_some() {
                                extra.push(make_header("Content-Type", "application/sdp".into()));
                            }
                            let sent = tx.reply_with(StatusCode::from(status), extra, sdp).await;
                            if sent.is_err() && answered {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => {
                            // The call is gone without answering this INVITE.
                            if !answered {
                                let _ = tx.reply(StatusCode::RequestTerminated).await;
                            }
                            break;
                        }
                    },
                    msg = tx.receive() => match msg {
                        Some(SipMessage::Request(r)) if r.method == Method::Cancel => {
                            let _ = internal.send(Internal::ServerCancel { call });
                        }
                        Some(SipMessage::Request(r)) if r.method == Method::Ack => {
                            let cseq = r.cseq_header().and_then(|c| c.seq()).unwrap_or(0);
                            let _ = internal.send(Internal::ServerAck { call, cseq });
                        }
                        Some(_) => {}
                        None => break,
                    },
                }
            }
            let _ = internal.send(Internal::ServerDone { txn });
        });
        txn
    }

    // -------------------------------------------------------------------- messages

    fn send_message(
        &mut self,
        id: u64,
        account: &str,
        target: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), UaError> {
        let a = self
            .accounts
            .get(account)
            .ok_or_else(|| UaError::UnknownAccount(account.to_string()))?;
        let uri = target_uri(target, &a.account.aor.domain)?;
        let job = MessageJob {
            ep: self.ep.clone(),
            account: a.account.clone(),
            digest: a.digest.clone(),
            instance: a.account.instance_or(&self.config.instance).to_string(),
            udp: self.local,
            tls: self.tls.clone(),
            uri,
            content_type: content_type.to_string(),
            body,
        };
        let internal = self.internal.clone();
        tokio::spawn(async move {
            let (status, reason) = job.run().await;
            let _ = internal.send(Internal::MessageDone { id, status, reason });
        });
        Ok(())
    }

    // -------------------------------------------------------------------- internal events

    fn handle_internal(&mut self, i: Internal, now: Instant) {
        match i {
            Internal::RegisterDone {
                account,
                outcome,
                expires,
                flow,
            } => {
                if let Some(a) = self.accounts.get_mut(&account) {
                    a.register_in_flight = false;
                    debug!(%account, expires, ?outcome, "REGISTER finished");
                    if let Some(flow) = flow {
                        a.flow = flow;
                    }
                    a.registration.handle_outcome(now, outcome);
                    if let Some(e) = a.queued_register.take() {
                        self.spawn_register(&account, e);
                    }
                }
            }
            Internal::KeepAliveDone { account, alive } => {
                if let Some(a) = self.accounts.get_mut(&account) {
                    a.registration.handle_keepalive(now, alive);
                }
            }
            Internal::Response {
                call,
                method,
                cseq,
                response,
            } => {
                let r = in_response(method, cseq, &response);
                self.with_call(call, now, |m| m.handle_response(now, r));
            }
            Internal::RequestFailed {
                call,
                method,
                cseq,
                status,
                reason,
            } => self.with_call(call, now, |m| {
                m.handle_request_failed(now, method, cseq, status, reason)
            }),
            Internal::ServerCancel { call } => self.with_call(call, now, |m| m.handle_cancel(now)),
            Internal::ServerAck { call, cseq } => {
                self.with_call(call, now, |m| m.handle_ack(now, cseq))
            }
            Internal::ServerDone { txn } => {
                self.servers.remove(&txn);
            }
            Internal::MessageDone { id, status, reason } => {
                self.emit(SipEvent::MessageResult { id, status, reason })
            }
        }
    }

    // -------------------------------------------------------------------- incoming requests

    fn handle_incoming(&mut self, mut tx: Transaction, now: Instant) {
        let req = tx.original.clone();
        let call_id = req
            .call_id_header()
            .map(|c| c.value().to_string())
            .unwrap_or_default();
        let in_dialog = req
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .is_some();
        let call = self
            .calls
            .iter()
            .find(|(_, c)| c.machine.dialog().call_id == call_id)
            .map(|(id, _)| *id);
        match (req.method, call) {
            (Method::Invite, None) if !in_dialog => self.incoming_call(tx, now),
            (Method::Invite, Some(id)) if in_dialog => self.in_call_request(id, tx, now),
            (Method::Bye | Method::Info | Method::Notify, Some(id)) => {
                self.in_call_request(id, tx, now)
            }
            (Method::Refer, Some(id)) if in_dialog => self.in_call_request(id, tx, now),
            (Method::Message, _) => {
                let account = self.account_for(&req);
                let from = req
                    .from_header()
                    .ok()
                    .and_then(|f| f.uri().ok())
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let content_type = header_values(&req, "Content-Type").into_iter().next();
                if let Err(unsupported) = crate::message::check_incoming(
                    content_type.as_deref(),
                    &header_values(&req, "Content-Encoding"),
                ) {
                    debug!(%from, ?unsupported, "MESSAGE refused with 415");
                    let headers = unsupported
                        .headers()
                        .into_iter()
                        .map(|(name, value)| make_header(name, value.into()))
                        .collect();
                    reply_async(tx, StatusCode::UnsupportedMediaType, headers, None);
                    return;
                }
                let content_type = content_type.unwrap_or_else(|| "text/plain".into());
                let seq = req
                    .cseq_header()
                    .ok()
                    .and_then(|c| c.seq().ok())
                    .unwrap_or(0);
                reply_async(tx, StatusCode::OK, vec![], None);
                match account {
                    Some(account) => self.emit(SipEvent::MessageReceived {
                        account,
                        from,
                        content_type,
                        body: req.body.clone(),
                        dedupe_key: format!("{call_id}/{seq}"),
                    }),
                    None => debug!("MESSAGE for no account of ours"),
                }
            }
            (Method::Options, _) => {
                reply_async(
                    tx,
                    StatusCode::OK,
                    vec![
                        make_header("Allow", ALLOW.into()),
                        make_header("Accept", "application/sdp, text/plain".into()),
                    ],
                    None,
                );
            }
            (Method::Ack, _) => {}
            (Method::Bye | Method::Info, None) | (Method::Invite, _) => {
                tokio::spawn(async move {
                    let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                });
            }
            (Method::Notify, None) => reply_async(tx, StatusCode::OK, vec![], None),
            _ => {
                tokio::spawn(async move {
                    let _ = tx
                        .reply_with(
                            StatusCode::NotImplemented,
                            vec![make_header("Allow", ALLOW.into())],
                            None,
                        )
                        .await;
                });
            }
        }
    }

    /// The account a request is for: the one whose AOR is the To URI (user and domain), else
    /// the one whose user is the Request-URI's or To's user, else the first.
    fn account_for(&self, req: &Request) -> Option<String> {
        let to = req.to_header().ok().and_then(|t| t.uri().ok());
        if let Some(to) = &to {
            let user = to.user().unwrap_or_default();
            let host = to.host_with_port.to_string();
            if let Some((id, _)) = self
                .accounts
                .iter()
                .find(|(_, a)| a.account.aor.user == user && a.account.aor.domain == host)
            {
                return Some(id.clone());
            }
        }
        let users = [
            req.uri.user().map(str::to_string),
            to.as_ref().and_then(|u| u.user().map(str::to_string)),
        ];
        let mut ids: Vec<&String> = self.accounts.keys().collect();
        ids.sort();
        for user in users.into_iter().flatten() {
            if let Some(id) = ids
                .iter()
                .find(|id| self.accounts[**id].account.aor.user == user)
            {
                return Some(id.to_string());
            }
        }
        ids.first().map(|s| s.to_string())
    }

    fn incoming_call(&mut self, mut tx: Transaction, now: Instant) {
        let req = tx.original.clone();
        let Some(account) = self.account_for(&req) else {
            tokio::spawn(async move {
                let _ = tx.reply(StatusCode::NotFound).await;
            });
            return;
        };
        let id = CallId(self.next_call);
        self.next_call += 1;
        let from_header = req.from_header().ok();
        let remote_uri = from_header
            .and_then(|f| f.uri().ok())
            .map(|u| u.to_string())
            .unwrap_or_default();
        let remote_tag = from_header
            .and_then(|f| f.tag().ok().flatten())
            .map(|t| t.to_string());
        let local_uri = req
            .to_header()
            .ok()
            .and_then(|t| t.uri().ok())
            .map(|u| u.to_string())
            .unwrap_or_else(|| req.uri.to_string());
        let local_tag = make_tag().to_string();
        let remote_target = header_values(&req, "Contact")
            .into_iter()
            .next()
            .map(|c| strip_angle(&c))
            .unwrap_or_else(|| remote_uri.clone());
        let route_set: Vec<String> = header_values(&req, "Record-Route")
            .into_iter()
            .flat_map(|v| split_header_list(&v))
            .collect();
        let remote_cseq = req
            .cseq_header()
            .ok()
            .and_then(|c| c.seq().ok())
            .unwrap_or(0);
        let invite = IncomingInvite {
            dialog: Dialog {
                call_id: req
                    .call_id_header()
                    .map(|c| c.value().to_string())
                    .unwrap_or_default(),
                local_tag: local_tag.clone(),
                remote_tag,
                local_uri,
                remote_uri: remote_uri.clone(),
                remote_target,
                route_set,
                local_cseq: remote_cseq.wrapping_add(1000),
            },
            cseq: remote_cseq,
            account: account.clone(),
            from: remote_uri,
            offer: (!req.body.is_empty()).then(|| req.body.clone()),
        };
        // Our To tag goes into every response of this transaction.
        if let Ok(to) = tx.original.to_header().cloned()
            && let Ok(typed) = to.typed()
        {
            tx.original.headers.unique_push(
                typed
                    .with_tag(rsipstack::sip::param::Tag::new(local_tag))
                    .into(),
            );
        }
        let headers = ResponseHeaders {
            // RFC 3261 §12.1.1: dialog-creating responses copy the Record-Route of the request.
            record_route: header_values(&req, "Record-Route")
                .into_iter()
                .map(|v| make_header("Record-Route", v))
                .collect(),
            contact: self
                .accounts
                .get(&account)
                .map(|a| contact_for(&a.account, &a.flow, &self.config.instance)),
            allow: true,
        };
        let txn = self.spawn_server(id, tx, headers);
        let machine = CallMachine::incoming(id, txn, invite, now, OsRng.next_u64());
        self.calls.insert(
            id,
            CallSlot {
                account,
                machine,
                invite: None,
                invite_task: None,
            },
        );
        self.drive_call(id, now);
    }

    /// A request inside call `id` (re-INVITE, BYE, INFO, NOTIFY, REFER): the machine answers.
    fn in_call_request(&mut self, id: CallId, tx: Transaction, now: Instant) {
        let req = tx.original.clone();
        let method = match req.method {
            Method::Invite => invite::Method::Invite,
            Method::Bye => invite::Method::Bye,
            Method::Info => invite::Method::Info,
            Method::Notify => invite::Method::Notify,
            Method::Refer => invite::Method::Refer,
            _ => return,
        };
        let headers = ResponseHeaders {
            contact: self.our_contact(id).map(|(_, c)| c),
            ..ResponseHeaders::default()
        };
        let txn = self.spawn_server(id, tx, headers);
        let first = |name| header_values(&req, name).into_iter().next();
        let request = InRequest {
            method,
            cseq: req
                .cseq_header()
                .ok()
                .and_then(|c| c.seq().ok())
                .unwrap_or(0),
            contact: first("Contact").map(|c| strip_angle(&c)),
            content_type: req.header_value("Content-Type"),
            body: req.body.clone(),
            event: req.header_value("Event"),
            refer_to: first("Refer-To").map(|v| strip_angle(&v)),
        };
        self.with_call(id, now, |m| m.handle_request(now, txn, request));
    }
}

/// A response to one of our requests, as the call machine sees it.
fn in_response(method: invite::Method, cseq: u32, r: &Response) -> InResponse {
    let status = r.status_code.code();
    let challenge_header = if status == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    InResponse {
        method: Some(method),
        cseq,
        status,
        reason: r.status_code.text().to_string(),
        to_tag: r
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .map(|t| t.to_string()),
        contact: header_values(r, "Contact")
            .into_iter()
            .next()
            .map(|c| strip_angle(&c)),
        record_route: header_values(r, "Record-Route")
            .into_iter()
            .flat_map(|v| split_header_list(&v))
            .collect(),
        body: r.body.clone(),
        challenges: if matches!(status, 401 | 407) {
            header_values(r, challenge_header)
        } else {
            Vec::new()
        },
        reason_text: bearer::reason_text(&header_values(r, "Reason")),
    }
}

// ------------------------------------------------------------------------------------------
// Jobs: one transaction each, run in their own task.

struct RegisterJob {
    ep: EndpointInnerRef,
    account: Arc<Account>,
    call_id: String,
    from_tag: String,
    cseq: Arc<AtomicU32>,
    digest: Arc<std::sync::Mutex<DigestClient>>,
    instance: String,
    udp: SocketAddr,
    tls: Arc<tokio::sync::Mutex<TrustAnchors>>,
    expires: u32,
}

impl RegisterJob {
    /// Run the REGISTER (with digest retries); also returns the local end of the flow used.
    async fn run(self) -> (RegisterOutcome, Option<SipAddr>) {
        let local = match local_flow(&self.ep, &self.account, self.udp, &self.tls).await {
            Ok(l) => l,
            Err(FlowError::Transient(reason)) => {
                return (
                    RegisterOutcome::Transient {
                        status: None,
                        reason,
                        retry_after: None,
                    },
                    None,
                );
            }
            Err(FlowError::Permanent(reason)) => {
                return (
                    RegisterOutcome::Rejected {
                        status: None,
                        reason,
                    },
                    None,
                );
            }
        };
        let contact = contact_for(&self.account, &local, &self.instance);
        (self.register(&local, &contact).await, Some(local))
    }

    async fn register(&self, local: &SipAddr, contact: &str) -> RegisterOutcome {
        let a = &self.account;
        let registrar = format!("sip:{}", a.aor.domain);
        let from = format!(
            "{}<{}>;tag={}",
            display(&a.display_name),
            a.aor,
            self.from_tag
        );
        let to = format!("<{}>", a.aor);
        let mut supported = "path, outbound".to_string();
        if a.bearer.is_some() {
            supported = bearer::supported_with_krypton(&supported);
        }
        let mut auth = AuthRetry::new(a.bearer.is_some());
        let mut authorization: Option<(String, String)> = None;
        // A challenge, our answer, a fresh try after a stale proof, its challenge, our answer.
        for _attempt in 0..6 {
            let seq = self.cseq.fetch_add(1, Ordering::SeqCst);
            let mut extra = vec![
                ("Contact".to_string(), contact.to_string()),
                ("Expires".to_string(), self.expires.to_string()),
                ("Supported".to_string(), supported.clone()),
                ("Allow".to_string(), ALLOW.to_string()),
            ];
            if let Some(auth) = &authorization {
                extra.push(auth.clone());
            }
            let req = match build_request(
                &self.ep,
                local,
                Method::Register,
                &registrar,
                &from,
                &to,
                &self.call_id,
                seq,
                &extra,
            ) {
                Ok(r) => r,
                Err(e) => {
                    return RegisterOutcome::Rejected {
                        status: None,
                        reason: e,
                    };
                }
            };
            let response = match run_non_invite(self.ep.clone(), req, Some(proxy_addr(a))).await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return RegisterOutcome::Transient {
                        status: None,
                        reason: format!("no answer from the proxy {}", a.proxy),
                        retry_after: None,
                    };
                }
                Err(e) => {
                    return RegisterOutcome::Transient {
                        status: None,
                        reason: format!("cannot reach the proxy {}: {e}", a.proxy),
                        retry_after: None,
                    };
                }
            };
            let status = response.status_code.code();
            let phrase = response.status_code.text();
            let challenges = challenges_of(&response);
            let reason = bearer::reason_text(&header_values(&response, "Reason"));
            let step = auth.handle(&AuthResponse {
                status,
                phrase,
                challenges: &challenges,
                reason_text: reason.as_deref(),
            });
            match step {
                AuthStep::Retry(answer) => {
                    match answer_challenge(
                        a,
                        &self.digest,
                        &answer,
                        "REGISTER",
                        &registrar,
                        &[],
                        &self.call_id,
                        &self.instance,
                    ) {
                        Ok(v) => authorization = v,
                        Err(reason) => {
                            return RegisterOutcome::Rejected {
                                status: Some(status),
                                reason,
                            };
                        }
                    }
                    continue;
                }
                AuthStep::Refused { status, reason } => {
                    return RegisterOutcome::Rejected {
                        status: Some(status),
                        reason,
                    };
                }
                AuthStep::Pass => {}
            }
            let text = bearer::failure_text(status, phrase, reason.as_deref());
            return match status {
                200..=299 => {
                    let granted = granted_expires(&response, contact).unwrap_or(self.expires);
                    RegisterOutcome::Accepted { granted }
                }
                423 => {
                    let min = response
                        .header_value("Min-Expires")
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(self.expires.saturating_mul(2));
                    RegisterOutcome::IntervalTooBrief { min_expires: min }
                }
                408 | 480 | 500..=599 => RegisterOutcome::Transient {
                    status: Some(status),
                    reason: text,
                    retry_after: retry_after(&response),
                },
                _ => RegisterOutcome::Rejected {
                    status: Some(status),
                    reason: text,
                },
            };
        }
        RegisterOutcome::Rejected {
            status: Some(401),
            reason: "authentication did not converge".into(),
        }
    }
}

struct MessageJob {
    ep: EndpointInnerRef,
    account: Arc<Account>,
    digest: Arc<std::sync::Mutex<DigestClient>>,
    /// The account's `+sip.instance`, for a Bearer token.
    instance: String,
    udp: SocketAddr,
    tls: Arc<tokio::sync::Mutex<TrustAnchors>>,
    uri: String,
    content_type: String,
    body: Vec<u8>,
}

impl MessageJob {
    async fn run(self) -> (Option<u16>, String) {
        let a = &self.account;
        let local = match local_flow(&self.ep, a, self.udp, &self.tls).await {
            Ok(l) => l,
            Err(FlowError::Transient(reason) | FlowError::Permanent(reason)) => {
                return (None, reason);
            }
        };
        let call_id = make_call_id(None, CallIdFormat::Uuid).value().to_string();
        let from = format!("{}<{}>;tag={}", display(&a.display_name), a.aor, make_tag());
        let to = format!("<{}>", self.uri);
        let mut auth = AuthRetry::new(a.bearer.is_some());
        let mut authorization: Option<(String, String)> = None;
        for seq in 1..=6u32 {
            let mut extra = vec![("Content-Type".to_string(), self.content_type.clone())];
            if a.bearer.is_some() {
                extra.push(("Supported".to_string(), bearer::SUPPORTED_TAG.to_string()));
            }
            if let Some(auth) = &authorization {
                extra.push(auth.clone());
            }
            let mut req = match build_request(
                &self.ep,
                &local,
                Method::Message,
                &self.uri,
                &from,
                &to,
                &call_id,
                seq,
                &extra,
            ) {
                Ok(r) => r,
                Err(e) => return (None, e),
            };
            req.body = self.body.clone();
            let response = match run_non_invite(self.ep.clone(), req, Some(proxy_addr(a))).await {
                Ok(Some(r)) => r,
                Ok(None) => return (None, format!("no answer from the proxy {}", a.proxy)),
                Err(e) => return (None, format!("cannot reach the proxy {}: {e}", a.proxy)),
            };
            let status = response.status_code.code();
            let phrase = response.status_code.text();
            let challenges = challenges_of(&response);
            let reason = bearer::reason_text(&header_values(&response, "Reason"));
            match auth.handle(&AuthResponse {
                status,
                phrase,
                challenges: &challenges,
                reason_text: reason.as_deref(),
            }) {
                AuthStep::Retry(answer) => {
                    match answer_challenge(
                        a,
                        &self.digest,
                        &answer,
                        "MESSAGE",
                        &self.uri,
                        &self.body,
                        &call_id,
                        &self.instance,
                    ) {
                        Ok(v) => authorization = v,
                        Err(reason) => return (Some(status), reason),
                    }
                    continue;
                }
                AuthStep::Refused { status, reason } => return (Some(status), reason),
                AuthStep::Pass => {}
            }
            let text = match reason {
                Some(t) if status >= 300 && !t.trim().is_empty() => t,
                _ => phrase.to_string(),
            };
            return (Some(status), text);
        }
        (Some(401), "authentication did not converge".into())
    }
}

/// Run one non-INVITE client transaction to its final response (`None`: no answer in time).
async fn run_non_invite(
    ep: EndpointInnerRef,
    req: Request,
    destination: Option<SipAddr>,
) -> Result<Option<Response>, String> {
    let key =
        TransactionKey::from_request(&req, TransactionRole::Client).map_err(|e| e.to_string())?;
    let mut tx = Transaction::new_client(key, req, ep, None);
    tx.destination = destination;
    tx.send().await.map_err(|e| e.to_string())?;
    let wait = async {
        while let Some(msg) = tx.receive().await {
            if let SipMessage::Response(r) = msg
                && r.status_code.code() >= 200
            {
                return Some(r);
            }
        }
        None
    };
    Ok(tokio::time::timeout(NON_INVITE_TIMEOUT, wait)
        .await
        .ok()
        .flatten())
}

fn reply_async(
    mut tx: Transaction,
    status: StatusCode,
    headers: Vec<Header>,
    body: Option<Vec<u8>>,
) {
    tokio::spawn(async move {
        let _ = tx.reply_with(status, headers, body).await;
    });
}

/// The header that answers `answer` for `account`: a Bearer token from the account's signer
/// (bound to `call_id` and `instance`), or digest credentials for `method`/`uri`/`body`.
/// `Ok(None)`: a fresh try without credentials. `Err`: why the request cannot go on.
#[allow(clippy::too_many_arguments)]
fn answer_challenge(
    account: &Account,
    digest: &std::sync::Mutex<DigestClient>,
    answer: &AuthAnswer,
    method: &str,
    uri: &str,
    body: &[u8],
    call_id: &str,
    instance: &str,
) -> Result<Option<(String, String)>, String> {
    let Some(header) = answer.header() else {
        return Ok(None);
    };
    let value = match answer {
        AuthAnswer::Fresh => return Ok(None),
        AuthAnswer::Bearer { challenge, .. } => {
            let signer = account
                .bearer
                .as_ref()
                .ok_or("internal error: a Bearer answer without a signer")?;
            format!("Bearer {}", signer.token(challenge, call_id, instance)?)
        }
        AuthAnswer::Digest { challenges, .. } => {
            let Some(creds) = &account.credentials else {
                return Err(if account.bearer.is_some() {
                    "the proxy sent no KRYPTON Bearer challenge (is it this account's KRYPTON provider?) and the account has no password".into()
                } else {
                    "the proxy wants credentials and this account has no password".into()
                });
            };
            let mut d = digest
                .lock()
                .map_err(|_| "internal error: digest state poisoned".to_string())?;
            authorize(&mut d, challenges, creds, method, uri, body)?
        }
    };
    Ok(Some((header.to_string(), value)))
}

/// The challenges of a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`); none otherwise.
fn challenges_of(r: &Response) -> Vec<String> {
    match r.status_code.code() {
        401 => header_values(r, "WWW-Authenticate"),
        407 => header_values(r, "Proxy-Authenticate"),
        _ => Vec::new(),
    }
}

/// `Retry-After: 30` (comments and parameters ignored).
fn retry_after(r: &Response) -> Option<Duration> {
    let v = header_values(r, "Retry-After").into_iter().next()?;
    let digits: String = v.trim().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().map(Duration::from_secs)
}

/// Answer a challenge with our digest module.
fn authorize(
    client: &mut DigestClient,
    challenges: &[String],
    creds: &digest::Credentials,
    method: &str,
    uri: &str,
    body: &[u8],
) -> Result<String, String> {
    let parsed: Vec<digest::Challenge> = challenges
        .iter()
        .filter_map(|c| digest::parse_challenges(c).ok())
        .flatten()
        .collect();
    let chosen = digest::choose(parsed.iter()).ok_or_else(|| {
        format!(
            "the server's challenge uses no digest algorithm we support: {}",
            challenges.join(" | ")
        )
    })?;
    client
        .authorize(chosen, creds, method, uri, body)
        .map_err(|e| e.to_string())
}

// ------------------------------------------------------------------------------------------
// Message building helpers

#[allow(clippy::too_many_arguments)]
fn build_request(
    ep: &EndpointInnerRef,
    local: &SipAddr,
    method: Method,
    uri: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    extra: &[(String, String)],
) -> Result<Request, String> {
    let req_uri =
        rsipstack::sip::Uri::try_from(uri).map_err(|e| format!("bad URI '{uri}': {e}"))?;
    let via = ep
        .get_via(Some(local.clone()), None)
        .map_err(|e| e.to_string())?;
    let from =
        rsipstack::sip::typed::From::parse(from).map_err(|e| format!("bad From '{from}': {e}"))?;
    let to = rsipstack::sip::typed::To::parse(to).map_err(|e| format!("bad To '{to}': {e}"))?;
    let mut req = ep.make_request(
        method,
        req_uri,
        via,
        from,
        to,
        cseq,
        Some(rsipstack::sip::headers::CallId::new(call_id)),
    );
    for (name, value) in extra {
        req.headers.push(make_header(name, value.clone()));
    }
    Ok(req)
}

/// Our Contact for an account: the local address of its flow, with the RFC 5626 instance id
/// (the account's own, else `instance`, the user agent's) and reg-id.
fn contact_for(account: &Account, local: &SipAddr, instance: &str) -> String {
    let instance = account.instance_or(instance);
    let transport = match account.proxy.transport {
        TransportKind::Udp => String::new(),
        t => format!(";transport={t}"),
    };
    format!(
        "<sip:{}@{}{}>;+sip.instance=\"<{}>\";reg-id=1",
        account.aor.user, local.addr, transport, instance
    )
}

/// Why there is no flow to the proxy.
enum FlowError {
    /// It may work a little later (refused, reset, timed out).
    Transient(String),
    /// It will not work until the settings change (the proxy's certificate is not trusted).
    Permanent(String),
}

/// The local end of the flow to the account's proxy: the UDP listener, or the local address
/// of the TCP/TLS/WS connection (opened now if there is none; rsipstack keeps it and every
/// later request to the proxy goes through it).
async fn local_flow(
    ep: &EndpointInnerRef,
    account: &Account,
    udp: SocketAddr,
    tls: &tokio::sync::Mutex<TrustAnchors>,
) -> Result<SipAddr, FlowError> {
    if !account.proxy.transport.is_stream() {
        return Ok(SipAddr {
            r#type: Some(rsipstack::sip::Transport::Udp),
            addr: HostWithPort::from(udp),
        });
    }
    ensure_tls_trust(ep, tls, account)
        .await
        .map_err(FlowError::Permanent)?;
    let proxy = proxy_addr(account);
    match tokio::time::timeout(CONNECT_TIMEOUT, ep.transport_layer.lookup(&proxy, None)).await {
        Ok(Ok((connection, _))) => Ok(connection.get_addr().clone()),
        Ok(Err(e)) => Err(connect_error(&e, account)),
        Err(_) => Err(FlowError::Transient(format!(
            "cannot connect to the proxy {}: no connection within {} s",
            account.proxy,
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// What a failure to open (or send on) the connection to the proxy means.
fn connect_error(e: &rsipstack::Error, account: &Account) -> FlowError {
    match tls::rustls_error(e) {
        Some(r) => match tls::certificate_problem(r, &account.proxy.host) {
            Some(reason) => FlowError::Permanent(reason),
            None => FlowError::Transient(format!(
                "the TLS handshake with the proxy {} failed: {r}",
                account.proxy
            )),
        },
        None => FlowError::Transient(format!(
            "cannot connect to the proxy {}: {e}",
            account.proxy
        )),
    }
}

/// For a TLS account, make sure rsipstack trusts what it needs: the OS trust store (read once
/// per user agent) and the account's CA file. `Err` is a reason retrying will not fix.
async fn ensure_tls_trust(
    ep: &EndpointInnerRef,
    tls: &tokio::sync::Mutex<TrustAnchors>,
    account: &Account,
) -> Result<(), String> {
    if account.proxy.transport != TransportKind::Tls {
        return Ok(());
    }
    let ca_file = account.tls_ca.as_deref();
    let mut anchors = tls.lock().await;
    if anchors.covers(ca_file) {
        return Ok(());
    }
    let mut changed = false;
    if !anchors.covers(None) {
        let loaded = tokio::task::spawn_blocking(rustls_native_certs::load_native_certs)
            .await
            .map_err(|e| format!("cannot read the OS trust store: {e}"))?;
        for e in &loaded.errors {
            warn!(error = %e, "could not read part of the OS trust store");
        }
        anchors.add_os_store(loaded.certs);
        changed = true;
    }
    let file = match ca_file {
        Some(path) if !anchors.covers(Some(path)) => match tokio::fs::read(path).await {
            Ok(pem) => anchors.add_ca_file(path, &pem),
            Err(e) => Err(format!("cannot read the CA file {}: {e}", path.display())),
        }
        .inspect(|()| changed = true),
        _ => Ok(()),
    };
    if changed {
        if anchors.len() == 0 {
            warn!("no trusted CA certificates: no TLS proxy can be verified");
        }
        // rustls needs a process-wide crypto provider; ring is the one rsipstack links.
        let _ = rustls::crypto::ring::default_provider().install_default();
        ep.transport_layer.set_tls_config(TlsConfig {
            ca_certs: Some(anchors.pem()),
            ..Default::default()
        });
        info!(anchors = anchors.len(), "TLS trust anchors set");
    }
    file
}

fn proxy_addr(account: &Account) -> SipAddr {
    let t = match account.proxy.transport {
        TransportKind::Udp => rsipstack::sip::Transport::Udp,
        TransportKind::Tcp => rsipstack::sip::Transport::Tcp,
        TransportKind::Tls => rsipstack::sip::Transport::Tls,
        TransportKind::Ws => rsipstack::sip::Transport::Ws,
        TransportKind::Wss => rsipstack::sip::Transport::Wss,
    };
    let host = if account.proxy.host.contains(':') {
        format!("[{}]:{}", account.proxy.host, account.proxy.port)
    } else {
        format!("{}:{}", account.proxy.host, account.proxy.port)
    };
    SipAddr {
        r#type: Some(t),
        addr: HostWithPort::try_from(host.as_str()).unwrap_or_default(),
    }
}

/// `sip:…`/`sips:…` URIs are used as they are; anything else is a user part in `domain`.
fn target_uri(target: &str, domain: &str) -> Result<String, UaError> {
    let t = target.trim();
    let uri = if t.starts_with("sip:") || t.starts_with("sips:") {
        t.to_string()
    } else if t.contains('@') {
        format!("sip:{t}")
    } else {
        format!("sip:{t}@{domain}")
    };
    rsipstack::sip::Uri::try_from(uri.as_str())
        .map_err(|_| UaError::BadTarget(target.to_string()))?;
    Ok(uri)
}

fn display(name: &Option<String>) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("\"{}\" ", n.replace(['"', '\\'], "")),
        _ => String::new(),
    }
}

/// All values of a header (by name, case-insensitive, compact forms included).
fn header_values(msg: &impl HasHeaders, name: &str) -> Vec<String> {
    let compact = match name.to_ascii_lowercase().as_str() {
        "contact" => Some("m"),
        "content-type" => Some("c"),
        "content-encoding" => Some("e"),
        _ => None,
    };
    msg.headers()
        .iter()
        .filter(|h| {
            h.name().eq_ignore_ascii_case(name)
                || compact.is_some_and(|c| h.name().eq_ignore_ascii_case(c))
        })
        .map(|h| h.value().to_string())
        .collect()
}

/// Split a comma-separated header list, respecting quotes and angle brackets.
fn split_header_list(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut quoted, mut angle) = (String::new(), false, false);
    for ch in v.chars() {
        match ch {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `"Name" <sip:x@y;transport=udp>;expires=60` → `sip:x@y;transport=udp`.
fn strip_angle(v: &str) -> String {
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if b > a => v[a + 1..b].to_string(),
        _ => v.split(';').next().unwrap_or(v).trim().to_string(),
    }
}

/// The expiry the registrar granted our contact: its `expires` parameter in the 200's Contact
/// list, else the Expires header.
fn granted_expires(response: &Response, our_contact: &str) -> Option<u32> {
    let ours = strip_angle(our_contact);
    for v in header_values(response, "Contact") {
        for c in split_header_list(&v) {
            if strip_angle(&c) == ours {
                for p in c.split(';').skip(1) {
                    if let Some((k, val)) = p.split_once('=')
                        && k.trim().eq_ignore_ascii_case("expires")
                    {
                        return val.trim().parse().ok();
                    }
                }
            }
        }
    }
    response
        .header_value("Expires")
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_split_like_sip() {
        assert_eq!(
            split_header_list("<sip:a@b;lr>, \"x, y\" <sip:c@d>,<sip:e@f>"),
            ["<sip:a@b;lr>", "\"x, y\" <sip:c@d>", "<sip:e@f>"]
        );
        assert_eq!(
            strip_angle("\"A\" <sip:a@b;transport=udp>;expires=60"),
            "sip:a@b;transport=udp"
        );
        assert_eq!(strip_angle("sip:a@b;expires=3"), "sip:a@b");
    }

    #[test]
    fn targets_become_uris() {
        assert_eq!(target_uri("bob", "p.test").unwrap(), "sip:bob@p.test");
        assert_eq!(
            target_uri("bob@x.test", "p.test").unwrap(),
            "sip:bob@x.test"
        );
        assert_eq!(
            target_uri("sip:+3120@p.test", "p.test").unwrap(),
            "sip:+3120@p.test"
        );
    }
}
