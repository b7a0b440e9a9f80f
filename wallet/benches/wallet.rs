//! Wallet timings with plain std timing: median of N runs, in milliseconds.
//!
//! Run with `cargo bench -p krypton-wallet`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use krypton_wallet::{PrivateKey, ScryptParams, nep2_decrypt, nep2_encrypt};

const NEP2: &str = "6PYM7jHL4GmS8Aw2iEFpuaHTCUKjhT4mwVqdoozGU6sUE25BjV4ePXDdLz";
const PRIV: [u8; 32] = [
    0x84, 0x18, 0x0a, 0xc9, 0xd6, 0xeb, 0x6f, 0xba, 0x20, 0x7e, 0xa4, 0xef, 0x9d, 0x22, 0x00, 0x10,
    0x2d, 0x1e, 0xbe, 0xb4, 0xb9, 0xc0, 0x7e, 0x2c, 0x6a, 0x73, 0x8a, 0x42, 0x74, 0x2e, 0x27, 0xa5,
];

/// Runs `f` `runs` times and prints median, min and max.
fn bench<T>(name: &str, runs: usize, mut f: impl FnMut() -> T) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<40} median {:>10.3} ms   min {:>10.3} ms   max {:>10.3} ms   (n={runs})",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1])
    );
}

fn main() {
    // `cargo test --benches` runs this binary with `--bench` absent; keep it short then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let slow_runs = if quick { 1 } else { 9 };
    let fast_runs = if quick { 10 } else { 1001 };
    let key = PrivateKey::from_bytes(&PRIV).expect("valid key");
    let p = ScryptParams::DEFAULT;
    bench("nep2_decrypt 16384/8/8", slow_runs, || {
        nep2_decrypt(black_box(NEP2), "neo", p).expect("decrypts")
    });
    bench("nep2_encrypt 16384/8/8", slow_runs, || {
        nep2_encrypt(&key, black_box("neo"), p).expect("encrypts")
    });
    let msg = [0x2au8; 36];
    bench("sign 36-byte message", fast_runs, || {
        key.sign(black_box(&msg))
    });
}
