//! KRYPTON's media plane: everything between a microphone and an RTP socket.
//!
//! The protocol and signal pieces are sans-IO (they take bytes, samples and an `Instant` and
//! return bytes, samples and deadlines); [`engine`] is the thin tokio driver that owns the
//! sockets and the 20 ms clock.

pub mod codec;
pub mod device;
pub mod dtmf;
pub mod engine;
pub mod jitter;
pub mod plc;
pub mod rtp;
pub mod sdp;
pub mod srtp;
pub mod wav;

#[cfg(test)]
mod test_rng;
