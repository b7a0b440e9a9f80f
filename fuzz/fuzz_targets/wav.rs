//! `wav`: `krypton_media::wav::WavSource::open`, the headless phone's audio file input.
//!
//! The input is written to a temporary file (one per fuzzing process) and opened at 8 kHz and
//! 48 kHz. Checks that opening never panics (nor runs away with memory: libFuzzer's
//! `-rss_limit_mb` / `-malloc_limit_mb` catch that), and that an opened source reads out
//! exactly its samples in 20 ms frames, reports being finished, and rewinds.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use krypton_media::wav::WavSource;
use libfuzzer_sys::fuzz_target;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("krypton-fuzz-wav-{}.wav", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(path(), data).expect("write the temporary WAV file");
    for rate in [8000u32, 48000] {
        let Ok(mut src) = WavSource::open(path(), rate) else {
            continue;
        };
        assert_eq!(src.pcm_rate(), rate);
        let frame = rate as usize / 50;
        let total = (src.duration().as_secs_f64() * f64::from(rate)).round() as usize;
        let mut out = Vec::new();
        let mut frames = 0usize;
        while !src.is_finished() {
            src.read_frame(&mut out, frame);
            assert_eq!(out.len(), frame);
            frames += 1;
            assert!(frames <= total / frame + 1, "more frames than samples");
        }
        src.rewind();
        assert_eq!(src.is_finished(), total == 0);
    }
});
