//! KRYPTON's SIP user agent, on rsipstack's transports and transactions.

pub mod account;
pub mod call;
pub mod digest;
pub mod invite;
mod message;
pub mod registration;
mod tls;
pub mod ua;

pub use account::{Account, AccountError, Aor, ProxyAddr, TransportKind};
pub use call::{CallId, EndReason, SipEvent};
pub use registration::RegistrationPolicy;
pub use ua::{UaConfig, UaError, UserAgent};
