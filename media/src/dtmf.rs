//! RFC 4733 telephone events (DTMF digits in RTP), sans-IO.
//!
//! [`DtmfEvent`] is the 4-byte payload. [`DtmfSender`] turns queued digits into the packet
//! sequence of RFC 4733 §2.5.1: a first packet with the marker bit, updates every packet
//! interval with a growing duration, then the end packet three times, all with the timestamp
//! of the event's start. [`DtmfReceiver`] turns received event packets into exactly one digit
//! per event, however many updates, retransmitted ends or lost packets there were.
//!
//! Durations are in units of the negotiated telephone-event clock (8000 Hz unless the SDP
//! said otherwise), which should be the audio codec's RTP clock for the timestamps to agree.

use std::collections::VecDeque;
use std::time::Duration;

use tracing::debug;

/// Errors of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// A telephone-event payload is shorter than 4 bytes.
    #[error("telephone-event payload of {0} bytes is too short")]
    Truncated(usize),
    /// The event code is valid RFC 4733 but not a DTMF digit (e.g. 16, flash).
    #[error("telephone event {0} is not a DTMF digit")]
    UnsupportedEvent(u8),
    /// The character is not one of `0-9 * # A-D`.
    #[error("{0:?} is not a DTMF digit")]
    InvalidDigit(char),
}

/// The RFC 4733 event code of a DTMF digit: `0-9` → 0–9, `*` → 10, `#` → 11, `A-D` → 12–15
/// (lower-case `a-d` accepted).
pub fn event_code(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// The DTMF digit of an RFC 4733 event code (upper-case `A-D`), `None` above 15.
pub fn digit_of(code: u8) -> Option<char> {
    match code {
        0..=9 => Some((b'0' + code) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + code - 12) as char),
        _ => None,
    }
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// The digit, one of `0-9 * # A-D`.
    pub digit: char,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in −dBm0, 0–63 (larger is quieter); encoded values are capped at 63.
    pub volume: u8,
    /// Duration so far, in telephone-event clock units.
    pub duration: u16,
}

impl DtmfEvent {
    /// The 4-byte payload. Fails only for a `digit` that is not a DTMF digit.
    pub fn encode(&self) -> Result<[u8; 4], DtmfError> {
        let code = event_code(self.digit).ok_or(DtmfError::InvalidDigit(self.digit))?;
        let flags = if self.end { 0x80 } else { 0 } | self.volume.min(63);
        let [hi, lo] = self.duration.to_be_bytes();
        Ok([code, flags, hi, lo])
    }

    /// Parses a payload. Bytes past the first four are ignored; the reserved R bit too.
    pub fn decode(payload: &[u8]) -> Result<Self, DtmfError> {
        let &[code, flags, hi, lo, ..] = payload else {
            return Err(DtmfError::Truncated(payload.len()));
        };
        let digit = digit_of(code).ok_or(DtmfError::UnsupportedEvent(code))?;
        Ok(DtmfEvent {
            digit,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([hi, lo]),
        })
    }
}

/// One packet produced by [`DtmfSender::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The telephone-event payload.
    pub payload: [u8; 4],
    /// Set on the first packet of an event (RTP marker bit).
    pub marker: bool,
    /// The RTP timestamp to send it with: the event's start, the same for all its packets.
    pub timestamp: u32,
}

/// How many times the end packet is sent (RFC 4733 §2.5.1.4 recommends three).
pub const END_PACKETS: u8 = 3;
/// Packet intervals of silence between two queued digits.
pub const GAP_PACKETS: u8 = 2;
/// The shortest event we send.
pub const MIN_DURATION: Duration = Duration::from_millis(40);
/// Default volume: −10 dBm0.
pub const DEFAULT_VOLUME: u8 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendState {
    Idle {
        gap: u8,
    },
    Tone {
        code: u8,
        timestamp: u32,
        duration: u32,
        total: u32,
    },
    Ending {
        code: u8,
        timestamp: u32,
        duration: u16,
        left: u8,
    },
}

/// Sends queued digits as RFC 4733 packets. Call [`poll`](Self::poll) once per packet interval
/// (normally instead of producing an audio packet while [`is_active`](Self::is_active)).
#[derive(Debug, Clone)]
pub struct DtmfSender {
    packet_samples: u32,
    clock_rate: u32,
    volume: u8,
    queue: VecDeque<(u8, u32)>,
    state: SendState,
}

impl DtmfSender {
    /// A sender for events at `clock_rate` Hz, polled every `packet_interval` (e.g. 20 ms).
    pub fn new(clock_rate: u32, packet_interval: Duration) -> Self {
        let clock_rate = clock_rate.max(1000);
        Self {
            packet_samples: samples(clock_rate, packet_interval).max(1),
            clock_rate,
            volume: DEFAULT_VOLUME,
            queue: VecDeque::new(),
            state: SendState::Idle { gap: 0 },
        }
    }

    /// Sets the volume (−dBm0, capped at 63) of the events sent from now on.
    pub fn set_volume(&mut self, volume: u8) {
        self.volume = volume.min(63);
    }

    /// Queues a digit lasting `duration` (at least 40 ms, at most what 16 bits of clock units
    /// hold: about 8 s at 8 kHz).
    pub fn start(&mut self, digit: char, duration: Duration) -> Result<(), DtmfError> {
        let code = event_code(digit).ok_or(DtmfError::InvalidDigit(digit))?;
        let total = samples(self.clock_rate, duration.max(MIN_DURATION)).min(u16::MAX as u32);
        debug!(%digit, total, "DTMF queued");
        self.queue.push_back((code, total));
        Ok(())
    }

    /// Whether an event is being sent or waiting (audio should pause meanwhile).
    pub fn is_active(&self) -> bool {
        !self.queue.is_empty() || !matches!(self.state, SendState::Idle { .. })
    }

    /// The packet for this interval, if any. `timestamp` is the RTP timestamp an audio packet
    /// would carry now; the first packet of an event latches it for the whole event.
    pub fn poll(&mut self, timestamp: u32) -> Option<DtmfPacket> {
        let (state, packet) = match self.state {
            SendState::Idle { gap } if gap > 0 => (SendState::Idle { gap: gap - 1 }, None),
            SendState::Idle { .. } => {
                let (code, total) = self.queue.pop_front()?;
                self.step(code, timestamp, 0, total, true)
            }
            SendState::Tone {
                code,
                timestamp,
                duration,
                total,
            } => self.step(code, timestamp, duration, total, false),
            SendState::Ending {
                code,
                timestamp,
                duration,
                left,
            } => {
                let next = if left > 1 {
                    SendState::Ending {
                        code,
                        timestamp,
                        duration,
                        left: left - 1,
                    }
                } else {
                    SendState::Idle { gap: GAP_PACKETS }
                };
                (
                    next,
                    Some(self.packet(code, timestamp, duration, true, false)),
                )
            }
        };
        self.state = state;
        packet
    }

    fn step(
        &self,
        code: u8,
        timestamp: u32,
        duration: u32,
        total: u32,
        first: bool,
    ) -> (SendState, Option<DtmfPacket>) {
        let duration = duration.saturating_add(self.packet_samples);
        if duration >= total {
            let d = total.min(u16::MAX as u32) as u16;
            let next = SendState::Ending {
                code,
                timestamp,
                duration: d,
                left: END_PACKETS - 1,
            };
            (next, Some(self.packet(code, timestamp, d, true, first)))
        } else {
            let next = SendState::Tone {
                code,
                timestamp,
                duration,
                total,
            };
            let d = duration.min(u16::MAX as u32) as u16;
            (next, Some(self.packet(code, timestamp, d, false, first)))
        }
    }

    fn packet(
        &self,
        code: u8,
        timestamp: u32,
        duration: u16,
        end: bool,
        marker: bool,
    ) -> DtmfPacket {
        let flags = if end { 0x80 } else { 0 } | self.volume;
        let [hi, lo] = duration.to_be_bytes();
        DtmfPacket {
            payload: [code, flags, hi, lo],
            marker,
            timestamp,
        }
    }
}

fn samples(clock_rate: u32, d: Duration) -> u32 {
    let s = d.as_micros().saturating_mul(clock_rate as u128) / 1_000_000;
    s.min(u32::MAX as u128) as u32
}

/// How far back (in clock units) a timestamp counts as a late packet of an older event rather
/// than a new event: 2^20, about 130 s at 8 kHz and 22 s at 48 kHz.
const LATE_WINDOW: u32 = 1 << 20;
/// How many past event timestamps are remembered for de-duplication.
const RECENT_EVENTS: usize = 8;

/// Turns received telephone-event packets into one digit per event.
///
/// An event is identified by its RTP timestamp: the first packet seen with a new timestamp
/// yields the digit (so an event whose start packets were lost is still reported, and one
/// whose end packets were lost is closed by the next timestamp); every further packet with
/// that timestamp (updates, the repeated end packets, duplicates) and late packets of earlier
/// events yield nothing.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    current: Option<u32>,
    recent: VecDeque<u32>,
}

impl DtmfReceiver {
    /// A receiver that has seen no event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets past events, e.g. when the sender's SSRC changes.
    pub fn reset(&mut self) {
        self.current = None;
        self.recent.clear();
    }

    /// Handles one packet's `payload` with its RTP `timestamp`; returns the digit when the
    /// packet starts a new event.
    pub fn handle(&mut self, timestamp: u32, payload: &[u8]) -> Result<Option<char>, DtmfError> {
        let event = DtmfEvent::decode(payload)?;
        if let Some(current) = self.current {
            if current == timestamp || self.recent.contains(&timestamp) {
                return Ok(None);
            }
            let behind = current.wrapping_sub(timestamp);
            if behind != 0 && behind < LATE_WINDOW {
                debug!(timestamp, current, "late packet of an earlier DTMF event");
                return Ok(None);
            }
            if self.recent.len() == RECENT_EVENTS {
                self.recent.pop_front();
            }
            self.recent.push_back(current);
        }
        self.current = Some(timestamp);
        debug!(digit = %event.digit, timestamp, "DTMF received");
        Ok(Some(event.digit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_codes_round_trip() {
        let digits = "0123456789*#ABCD";
        for (code, digit) in digits.chars().enumerate() {
            assert_eq!(event_code(digit), Some(code as u8));
            assert_eq!(digit_of(code as u8), Some(digit));
        }
        assert_eq!(event_code('b'), Some(13));
        assert_eq!(event_code('E'), None);
        assert_eq!(event_code('x'), None);
        assert_eq!(digit_of(16), None);
    }

    #[test]
    fn event_wire_format() {
        let e = DtmfEvent {
            digit: '5',
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(e.encode().unwrap(), [5, 0x8a, 0x03, 0x20]);
        assert_eq!(DtmfEvent::decode(&[5, 0x8a, 0x03, 0x20]).unwrap(), e);
        // R bit ignored, trailing bytes ignored, volume capped.
        let d = DtmfEvent::decode(&[11, 0x40 | 7, 0, 160, 0xff]).unwrap();
        assert_eq!((d.digit, d.end, d.volume, d.duration), ('#', false, 7, 160));
        let loud = DtmfEvent { volume: 200, ..e };
        assert_eq!(loud.encode().unwrap()[1], 0x80 | 63);
        assert_eq!(DtmfEvent::decode(&[1, 2, 3]), Err(DtmfError::Truncated(3)));
        assert_eq!(
            DtmfEvent::decode(&[16, 0, 0, 0]),
            Err(DtmfError::UnsupportedEvent(16))
        );
        let bad = DtmfEvent { digit: 'x', ..e };
        assert_eq!(bad.encode(), Err(DtmfError::InvalidDigit('x')));
    }

    /// Runs the sender for `polls` intervals of 160 samples from timestamp 1000.
    fn run(sender: &mut DtmfSender, polls: usize) -> Vec<DtmfPacket> {
        (0..polls)
            .filter_map(|i| sender.poll(1000 + 160 * i as u32))
            .collect()
    }

    #[test]
    fn sender_packet_sequence() {
        let mut s = DtmfSender::new(8000, Duration::from_millis(20));
        assert!(!s.is_active());
        assert_eq!(
            s.start('x', Duration::from_millis(100)),
            Err(DtmfError::InvalidDigit('x'))
        );
        s.start('7', Duration::from_millis(100)).unwrap();
        assert!(s.is_active());
        let packets = run(&mut s, 10);
        let got: Vec<(bool, bool, u16, u32)> = packets
            .iter()
            .map(|p| {
                let e = DtmfEvent::decode(&p.payload).unwrap();
                assert_eq!(e.digit, '7');
                (p.marker, e.end, e.duration, p.timestamp)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (true, false, 160, 1000),
                (false, false, 320, 1000),
                (false, false, 480, 1000),
                (false, false, 640, 1000),
                (false, true, 800, 1000),
                (false, true, 800, 1000),
                (false, true, 800, 1000),
            ]
        );
        assert!(!s.is_active());
        assert_eq!(s.poll(5000), None);
    }

    #[test]
    fn queued_digits_get_a_gap_and_new_timestamps() {
        let mut s = DtmfSender::new(8000, Duration::from_millis(20));
        s.start('1', Duration::from_millis(40)).unwrap();
        s.start('2', Duration::from_millis(10)).unwrap(); // raised to 40 ms
        let polls: Vec<Option<DtmfPacket>> = (0..12).map(|i| s.poll(160 * i)).collect();
        let shape: String = polls
            .iter()
            .map(|p| match p {
                None => '.',
                Some(p) if p.marker => 'M',
                Some(p) if p.payload[1] & 0x80 != 0 => 'E',
                Some(_) => 'u',
            })
            .collect();
        assert_eq!(shape, "MEEE..MEEE..");
        let ts: Vec<u32> = polls.iter().flatten().map(|p| p.timestamp).collect();
        assert_eq!(ts, vec![0, 0, 0, 0, 960, 960, 960, 960]);
        assert!(!s.is_active());
    }

    #[test]
    fn long_events_are_capped_at_16_bits() {
        let mut s = DtmfSender::new(48000, Duration::from_millis(20));
        s.start('9', Duration::from_secs(10)).unwrap();
        let last = run(&mut s, 100).last().copied().unwrap();
        let e = DtmfEvent::decode(&last.payload).unwrap();
        assert!(e.end);
        assert_eq!(e.duration, u16::MAX);
    }

    fn send_digits(digits: &str) -> Vec<DtmfPacket> {
        let mut s = DtmfSender::new(8000, Duration::from_millis(20));
        for d in digits.chars() {
            s.start(d, Duration::from_millis(100)).unwrap();
        }
        let packets = run(&mut s, 200);
        assert!(!s.is_active());
        packets
    }

    fn receive<'a>(packets: impl IntoIterator<Item = &'a DtmfPacket>) -> String {
        let mut r = DtmfReceiver::new();
        packets
            .into_iter()
            .filter_map(|p| r.handle(p.timestamp, &p.payload).unwrap())
            .collect()
    }

    #[test]
    fn round_trip_yields_each_digit_once() {
        let packets = send_digits("123#");
        assert_eq!(packets.len(), 4 * 7);
        assert_eq!(receive(&packets), "123#");
        // The same digit twice is two events.
        assert_eq!(receive(&send_digits("1155")), "1155");
    }

    #[test]
    fn lost_ends_lost_starts_and_duplicates() {
        let packets = send_digits("123#");
        let is_end = |p: &&DtmfPacket| p.payload[1] & 0x80 != 0;
        // All end packets lost: each new timestamp closes the previous event.
        assert_eq!(receive(packets.iter().filter(|p| !is_end(p))), "123#");
        // Only end packets arrive.
        assert_eq!(receive(packets.iter().filter(is_end)), "123#");
        // Every packet twice.
        assert_eq!(receive(packets.iter().flat_map(|p| [p, p])), "123#");
        // A late packet of the previous event after the next one started.
        let mut reordered: Vec<&DtmfPacket> = packets.iter().collect();
        reordered.swap(6, 8); // last end of '1' after the second packet of '2'
        assert_eq!(receive(reordered), "123#");
    }

    #[test]
    fn receiver_rejects_bad_payloads_and_resets() {
        let mut r = DtmfReceiver::new();
        assert_eq!(r.handle(5, &[1]), Err(DtmfError::Truncated(1)));
        assert_eq!(
            r.handle(5, &[16, 0x80, 0, 0]),
            Err(DtmfError::UnsupportedEvent(16))
        );
        assert_eq!(r.handle(100_000, &[4, 0, 0, 160]), Ok(Some('4')));
        // A much older timestamp within the window is a late packet...
        assert_eq!(r.handle(90_000, &[4, 0, 0, 160]), Ok(None));
        // ...but after a reset (new SSRC) it is a new event.
        r.reset();
        assert_eq!(r.handle(90_000, &[4, 0, 0, 160]), Ok(Some('4')));
        // Timestamp wrap-around is a new event, not a late one.
        r.reset();
        assert_eq!(r.handle(u32::MAX - 10, &[6, 0, 0, 160]), Ok(Some('6')));
        assert_eq!(r.handle(200, &[7, 0, 0, 160]), Ok(Some('7')));
    }

    #[test]
    fn random_payloads_never_panic() {
        let mut r = DtmfReceiver::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bytes = x.to_le_bytes();
            let len = (x >> 60) as usize % 7;
            let _ = r.handle((x >> 32) as u32, &bytes[..len]);
        }
    }
}
