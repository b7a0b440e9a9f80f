//! KRYPTON provider kit: the provider service that admits exactly the users the chain says are this
//! provider's (provider/AUTH.md), and the Kamailio it runs in front of.
//!
//! - [`registry`]: the sans-IO cache of the contract (providers, users, device keys).
//! - [`check`]: sans-IO admission decisions (Bearer tokens, credentials for standard clients).
//! - [`peer`]: sans-IO routing to other providers and the PSTN trunk, and admission of other
//!   providers' requests (AUTH.md §6).
//! - [`follow`]: keeps the cache in step with the chain (snapshot, then block by block).
//! - [`service`]: the HTTP API for Kamailio's KEMI script, health and metrics.
//! - [`kamailio`]: renders the Kamailio configuration and runs it.

pub mod check;
pub mod follow;
pub mod kamailio;
pub mod peer;
pub mod registry;
pub mod service;

pub use check::{Checker, Credentials, Rejection};
pub use peer::{Peering, Route};
pub use registry::Registry;
pub use service::{ServiceConfig, ServiceError, run};
