//! KRYPTON's SIP user agent, on rsipstack's transports and transactions, with digest and
//! KRYPTON Bearer ([`bearer`], RFC 8898) authentication.

pub mod account;
pub mod bearer;
pub mod call;
pub mod digest;
pub mod invite;
mod message;
pub mod registration;
mod tls;
pub mod ua;

pub use account::{Account, AccountError, Aor, ProxyAddr, TransportKind};
pub use bearer::{BearerChallenge, BearerSigner};
pub use call::{CallId, EndReason, SipEvent};
pub use registration::RegistrationPolicy;
pub use ua::{UaConfig, UaError, UserAgent};
