//! The user agent: a thin tokio driver over rsipstack's transports and transactions.
//!
//! rsipstack gives us RFC 3261 transactions (retransmissions, timers, the ACK of a 2xx) and
//! the UDP/TCP/TLS/WS transports. Everything a phone decides sits on top, in this module and
//! in sans-IO machines: when to register ([`crate::registration`]), how to answer a digest
//! challenge ([`crate::digest`], ours because rsipstack's rejects SHA-256 and qop lists), what a
//! dialog looks like, why a call ended ([`crate::call`]).
//!
//! One actor task owns all state (accounts, calls, dialogs). Commands come in through
//! [`UserAgent`]'s methods; transactions run in small tasks that report back to the actor;
//! everything the application needs to know comes out as [`SipEvent`]s. SDP bodies pass through
//! untouched: the media layer owns offer/answer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

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
pub use crate::call::SipEvent;
use crate::call::{CallId, EndReason};
use crate::digest::{self, DigestClient};
use crate::registration::{RegisterOutcome, Registration, RegistrationAction};
use crate::tls::{self, TrustAnchors};

/// How long we wait for a final answer to a REGISTER/OPTIONS/MESSAGE before calling the
/// proxy unreachable (shorter than timer F so that a restarted proxy is found in seconds).
const NON_INVITE_TIMEOUT: Duration = Duration::from_secs(8);
/// How long opening a TCP/TLS/WS connection to the proxy (TLS handshake included) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);
/// How long an INVITE may go without any response (not even 100 Trying) before the proxy counts
/// as unreachable.
const INVITE_NO_RESPONSE: Duration = Duration::from_secs(4);
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
            next_call: 1,
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
    InviteResponse {
        call: CallId,
        response: Response,
    },
    InviteFailed {
        call: CallId,
        status: Option<u16>,
        reason: String,
    },
    ServerInvite {
        call: CallId,
        event: ServerInviteEvent,
    },
    ReofferDone {
        call: CallId,
        result: Result<Vec<u8>, u16>,
    },
    ReferDone {
        call: CallId,
        status: Option<u16>,
    },
    MessageDone {
        id: u64,
        status: Option<u16>,
        reason: String,
    },
}

enum ServerInviteEvent {
    Cancelled,
    Acked,
    Finished,
}

/// Commands to the task that holds an incoming INVITE's server transaction.
enum ServerCmd {
    Ringing,
    Accept(Vec<u8>),
    Reject(u16),
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

#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our URI (From of our requests), without tag.
    local_uri: String,
    /// Their URI (To of our requests), without tag.
    remote_uri: String,
    /// Where in-dialog requests go (their Contact).
    remote_target: String,
    /// Route headers for in-dialog requests.
    route_set: Vec<String>,
    local_cseq: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Our INVITE is out, no final answer yet.
    Calling,
    /// Incoming INVITE not yet answered.
    Offered,
    /// We sent 200, waiting for ACK.
    Accepted,
    Established,
    /// BYE/CANCEL sent or received; the Ended event went out.
    Ending,
}

struct Call {
    account: String,
    dialog: Dialog,
    phase: Phase,
    /// Incoming: the task holding the INVITE server transaction.
    server: Option<mpsc::UnboundedSender<ServerCmd>>,
    /// Outgoing: the INVITE we sent (for CANCEL).
    invite: Option<Request>,
    /// Outgoing: our INVITE transaction is still running.
    invite_pending: bool,
    /// Outgoing: a provisional response came (a CANCEL may be sent).
    got_provisional: bool,
    /// Outgoing: CANCEL sent.
    cancel_sent: bool,
    /// A re-INVITE from the other side waiting for our answer.
    pending_reoffer: Option<oneshot::Sender<Result<Vec<u8>, u16>>>,
    /// Digest retries done for this INVITE.
    auth_attempts: u32,
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
    calls: HashMap<CallId, Call>,
    next_call: u64,
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
                .chain(shutdown.as_ref().map(|(_, d)| *d))
                .min()
                .unwrap_or(now + Duration::from_secs(3600));
            tokio::select! {
                c = commands.recv() => match c {
                    Some(Command::Shutdown(done)) => {
                        self.begin_shutdown(now);
                        shutdown = Some((done, now + Duration::from_secs(4)));
                    }
                    Some(c) => self.handle_command(c, now),
                    None => {
                        self.begin_shutdown(now);
                        shutdown.get_or_insert_with(|| {
                            let (tx, _) = oneshot::channel();
                            (tx, now + Duration::from_secs(4))
                        });
                    }
                },
                Some(tx) = incoming.recv() => self.handle_incoming(tx),
                Some(i) = internal.recv() => self.handle_internal(i, Instant::now()),
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    for a in self.accounts.values_mut() {
                        a.registration.handle_timeout(now);
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
            self.hangup(id);
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
                let _ = reply.send(self.start_call(&account, &target, sdp));
            }
            Command::Ringing(id) => self.server_cmd(id, ServerCmd::Ringing),
            Command::Answer(id, sdp) => {
                if let Some(call) = self.calls.get_mut(&id)
                    && call.phase == Phase::Offered
                {
                    call.phase = Phase::Accepted;
                }
                self.server_cmd(id, ServerCmd::Accept(sdp));
            }
            Command::Reject(id, status) => {
                self.server_cmd(id, ServerCmd::Reject(status));
                if self.calls.remove(&id).is_some() {
                    self.emit(SipEvent::Ended {
                        call: id,
                        reason: EndReason::Declined,
                    });
                }
            }
            Command::Hangup(id) => self.hangup(id),
            Command::Reoffer(id, sdp) => self.send_reoffer(id, sdp),
            Command::AnswerReoffer(id, answer) => {
                if let Some(tx) = self
                    .calls
                    .get_mut(&id)
                    .and_then(|c| c.pending_reoffer.take())
                {
                    let _ = tx.send(answer);
                }
            }
            Command::Info(id, content_type, body) => {
                let Some(req) =
                    self.in_dialog_request(id, Method::Info, Some((&content_type, body)))
                else {
                    return;
                };
                let (ep, proxy) = (self.ep.clone(), self.proxy_of_call(id));
                tokio::spawn(async move {
                    let _ = run_non_invite(ep, req, proxy).await;
                });
            }
            Command::Refer(id, target) => self.send_refer(id, &target),
            Command::NotifyTransfer(id, status, reason) => {
                let fin = status >= 200;
                let Some(mut req) = self.in_dialog_request(
                    id,
                    Method::Notify,
                    Some((
                        "message/sipfrag;version=2.0",
                        format!("SIP/2.0 {status} {reason}\r\n").into_bytes(),
                    )),
                ) else {
                    return;
                };
                req.headers.push(make_header("Event", "refer".into()));
                req.headers.push(make_header(
                    "Subscription-State",
                    if fin {
                        "terminated;reason=noresource".into()
                    } else {
                        "active;expires=60".into()
                    },
                ));
                let (ep, proxy) = (self.ep.clone(), self.proxy_of_call(id));
                tokio::spawn(async move {
                    let _ = run_non_invite(ep, req, proxy).await;
                });
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

    fn server_cmd(&self, id: CallId, cmd: ServerCmd) {
        if let Some(tx) = self.calls.get(&id).and_then(|c| c.server.as_ref()) {
            let _ = tx.send(cmd);
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
            instance: self.config.instance.clone(),
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

    fn start_call(&mut self, account: &str, target: &str, sdp: Vec<u8>) -> Result<CallId, UaError> {
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
        let call = Call {
            account: account.to_string(),
            dialog,
            phase: Phase::Calling,
            server: None,
            invite: None,
            invite_pending: false,
            got_provisional: false,
            cancel_sent: false,
            pending_reoffer: None,
            auth_attempts: 0,
        };
        self.calls.insert(id, call);
        self.send_invite(id, sdp, None);
        Ok(id)
    }

    /// Send (or re-send with credentials) our initial INVITE.
    fn send_invite(&mut self, id: CallId, sdp: Vec<u8>, authorization: Option<(String, String)>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(a) = self.accounts.get(&call.account) else {
            return;
        };
        let contact = contact_for(&a.account, &a.flow, &self.config.instance);
        let d = &call.dialog;
        let mut extra = vec![
            ("Contact".to_string(), contact),
            ("Allow".to_string(), ALLOW.to_string()),
            ("Supported".to_string(), "replaces".to_string()),
            ("Content-Type".to_string(), "application/sdp".to_string()),
        ];
        if let Some((name, value)) = authorization {
            extra.push((name, value));
        }
        let req = build_request(
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
            d.local_cseq,
            &extra,
        );
        let mut req = match req {
            Ok(r) => r,
            Err(e) => {
                self.end_call(
                    id,
                    EndReason::Failed {
                        status: None,
                        reason: e,
                    },
                );
                return;
            }
        };
        req.body = sdp;
        call.invite = Some(req.clone());
        call.invite_pending = true;
        let proxy = proxy_addr(&a.account);
        let account = a.account.clone();
        let tls = self.tls.clone();
        let ep = self.ep.clone();
        let internal = self.internal.clone();
        tokio::spawn(async move {
            if let Err(reason) = ensure_tls_trust(&ep, &tls, &account).await {
                let _ = internal.send(Internal::InviteFailed {
                    call: id,
                    status: None,
                    reason,
                });
                return;
            }
            let key = match TransactionKey::from_request(&req, TransactionRole::Client) {
                Ok(k) => k,
                Err(e) => {
                    let _ = internal.send(Internal::InviteFailed {
                        call: id,
                        status: None,
                        reason: e.to_string(),
                    });
                    return;
                }
            };
            let mut tx = Transaction::new_client(key, req, ep, None);
            tx.destination = Some(proxy);
            if let Err(e) = tx.send().await {
                let (FlowError::Transient(reason) | FlowError::Permanent(reason)) =
                    connect_error(&e, &account);
                let _ = internal.send(Internal::InviteFailed {
                    call: id,
                    status: None,
                    reason: format!("cannot send the INVITE: {reason}"),
                });
                return;
            }
            // A proxy answers an INVITE with 100 Trying at once; silence means it is down, and
            // the call should fail over now rather than after timer B (32 s).
            let mut answered = false;
            loop {
                let msg = if answered {
                    tx.receive().await
                } else {
                    match tokio::time::timeout(INVITE_NO_RESPONSE, tx.receive()).await {
                        Ok(m) => m,
                        Err(_) => {
                            let _ = internal.send(Internal::InviteFailed {
                                call: id,
                                status: Some(408),
                                reason: format!(
                                    "the proxy did not answer within {} s",
                                    INVITE_NO_RESPONSE.as_secs()
                                ),
                            });
                            return;
                        }
                    }
                };
                let Some(msg) = msg else { break };
                answered = true;
                if let SipMessage::Response(response) = msg {
                    let fin = response.status_code.code() >= 200;
                    let _ = internal.send(Internal::InviteResponse { call: id, response });
                    if fin {
                        return;
                    }
                }
            }
            let _ = internal.send(Internal::InviteFailed {
                call: id,
                status: Some(408),
                reason: "no answer to the INVITE".into(),
            });
        });
    }

    fn handle_invite_response(&mut self, id: CallId, response: Response) {
        let status = response.status_code.code();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if status >= 200 {
            call.invite_pending = false;
        }
        let to_tag = response
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .map(|t| t.to_string());
        if call.phase == Phase::Ending {
            // The user hung up before the final answer.
            if (101..200).contains(&status) && !call.cancel_sent {
                call.cancel_sent = true;
                self.send_cancel(id);
            } else if (200..300).contains(&status) {
                // The answer crossed our CANCEL: the stack ACKs it; end it with a BYE.
                learn_dialog(&mut call.dialog, &response, to_tag);
                if let Some(req) = self.in_dialog_request(id, Method::Bye, None) {
                    let (ep, proxy) = (self.ep.clone(), self.proxy_of_call(id));
                    tokio::spawn(async move {
                        let _ = run_non_invite(ep, req, proxy).await;
                    });
                }
            }
            if status >= 200 {
                self.calls.remove(&id);
            }
            return;
        }
        if call.phase != Phase::Calling {
            return;
        }
        if status < 200 {
            if status > 100 {
                call.got_provisional = true;
                if call.dialog.remote_tag.is_none() {
                    call.dialog.remote_tag = to_tag;
                }
                let sdp = (!response.body.is_empty()).then(|| response.body.clone());
                self.emit(SipEvent::Progress {
                    call: id,
                    status,
                    sdp,
                });
            }
            return;
        }
        if (200..300).contains(&status) {
            learn_dialog(&mut call.dialog, &response, to_tag);
            call.phase = Phase::Established;
            self.emit(SipEvent::Answered {
                call: id,
                sdp: response.body.clone(),
            });
            return;
        }
        if matches!(status, 401 | 407) && call.auth_attempts < 2 {
            call.auth_attempts += 1;
            let Some(invite) = call.invite.clone() else {
                return;
            };
            let Some(a) = self.accounts.get(&call.account) else {
                return;
            };
            let (challenge_header, answer_header) = if status == 401 {
                ("WWW-Authenticate", "Authorization")
            } else {
                ("Proxy-Authenticate", "Proxy-Authorization")
            };
            let challenges = header_values(&response, challenge_header);
            let answer = match (&a.account.credentials, a.digest.lock()) {
                (Some(creds), Ok(mut d)) => authorize(
                    &mut d,
                    &challenges,
                    creds,
                    "INVITE",
                    &invite.uri.to_string(),
                    &invite.body,
                ),
                (None, _) => Err("the proxy wants credentials and this account has none".into()),
                (_, Err(_)) => Err("internal error: digest state poisoned".into()),
            };
            match answer {
                Ok(value) => {
                    call.dialog.local_cseq += 1;
                    call.got_provisional = false;
                    self.send_invite(id, invite.body, Some((answer_header.into(), value)));
                }
                Err(reason) => self.end_call(
                    id,
                    EndReason::Failed {
                        status: Some(status),
                        reason,
                    },
                ),
            }
            return;
        }
        let phrase = response.status_code.text();
        let reason = if matches!(status, 401 | 407) {
            EndReason::Failed {
                status: Some(status),
                reason: "the proxy refused our credentials".into(),
            }
        } else if status == 487 {
            EndReason::RemoteHangup
        } else {
            EndReason::from_failure_status(status, phrase)
        };
        self.end_call(id, reason);
    }

    fn send_cancel(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(invite) = call.invite.clone() else {
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

    fn hangup(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match call.phase {
            Phase::Calling => {
                // CANCEL only once a provisional response came (RFC 3261 §9.1); otherwise it
                // goes out when the first one arrives (see handle_invite_response).
                if call.got_provisional {
                    call.cancel_sent = true;
                    self.send_cancel(id);
                }
                self.end_call(id, EndReason::LocalHangup);
            }
            Phase::Offered => {
                self.server_cmd(id, ServerCmd::Reject(603));
                self.end_call(id, EndReason::LocalHangup);
            }
            Phase::Accepted | Phase::Established => {
                if let Some(req) = self.in_dialog_request(id, Method::Bye, None) {
                    let (ep, proxy) = (self.ep.clone(), self.proxy_of_call(id));
                    tokio::spawn(async move {
                        let _ = run_non_invite(ep, req, proxy).await;
                    });
                }
                self.end_call(id, EndReason::LocalHangup);
            }
            Phase::Ending => {}
        }
    }

    /// Tell the application the call is over; forget it unless our INVITE transaction is
    /// still running (a late 2xx must still be ended with a BYE).
    fn end_call(&mut self, id: CallId, reason: EndReason) {
        if let Some(call) = self.calls.get_mut(&id) {
            if call.phase == Phase::Ending {
                return;
            }
            call.phase = Phase::Ending;
            if !call.invite_pending {
                self.calls.remove(&id);
            }
            self.emit(SipEvent::Ended { call: id, reason });
        }
    }

    fn send_reoffer(&mut self, id: CallId, sdp: Vec<u8>) {
        let Some(mut req) =
            self.in_dialog_request(id, Method::Invite, Some(("application/sdp", sdp)))
        else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(a) = self.accounts.get(&call.account) else {
            return;
        };
        req.headers.push(make_header(
            "Contact",
            contact_for(&a.account, &a.flow, &self.config.instance),
        ));
        let proxy = self.proxy_of_call(id);
        let (ep, internal) = (self.ep.clone(), self.internal.clone());
        tokio::spawn(async move {
            let result = match TransactionKey::from_request(&req, TransactionRole::Client) {
                Ok(key) => {
                    let mut tx = Transaction::new_client(key, req, ep, None);
                    tx.destination = proxy;
                    let mut result = Err(408);
                    if tx.send().await.is_ok() {
                        while let Some(msg) = tx.receive().await {
                            if let SipMessage::Response(r) = msg {
                                let code = r.status_code.code();
                                if code >= 300 {
                                    result = Err(code);
                                    break;
                                } else if code >= 200 {
                                    result = Ok(r.body.clone());
                                    break;
                                }
                            }
                        }
                    }
                    result
                }
                Err(_) => Err(400),
            };
            let _ = internal.send(Internal::ReofferDone { call: id, result });
        });
    }

    /// A request inside an established dialog (BYE, INFO, re-INVITE) from our side.
    fn in_dialog_request(
        &mut self,
        id: CallId,
        method: Method,
        body: Option<(&str, Vec<u8>)>,
    ) -> Option<Request> {
        let call = self.calls.get_mut(&id)?;
        let local = self.accounts.get(&call.account)?.flow.clone();
        call.dialog.local_cseq += 1;
        let d = &call.dialog;
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
            &local,
            method,
            &d.remote_target,
            &format!("<{}>;tag={}", d.local_uri, d.local_tag),
            &to,
            &d.call_id,
            d.local_cseq,
            &extra,
        )
        .ok()?;
        if let Some((_, b)) = body {
            req.body = b;
        }
        Some(req)
    }

    fn send_refer(&mut self, id: CallId, target: &str) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(a) = self.accounts.get(&call.account) else {
            return;
        };
        let Ok(target) = target_uri(target, &a.account.aor.domain) else {
            self.emit(SipEvent::TransferAccepted {
                call: id,
                accepted: false,
                status: None,
            });
            return;
        };
        let aor = a.account.aor.to_string();
        let contact = contact_for(&a.account, &a.flow, &self.config.instance);
        let Some(mut req) = self.in_dialog_request(id, Method::Refer, None) else {
            return;
        };
        req.headers
            .push(make_header("Refer-To", format!("<{target}>")));
        req.headers
            .push(make_header("Referred-By", format!("<{aor}>")));
        req.headers.push(make_header("Contact", contact));
        let (ep, proxy, internal) = (
            self.ep.clone(),
            self.proxy_of_call(id),
            self.internal.clone(),
        );
        tokio::spawn(async move {
            let status = run_non_invite(ep, req, proxy)
                .await
                .ok()
                .flatten()
                .map(|r| r.status_code.code());
            let _ = internal.send(Internal::ReferDone { call: id, status });
        });
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
            Internal::InviteResponse { call, response } => {
                let fin = response.status_code.code() >= 200;
                self.handle_invite_response(call, response);
                if fin
                    && let Some(c) = self.calls.get(&call)
                    && c.phase == Phase::Ending
                {
                    self.calls.remove(&call);
                }
            }
            Internal::InviteFailed {
                call,
                status,
                reason,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.invite_pending = false;
                }
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.phase == Phase::Calling)
                {
                    self.end_call(call, EndReason::Failed { status, reason });
                }
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.phase == Phase::Ending)
                {
                    self.calls.remove(&call);
                }
            }
            Internal::ServerInvite { call, event } => match event {
                ServerInviteEvent::Cancelled => {
                    if self.calls.contains_key(&call) {
                        self.end_call(call, EndReason::RemoteHangup);
                    }
                }
                ServerInviteEvent::Acked => {
                    if let Some(c) = self.calls.get_mut(&call)
                        && c.phase == Phase::Accepted
                    {
                        c.phase = Phase::Established;
                        self.emit(SipEvent::Confirmed { call });
                    }
                }
                ServerInviteEvent::Finished => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.server = None;
                        if c.phase == Phase::Accepted {
                            // 200 sent but never ACKed (RFC 3261 §13.3.1.4): the call failed.
                            self.hangup(call);
                        }
                    }
                }
            },
            Internal::ReofferDone { call, result } => {
                self.emit(SipEvent::ReofferResult { call, result })
            }
            Internal::ReferDone { call, status } => self.emit(SipEvent::TransferAccepted {
                call,
                accepted: status.is_some_and(|s| (200..300).contains(&s)),
                status,
            }),
            Internal::MessageDone { id, status, reason } => {
                self.emit(SipEvent::MessageResult { id, status, reason })
            }
        }
    }

    // -------------------------------------------------------------------- incoming requests

    fn handle_incoming(&mut self, mut tx: Transaction) {
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
            .find(|(_, c)| c.dialog.call_id == call_id)
            .map(|(id, _)| *id);
        match (req.method, call) {
            (Method::Invite, None) if !in_dialog => self.incoming_call(tx),
            (Method::Invite, Some(id)) if in_dialog => self.incoming_reoffer(id, tx),
            (Method::Bye, Some(id)) => {
                reply_async(tx, StatusCode::OK, vec![], None);
                if let Some(c) = self.calls.get(&id)
                    && c.phase != Phase::Ending
                {
                    self.end_call(id, EndReason::RemoteHangup);
                } else {
                    self.calls.remove(&id);
                }
            }
            (Method::Info, Some(id)) => {
                let content_type = req.header_value("Content-Type").unwrap_or_default();
                reply_async(tx, StatusCode::OK, vec![], None);
                self.emit(SipEvent::Info {
                    call: id,
                    content_type,
                    body: req.body.clone(),
                });
            }
            (Method::Message, _) => {
                let account = self.account_for(&req);
                let from = req
                    .from_header()
                    .ok()
                    .and_then(|f| f.uri().ok())
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let content_type = req
                    .header_value("Content-Type")
                    .unwrap_or_else(|| "text/plain".into());
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
            (Method::Notify, Some(id))
                if req
                    .header_value("Event")
                    .is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("refer")) =>
            {
                reply_async(tx, StatusCode::OK, vec![], None);
                if let Some(status) = sipfrag_status(&req.body) {
                    self.emit(SipEvent::TransferProgress { call: id, status });
                }
            }
            (Method::Notify, _) => reply_async(tx, StatusCode::OK, vec![], None),
            (Method::Refer, Some(id)) if in_dialog => {
                match header_values(&req, "Refer-To")
                    .into_iter()
                    .next()
                    .map(|v| strip_angle(&v))
                    .filter(|t| t.starts_with("sip:") || t.starts_with("sips:"))
                {
                    Some(target) => {
                        reply_async(tx, StatusCode::Accepted, vec![], None);
                        self.emit(SipEvent::TransferRequested { call: id, target });
                    }
                    None => reply_async(tx, StatusCode::BadRequest, vec![], None),
                }
            }
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

    fn incoming_call(&mut self, mut tx: Transaction) {
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
        let dialog = Dialog {
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
        };
        let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel();
        self.calls.insert(
            id,
            Call {
                account: account.clone(),
                dialog,
                phase: Phase::Offered,
                server: Some(cmd_tx),
                invite: None,
                invite_pending: false,
                got_provisional: false,
                cancel_sent: false,
                pending_reoffer: None,
                auth_attempts: 0,
            },
        );
        let offer = (!req.body.is_empty()).then(|| req.body.clone());
        self.emit(SipEvent::Incoming {
            call: id,
            account: account.clone(),
            from: remote_uri,
            offer,
        });
        let contact = self
            .accounts
            .get(&account)
            .map(|a| contact_for(&a.account, &a.flow, &self.config.instance))
            .unwrap_or_default();
        let internal = self.internal.clone();
        // RFC 3261 §12.1.1: dialog-creating responses copy the Record-Route of the request.
        let record_route: Vec<Header> = header_values(&req, "Record-Route")
            .into_iter()
            .map(|v| make_header("Record-Route", v))
            .collect();
        tokio::spawn(async move {
            // Our To tag for every response of this transaction.
            if let Ok(to) = tx.original.to_header().cloned()
                && let Ok(typed) = to.typed()
            {
                tx.original.headers.unique_push(
                    typed
                        .with_tag(rsipstack::sip::param::Tag::new(local_tag))
                        .into(),
                );
            }
            let _ = tx.send_trying().await;
            let mut answered = false;
            loop {
                tokio::select! {
                    cmd = cmd_rx.recv() => match cmd {
                        Some(ServerCmd::Ringing) if !answered => {
                            let mut headers = record_route.clone();
                            headers.push(make_header("Contact", contact.clone()));
                            let _ = tx.reply_with(StatusCode::Ringing, headers, None).await;
                        }
                        Some(ServerCmd::Accept(sdp)) if !answered => {
                            answered = true;
                            let mut headers = record_route.clone();
                            headers.extend([
                                make_header("Contact", contact.clone()),
                                make_header("Allow", ALLOW.into()),
                                make_header("Content-Type", "application/sdp".into()),
                            ]);
                            if tx.reply_with(StatusCode::OK, headers, Some(sdp)).await.is_err() {
                                break;
                            }
                        }
                        Some(ServerCmd::Reject(code)) if !answered => {
                            answered = true;
                            let status = StatusCode::from(code);
                            let _ = tx.reply(status).await;
                        }
                        Some(_) => {}
                        None => {
                            if !answered {
                                let _ = tx.reply(StatusCode::RequestTerminated).await;
                            }
                            break;
                        }
                    },
                    msg = tx.receive() => match msg {
                        Some(SipMessage::Request(r)) if r.method == Method::Cancel => {
                            if !answered {
                                answered = true;
                                let _ = tx.reply(StatusCode::RequestTerminated).await;
                                let _ = internal.send(Internal::ServerInvite { call: id, event: ServerInviteEvent::Cancelled });
                            }
                        }
                        Some(SipMessage::Request(r)) if r.method == Method::Ack => {
                            let _ = internal.send(Internal::ServerInvite { call: id, event: ServerInviteEvent::Acked });
                        }
                        Some(_) => {}
                        None => break,
                    },
                }
            }
            let _ = internal.send(Internal::ServerInvite {
                call: id,
                event: ServerInviteEvent::Finished,
            });
        });
    }

    fn incoming_reoffer(&mut self, id: CallId, mut tx: Transaction) {
        let (answer_tx, answer_rx) = oneshot::channel();
        let contact = match self.calls.get_mut(&id) {
            Some(c) if matches!(c.phase, Phase::Established | Phase::Accepted) => {
                c.pending_reoffer = Some(answer_tx);
                self.accounts
                    .get(&c.account)
                    .map(|a| contact_for(&a.account, &a.flow, &self.config.instance))
                    .unwrap_or_default()
            }
            _ => {
                tokio::spawn(async move {
                    let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                });
                return;
            }
        };
        // A re-INVITE may refresh the remote target.
        if let Some(c) = header_values(&tx.original, "Contact").into_iter().next()
            && let Some(call) = self.calls.get_mut(&id)
        {
            call.dialog.remote_target = strip_angle(&c);
        }
        self.emit(SipEvent::RemoteOffer {
            call: id,
            sdp: tx.original.body.clone(),
        });
        tokio::spawn(async move {
            let _ = tx.send_trying().await;
            let answer = tokio::time::timeout(Duration::from_secs(10), answer_rx).await;
            match answer {
                Ok(Ok(Ok(sdp))) => {
                    let headers = vec![
                        make_header("Contact", contact),
                        make_header("Content-Type", "application/sdp".into()),
                    ];
                    let _ = tx.reply_with(StatusCode::OK, headers, Some(sdp)).await;
                }
                Ok(Ok(Err(code))) => {
                    let _ = tx.reply(StatusCode::from(code)).await;
                }
                _ => {
                    let _ = tx.reply(StatusCode::ServerInternalError).await;
                }
            }
            // Absorb the ACK.
            while tx.receive().await.is_some() {}
        });
    }
}

/// Take the dialog's remote tag, target and route set from the 2xx to our INVITE.
fn learn_dialog(d: &mut Dialog, response: &Response, to_tag: Option<String>) {
    d.remote_tag = to_tag;
    if let Some(contact) = header_values(response, "Contact").into_iter().next() {
        d.remote_target = strip_angle(&contact);
    }
    let mut routes: Vec<String> = header_values(response, "Record-Route")
        .into_iter()
        .flat_map(|v| split_header_list(&v))
        .collect();
    routes.reverse();
    d.route_set = routes;
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
        let mut authorization: Option<(String, String)> = None;
        for _attempt in 0..3 {
            let seq = self.cseq.fetch_add(1, Ordering::SeqCst);
            let mut extra = vec![
                ("Contact".to_string(), contact.to_string()),
                ("Expires".to_string(), self.expires.to_string()),
                ("Supported".to_string(), "path, outbound".to_string()),
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
                    };
                }
                Err(e) => {
                    return RegisterOutcome::Transient {
                        status: None,
                        reason: format!("cannot reach the proxy {}: {e}", a.proxy),
                    };
                }
            };
            let status = response.status_code.code();
            let phrase = response.status_code.text();
            match status {
                200..=299 => {
                    let granted = granted_expires(&response, contact).unwrap_or(self.expires);
                    return RegisterOutcome::Accepted { granted };
                }
                401 | 407 => {
                    let Some(creds) = &a.credentials else {
                        return RegisterOutcome::Rejected {
                            status: Some(status),
                            reason: "the registrar asks for a password and none is configured"
                                .into(),
                        };
                    };
                    let (challenge_header, answer_header) = if status == 401 {
                        ("WWW-Authenticate", "Authorization")
                    } else {
                        ("Proxy-Authenticate", "Proxy-Authorization")
                    };
                    let challenges = header_values(&response, challenge_header);
                    let parsed: Vec<digest::Challenge> = challenges
                        .iter()
                        .filter_map(|c| digest::parse_challenges(c).ok())
                        .flatten()
                        .collect();
                    let stale = parsed.iter().any(|c| c.stale);
                    if authorization.is_some() && !stale {
                        return RegisterOutcome::Rejected {
                            status: Some(status),
                            reason: "wrong user name or password (the registrar refused our credentials)".into(),
                        };
                    }
                    let answer = match self.digest.lock() {
                        Ok(mut d) => {
                            authorize(&mut d, &challenges, creds, "REGISTER", &registrar, &[])
                        }
                        Err(_) => Err("internal error: digest state poisoned".into()),
                    };
                    match answer {
                        Ok(v) => authorization = Some((answer_header.to_string(), v)),
                        Err(reason) => {
                            return RegisterOutcome::Rejected {
                                status: Some(status),
                                reason,
                            };
                        }
                    }
                }
                423 => {
                    let min = response
                        .header_value("Min-Expires")
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(self.expires.saturating_mul(2));
                    return RegisterOutcome::IntervalTooBrief { min_expires: min };
                }
                408 | 480 | 500..=599 => {
                    return RegisterOutcome::Transient {
                        status: Some(status),
                        reason: format!("{status} {phrase}"),
                    };
                }
                _ => {
                    return RegisterOutcome::Rejected {
                        status: Some(status),
                        reason: format!("{status} {phrase}"),
                    };
                }
            }
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
        let mut authorization: Option<(String, String)> = None;
        for seq in 1..=3u32 {
            let mut extra = vec![("Content-Type".to_string(), self.content_type.clone())];
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
            if matches!(status, 401 | 407) && authorization.is_none() {
                let Some(creds) = &a.credentials else {
                    return (
                        Some(status),
                        "the proxy wants credentials and this account has none".into(),
                    );
                };
                let (ch, ans) = if status == 401 {
                    ("WWW-Authenticate", "Authorization")
                } else {
                    ("Proxy-Authenticate", "Proxy-Authorization")
                };
                let challenges = header_values(&response, ch);
                let answer = match self.digest.lock() {
                    Ok(mut d) => {
                        authorize(&mut d, &challenges, creds, "MESSAGE", &self.uri, &self.body)
                    }
                    Err(_) => Err("internal error: digest state poisoned".into()),
                };
                match answer {
                    Ok(v) => authorization = Some((ans.to_string(), v)),
                    Err(reason) => return (Some(status), reason),
                }
                continue;
            }
            return (Some(status), response.status_code.text().to_string());
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
/// and reg-id.
fn contact_for(account: &Account, local: &SipAddr, instance: &str) -> String {
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

/// The status code of a `message/sipfrag` body (`SIP/2.0 200 OK`).
fn sipfrag_status(body: &[u8]) -> Option<u16> {
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
    fn sipfrag_bodies() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 abc"), None);
        assert_eq!(sipfrag_status(b"\xff\xfe"), None);
        assert_eq!(sipfrag_status(b""), None);
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
