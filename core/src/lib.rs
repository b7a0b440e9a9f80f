//! KRYPTON's phone core: one API (commands in, events out) that the desktop app and the
//! headless `krypton phone` both drive.

pub mod audio;
pub mod config;
pub mod dialplan;
pub mod logging;
pub mod phone;
pub mod store;
pub mod wallet_account;
pub mod wallet_auth;

pub use config::{AccountConfig, AudioConfig, ConfigError, DeviceChoice, PhoneConfig, SrtpSetting};
pub use phone::{CallSummary, Phone, PhoneCommand, PhoneError, PhoneEvent};
pub use wallet_auth::WalletSigner;
