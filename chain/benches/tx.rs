//! Transaction build + sign time (no network): script, serialization, txid, signature.
//!
//! `cargo bench -p krypton-chain` — prints median/min/max over N runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use krypton_chain::nep17::{GAS, transfer_script};
use krypton_chain::{Account, Signer, Transaction, Witness, WitnessScope};
use krypton_wallet::PrivateKey;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<32} median {:>9.1} µs   min {:>9.1} µs   max {:>9.1} µs   (n={})",
        us(samples[samples.len() / 2]),
        us(samples[0]),
        us(samples[samples.len() - 1]),
        samples.len()
    );
}

fn build_and_sign(key: &PrivateKey, to: &krypton_wallet::ScriptHash) -> Vec<u8> {
    let from = key.public_key().script_hash();
    let account = Account::single(key);
    let script = transfer_script(&GAS, &from, to, 150_000_000);
    let mut tx = Transaction {
        nonce: 7,
        system_fee: 9_977_780,
        network_fee: 1_232_520,
        valid_until_block: 6326,
        signers: vec![Signer {
            account: account.script_hash(),
            scope: WitnessScope::CalledByEntry,
        }],
        script,
        witnesses: vec![],
    };
    let sig = key.sign(&tx.sign_data(42));
    tx.witnesses = vec![Witness {
        invocation: Witness::invocation_for(&[sig]),
        verification: key.public_key().verification_script().as_bytes().to_vec(),
    }];
    tx.to_bytes()
}

fn main() {
    let key = PrivateKey::generate();
    let to = PrivateKey::generate().public_key().script_hash();
    let mut samples = Vec::new();
    for _ in 0..2001 {
        let t = Instant::now();
        black_box(build_and_sign(black_box(&key), &to));
        samples.push(t.elapsed());
    }
    report("GAS transfer build+sign", samples);
    let raw = build_and_sign(&key, &to);
    let mut samples = Vec::new();
    for _ in 0..2001 {
        let t = Instant::now();
        black_box(Transaction::from_bytes(black_box(&raw)).ok());
        samples.push(t.elapsed());
    }
    report("transaction decode", samples);
}
