//! Real peers for KRYPTON's integration tests, each on loopback ports chosen at run time and
//! stopped when dropped: [`Kamailio`] (registrar + proxy), a private PulseAudio server
//! ([`pulse::PulseServer`]), and the helpers the tests share
//! (free ports, waiting for a process to answer).
//!
//! Nothing here is mocked: these are the Debian programs a user's provider and peers run.

mod audio;
mod baresip;
mod kamailio;
mod linphone;
mod phone;
mod process;
pub mod pulse;
mod tls;

pub use audio::{PesqMode, PesqScore, SPEECH_TEXT, SpeechSet, pesq, pesq_python, speech_wav};
pub use baresip::{Baresip, BaresipConfig};
pub use kamailio::{DigestAlgorithm, Kamailio, KamailioConfig, KamailioTls};
pub use linphone::{Linphone, LinphoneConfig};
pub use phone::KryptonPhone;
pub use process::{Child, free_port, free_udp_port_pair, test_dir};
pub use tls::TestCa;

/// Errors while starting a peer.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A program is not installed.
    #[error("{0} is not installed; run scripts/setup")]
    Missing(&'static str),
    /// The program did not come up in time.
    #[error("{what} did not start within {secs} s; its log:\n{log}")]
    NotReady {
        /// What.
        what: String,
        /// Timeout.
        secs: u64,
        /// Tail of its log.
        log: String,
    },
    /// File system or process error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
