//! When to (re-)REGISTER: the registration policy of one account as a sans-IO state machine.
//!
//! The driver ([`crate::ua`]) runs the REGISTER transactions (including the digest or Bearer
//! retry that [`crate::bearer::AuthRetry`] decides, and the one fresh try after a `403 stale
//! proof`) and reports each outcome here; this machine answers with what to do next and when. It owns no
//! clock: every input carries `now`, and [`Registration::poll_timeout`] says when to call
//! [`Registration::handle_timeout`]. That keeps the timing rules — refresh before expiry,
//! back off after failures, notice a dead proxy through keep-alives — testable in virtual time.

use std::time::{Duration, Instant};

/// Tunables of the registration policy.
#[derive(Debug, Clone)]
pub struct RegistrationPolicy {
    /// Expiry asked for in each REGISTER (the registrar may grant less).
    pub expires: u32,
    /// First retry delay after a failure; doubles per consecutive failure.
    pub backoff_initial: Duration,
    /// Longest retry delay ("seconds, not minutes").
    pub backoff_max: Duration,
    /// Interval of the keep-alive probe (an OPTIONS to the outbound proxy) while registered;
    /// `None` disables probing.
    ///
    /// The probe is an OPTIONS on every transport. On UDP RFC 5626 §4.4.2 would use STUN; on
    /// TCP/TLS it would use a double-CRLF ping answered by a CRLF pong (§4.4.1). rsipstack
    /// 0.7.14 can write the ping (`StreamConnection::send_raw`), but its stream reader
    /// (`transport/stream.rs` `serve_loop`, `SipCodecType::KeepaliveResponse => {}`; the same
    /// in `tls_platform.rs`) drops the pong without any event, and `TransportEvent` has no
    /// variant for it, so a missing pong cannot be told from a received one. A ping that
    /// cannot fail would hide a dead flow, so stream flows keep the OPTIONS probe, which
    /// needs a SIP answer on the same connection.
    pub keepalive: Option<Duration>,
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        RegistrationPolicy {
            expires: 600,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            keepalive: Some(Duration::from_secs(15)),
        }
    }
}

/// How one REGISTER transaction (after any digest retry) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// 2xx; `granted` is the expiry the registrar gave our contact (seconds).
    Accepted {
        /// Seconds until the binding expires.
        granted: u32,
    },
    /// 423 Interval Too Brief: ask again with at least `min_expires`.
    IntervalTooBrief {
        /// The registrar's Min-Expires.
        min_expires: u32,
    },
    /// A failure that retrying soon will not fix: a final response (401/403/404 …), or a
    /// proxy we must not talk to (its TLS certificate is not trusted).
    Rejected {
        /// SIP status code, if a response came back.
        status: Option<u16>,
        /// Reason phrase or our explanation.
        reason: String,
    },
    /// A failure that may clear by itself: 408, 5xx, 6xx-less transient codes, no answer,
    /// transport errors.
    Transient {
        /// SIP status code, if any response came back.
        status: Option<u16>,
        /// What happened.
        reason: String,
        /// The response's `Retry-After` (a 503 from a provider whose service is down): wait at
        /// least this long, up to the policy's longest backoff.
        retry_after: Option<Duration>,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationAction {
    /// Send a REGISTER asking for `expires` seconds (0 = remove the binding).
    SendRegister {
        /// The Expires value to send.
        expires: u32,
    },
    /// Send a keep-alive probe to the outbound proxy.
    SendKeepAlive,
    /// Tell the user: registered until `expires` seconds from now.
    Registered {
        /// Granted expiry in seconds.
        expires: u32,
    },
    /// Tell the user: registration failed; `retry_in` says when we try again (none after a
    /// rejection that retrying will not fix).
    Failed {
        /// SIP status code, if any.
        status: Option<u16>,
        /// What happened, for the user.
        reason: String,
        /// Next attempt, if one is scheduled.
        retry_in: Option<Duration>,
    },
    /// The binding was removed (after [`Registration::stop`]).
    Unregistered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// A REGISTER (expires > 0) is in flight.
    Registering,
    Registered,
    /// Waiting to retry after a failure.
    Waiting,
    /// An un-REGISTER is in flight.
    Unregistering,
    /// Stopped, or rejected for good.
    Stopped,
}

/// Registration policy state of one account.
#[derive(Debug)]
pub struct Registration {
    policy: RegistrationPolicy,
    state: State,
    expires: u32,
    failures: u32,
    /// Next refresh / retry.
    next_register: Option<Instant>,
    next_keepalive: Option<Instant>,
    keepalive_in_flight: bool,
    actions: Vec<RegistrationAction>,
}

impl Registration {
    /// A registration that does nothing until [`Registration::start`].
    pub fn new(policy: RegistrationPolicy) -> Self {
        let expires = policy.expires;
        Registration {
            policy,
            state: State::Idle,
            expires,
            failures: 0,
            next_register: None,
            next_keepalive: None,
            keepalive_in_flight: false,
            actions: Vec::new(),
        }
    }

    /// Begin registering now.
    pub fn start(&mut self, _now: Instant) {
        self.state = State::Registering;
        self.next_register = None;
        self.next_keepalive = None;
        self.actions.push(RegistrationAction::SendRegister {
            expires: self.expires,
        });
    }

    /// Remove the binding (on exit or when the account is removed).
    pub fn stop(&mut self, _now: Instant) {
        let was_bound = matches!(self.state, State::Registered | State::Registering);
        self.next_register = None;
        self.next_keepalive = None;
        if was_bound {
            self.state = State::Unregistering;
            self.actions
                .push(RegistrationAction::SendRegister { expires: 0 });
        } else {
            self.state = State::Stopped;
            self.actions.push(RegistrationAction::Unregistered);
        }
    }

    /// True while the registrar holds our binding.
    pub fn is_registered(&self) -> bool {
        self.state == State::Registered
    }

    /// Report how the last REGISTER ended.
    pub fn handle_outcome(&mut self, now: Instant, outcome: RegisterOutcome) {
        if self.state == State::Unregistering {
            self.state = State::Stopped;
            self.actions.push(RegistrationAction::Unregistered);
            return;
        }
        if self.state != State::Registering {
            return; // a late answer for something we no longer wait for
        }
        match outcome {
            RegisterOutcome::Accepted { granted } => {
                let granted = granted.max(1);
                self.failures = 0;
                self.state = State::Registered;
                self.next_register = Some(now + refresh_after(granted));
                self.next_keepalive = self.policy.keepalive.map(|k| now + k);
                self.keepalive_in_flight = false;
                self.actions
                    .push(RegistrationAction::Registered { expires: granted });
            }
            RegisterOutcome::IntervalTooBrief { min_expires } if min_expires > self.expires => {
                self.expires = min_expires;
                self.actions.push(RegistrationAction::SendRegister {
                    expires: self.expires,
                });
            }
            RegisterOutcome::IntervalTooBrief { min_expires } => {
                self.fail(
                    now,
                    Some(423),
                    format!("registrar wants Min-Expires {min_expires}"),
                    None,
                );
            }
            RegisterOutcome::Rejected { status, reason } => {
                self.state = State::Stopped;
                self.next_register = None;
                self.next_keepalive = None;
                self.actions.push(RegistrationAction::Failed {
                    status,
                    reason,
                    retry_in: None,
                });
            }
            RegisterOutcome::Transient {
                status,
                reason,
                retry_after,
            } => self.fail(now, status, reason, retry_after),
        }
    }

    /// Report the result of a keep-alive probe: `alive` = any response came back.
    pub fn handle_keepalive(&mut self, now: Instant, alive: bool) {
        self.keepalive_in_flight = false;
        if self.state != State::Registered {
            return;
        }
        if alive {
            self.next_keepalive = self.policy.keepalive.map(|k| now + k);
        } else {
            // The flow is dead (proxy restarted or network gone): register again right away;
            // if that fails too, the normal backoff takes over.
            self.state = State::Registering;
            self.next_keepalive = None;
            self.next_register = None;
            self.actions.push(RegistrationAction::Failed {
                status: None,
                reason: "the proxy stopped answering; registering again".into(),
                retry_in: Some(Duration::ZERO),
            });
            self.actions.push(RegistrationAction::SendRegister {
                expires: self.expires,
            });
        }
    }

    /// The transport under the registration broke (TCP/TLS/WS connection closed): register
    /// again at once.
    pub fn handle_flow_failure(&mut self, now: Instant) {
        self.handle_keepalive(now, false);
    }

    /// Run due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(at) = self.next_register
            && now >= at
        {
            self.next_register = None;
            if matches!(self.state, State::Registered | State::Waiting) {
                self.state = State::Registering;
                self.next_keepalive = None;
                self.actions.push(RegistrationAction::SendRegister {
                    expires: self.expires,
                });
            }
        }
        if let Some(at) = self.next_keepalive
            && now >= at
            && self.state == State::Registered
            && !self.keepalive_in_flight
        {
            self.keepalive_in_flight = true;
            self.next_keepalive = None;
            self.actions.push(RegistrationAction::SendKeepAlive);
        }
    }

    /// When [`Registration::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_register, self.next_keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<RegistrationAction> {
        if self.actions.is_empty() {
            None
        } else {
            Some(self.actions.remove(0))
        }
    }

    fn fail(
        &mut self,
        now: Instant,
        status: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
    ) {
        let mut delay = backoff(&self.policy, self.failures);
        if let Some(asked) = retry_after {
            delay = delay.max(asked.min(self.policy.backoff_max));
        }
        self.failures = self.failures.saturating_add(1);
        self.state = State::Waiting;
        self.next_keepalive = None;
        self.next_register = Some(now + delay);
        self.actions.push(RegistrationAction::Failed {
            status,
            reason,
            retry_in: Some(delay),
        });
    }
}

/// Refresh a binding of `granted` seconds this long after it was granted: a margin of a fifth
/// of the lifetime, at most 30 s, so that a slow or lost refresh still lands in time.
fn refresh_after(granted: u32) -> Duration {
    let margin = (granted / 5).clamp(1, 30);
    Duration::from_secs(u64::from(granted.saturating_sub(margin).max(1)))
}

fn backoff(policy: &RegistrationPolicy, failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
    policy
        .backoff_initial
        .saturating_mul(factor)
        .min(policy.backoff_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(r: &mut Registration) -> Vec<RegistrationAction> {
        std::iter::from_fn(|| r.poll_action()).collect()
    }

    fn policy() -> RegistrationPolicy {
        RegistrationPolicy {
            expires: 300,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
            keepalive: Some(Duration::from_secs(10)),
        }
    }

    #[test]
    fn refreshes_before_the_binding_expires() {
        let t0 = Instant::now();
        let mut r = Registration::new(policy());
        r.start(t0);
        assert_eq!(
            drain(&mut r),
            [RegistrationAction::SendRegister { expires: 300 }]
        );
        r.handle_outcome(t0, RegisterOutcome::Accepted { granted: 120 });
        assert_eq!(
            drain(&mut r),
            [RegistrationAction::Registered { expires: 120 }]
        );
        assert!(r.is_registered());
        // Keep-alives every 10 s, each answered.
        let now = loop {
            let now = r.poll_timeout().expect("a timer");
            r.handle_timeout(now);
            match drain(&mut r).as_slice() {
                [RegistrationAction::SendKeepAlive] => r.handle_keepalive(now, true),
                [RegistrationAction::SendRegister { expires: 300 }] => break now,
                other => panic!("unexpected {other:?}"),
            }
        };
        // 120 s granted → refresh after 96 s (margin 24 s), before expiry.
        assert_eq!(now - t0, Duration::from_secs(96));
    }

    #[test]
    fn transient_failures_back_off_and_recover() {
        let t0 = Instant::now();
        let mut r = Registration::new(policy());
        r.start(t0);
        drain(&mut r);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..5 {
            r.handle_outcome(
                now,
                RegisterOutcome::Transient {
                    status: Some(503),
                    reason: "down".into(),
                    retry_after: None,
                },
            );
            match drain(&mut r).as_slice() {
                [
                    RegistrationAction::Failed {
                        retry_in: Some(d),
                        status: Some(503),
                        ..
                    },
                ] => delays.push(*d),
                other => panic!("unexpected {other:?}"),
            }
            now = r.poll_timeout().expect("retry timer");
            r.handle_timeout(now);
            assert_eq!(
                drain(&mut r),
                [RegistrationAction::SendRegister { expires: 300 }]
            );
        }
        let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 8]);
        r.handle_outcome(now, RegisterOutcome::Accepted { granted: 300 });
        assert_eq!(
            drain(&mut r),
            [RegistrationAction::Registered { expires: 300 }]
        );
        // The failure count was reset: the next failure waits 1 s again.
        now = r.poll_timeout().unwrap();
        r.handle_timeout(now);
        assert_eq!(drain(&mut r), [RegistrationAction::SendKeepAlive]);
        r.handle_keepalive(now, false);
        let actions = drain(&mut r);
        assert!(matches!(
            actions.last(),
            Some(RegistrationAction::SendRegister { .. })
        ));
        r.handle_outcome(
            now,
            RegisterOutcome::Transient {
                status: None,
                reason: "x".into(),
                retry_after: None,
            },
        );
        assert!(matches!(
            drain(&mut r).as_slice(),
            [RegistrationAction::Failed { retry_in: Some(d), .. }] if *d == Duration::from_secs(1)
        ));
    }

    #[test]
    fn a_dead_proxy_is_noticed_by_the_keepalive() {
        let t0 = Instant::now();
        let mut r = Registration::new(policy());
        r.start(t0);
        drain(&mut r);
        r.handle_outcome(t0, RegisterOutcome::Accepted { granted: 3600 });
        drain(&mut r);
        let at = r.poll_timeout().unwrap();
        assert_eq!(at - t0, Duration::from_secs(10));
        r.handle_timeout(at);
        assert_eq!(drain(&mut r), [RegistrationAction::SendKeepAlive]);
        // No second probe while one is in flight.
        r.handle_timeout(at + Duration::from_secs(20));
        assert!(drain(&mut r).is_empty());
        r.handle_keepalive(at + Duration::from_secs(32), false);
        let actions = drain(&mut r);
        assert!(!r.is_registered());
        assert_eq!(
            actions.last(),
            Some(&RegistrationAction::SendRegister { expires: 300 })
        );
    }

    #[test]
    fn rejection_stops_and_interval_too_brief_asks_again() {
        let t0 = Instant::now();
        let mut r = Registration::new(policy());
        r.start(t0);
        drain(&mut r);
        r.handle_outcome(t0, RegisterOutcome::IntervalTooBrief { min_expires: 900 });
        assert_eq!(
            drain(&mut r),
            [RegistrationAction::SendRegister { expires: 900 }]
        );
        r.handle_outcome(
            t0,
            RegisterOutcome::Rejected {
                status: Some(403),
                reason: "Forbidden".into(),
            },
        );
        assert_eq!(
            drain(&mut r),
            [RegistrationAction::Failed {
                status: Some(403),
                reason: "Forbidden".into(),
                retry_in: None
            }]
        );
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn stop_unregisters_a_bound_account() {
        let t0 = Instant::now();
        let mut r = Registration::new(policy());
        r.start(t0);
        drain(&mut r);
        r.handle_outcome(t0, RegisterOutcome::Accepted { granted: 60 });
        drain(&mut r);
        r.stop(t0);
        assert_eq!(
            drain(&mut r),
            [RegistrationAction::SendRegister { expires: 0 }]
        );
        r.handle_outcome(t0, RegisterOutcome::Accepted { granted: 0 });
        assert_eq!(drain(&mut r), [RegistrationAction::Unregistered]);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn a_503_with_retry_after_waits_that_long_within_the_cap() {
        let t0 = Instant::now();
        let mut r = Registration::new(policy());
        r.start(t0);
        drain(&mut r);
        let mut now = t0;
        let mut delays = Vec::new();
        // Retry-After 5 s, then 1 s (below the backoff), then 120 s (above the 8 s cap).
        for asked in [5, 1, 120] {
            r.handle_outcome(
                now,
                RegisterOutcome::Transient {
                    status: Some(503),
                    reason: "provider service unavailable".into(),
                    retry_after: Some(Duration::from_secs(asked)),
                },
            );
            match drain(&mut r).as_slice() {
                [
                    RegistrationAction::Failed {
                        status: Some(503),
                        retry_in: Some(d),
                        reason,
                    },
                ] if reason == "provider service unavailable" => delays.push(d.as_secs()),
                other => panic!("unexpected {other:?}"),
            }
            now = r.poll_timeout().expect("retry timer");
            r.handle_timeout(now);
            assert_eq!(
                drain(&mut r),
                [RegistrationAction::SendRegister { expires: 300 }]
            );
        }
        assert_eq!(delays, [5, 2, 8]);
        // The service is back: registered, and a later failure starts from 1 s again.
        r.handle_outcome(now, RegisterOutcome::Accepted { granted: 60 });
        assert_eq!(
            drain(&mut r),
            [RegistrationAction::Registered { expires: 60 }]
        );
        assert!(r.is_registered());
    }

    #[test]
    fn refresh_margin() {
        assert_eq!(refresh_after(600), Duration::from_secs(570));
        assert_eq!(refresh_after(60), Duration::from_secs(48));
        assert_eq!(refresh_after(2), Duration::from_secs(1));
        assert_eq!(refresh_after(1), Duration::from_secs(1));
    }
}
