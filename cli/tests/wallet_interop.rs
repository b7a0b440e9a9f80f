//! Wallet interop with neo-go both ways, GAS transfers, and bad input, on a real neo-go devnet.

mod common;

use std::process::Command;

use common::{Devnet, Krypton, neogo};

fn ptyrun(answers: &[&str], cmd: &[&str]) -> std::process::Output {
    let mut c = Command::new("python3");
    c.arg(common::repo().join("scripts/ptyrun.py"))
        .args(answers)
        .arg("--")
        .args(cmd);
    c.output().expect("python3 scripts/ptyrun.py")
}

#[test]
fn neogo_wallet_opens_in_krypton_with_the_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("neogo.json");
    let f = file.to_str().unwrap();
    let neogo = neogo();
    let out = ptyrun(
        &["carol", "carol pass é", "carol pass é"],
        &[neogo.to_str().unwrap(), "wallet", "init", "-w", f, "-a"],
    );
    assert!(
        file.exists(),
        "neo-go made no wallet: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let dump = Command::new(&neogo)
        .args(["wallet", "dump-keys", "-w", f])
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout).to_string();
    // dump-keys prints the address, then the public key (hex) on the next line
    let mut lines = dump.lines().map(str::trim).filter(|l| !l.is_empty());
    let address = lines
        .next()
        .unwrap()
        .trim_end_matches(" (simple signature contract):")
        .to_string();
    let pubkey = lines.next().unwrap().to_string();
    assert!(address.starts_with('N'), "{dump}");

    let k = Krypton::new();
    let e = k.import_nep6(&file, "wrong").err();
    assert!(e.contains("wrong password"), "{e}");
    assert!(
        k.run(&["wallet", "list"], "").err().contains("no wallet"),
        "a failed import left a wallet behind"
    );

    let r = k.import_nep6(&file, "carol pass é").ok();
    assert_eq!(r["imported"][0], address.as_str());
    let list = k.run(&["wallet", "list"], "").ok();
    assert_eq!(list["accounts"][0]["address"], address.as_str());
    assert_eq!(list["accounts"][0]["public_key"], pubkey.as_str());
    assert_eq!(list["accounts"][0]["default"], true);
}

#[test]
fn krypton_wallet_signs_in_neogo_and_transfers_balance_exactly() {
    let d = Devnet::up();
    let bob = d.account("bob");
    let k = d.client();
    let created = k
        .run(
            &["--password-stdin", "wallet", "create", "--label", "dave"],
            "dave's pw\n",
        )
        .ok();
    let dave = created["address"].as_str().unwrap().to_string();
    d.run(&["devnet", "fund", &dave, "--gas", "10"], "").ok();
    assert_eq!(d.gas(&dave), 10_0000_0000);

    // Our transfer: balances change by exactly amount and fees.
    let bob0 = d.gas(&bob);
    let r = k
        .run(
            &["--password-stdin", "send", "--to", &bob, "--amount", "1.5"],
            "dave's pw\n",
        )
        .ok();
    let fees: i128 = r["fees_datoshi"].as_str().unwrap().parse().unwrap();
    assert!(fees > 0);
    assert_eq!(d.gas(&bob), bob0 + 1_5000_0000);
    assert_eq!(d.gas(&dave), 10_0000_0000 - 1_5000_0000 - fees);
    // Failover: a dead endpoint first, the devnet second.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut f = Krypton::new();
    f.global = vec!["--network".into(), format!("http://{dead},{}", d.rpc())];
    let r = f.run(&["balance", &bob], "").ok();
    assert_eq!(
        r["GAS_datoshi"].as_str().unwrap().parse::<i128>().unwrap(),
        bob0 + 1_5000_0000
    );
    assert_eq!(r["rpc"], d.rpc().as_str());
    let hist = k.run(&["history"], "").ok();
    assert!(
        hist["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["amount"] == "1.5" && t["direction"] == "out"),
        "{hist}"
    );

    // Not enough GAS for amount + fees, or for the amount alone: a clear error, nothing sent.
    let send = |amount: &str, password: &str| {
        k.run(
            &["--password-stdin", "send", "--to", &bob, "--amount", amount],
            password,
        )
    };
    let e = send("8.35", "dave's pw\n").err();
    assert!(e.contains("not enough GAS"), "{e}");
    let e = send("1000", "dave's pw\n").err();
    assert!(e.contains("not enough GAS"), "{e}");
    let e = send("1", "not dave's pw\n").err();
    assert!(e.contains("wrong password"), "{e}");

    // Export, and neo-go signs and sends with the exported file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    k.run(&["wallet", "export", "--nep6", file.to_str().unwrap()], "")
        .ok();
    let cfg = dir.path().join("wallet.yml");
    std::fs::write(
        &cfg,
        format!("Path: \"{}\"\nPassword: \"dave's pw\"\n", file.display()),
    )
    .unwrap();
    let bob1 = d.gas(&bob);
    let out = Command::new(neogo())
        .args([
            "wallet",
            "nep17",
            "transfer",
            "--wallet-config",
            cfg.to_str().unwrap(),
            "-r",
            &d.rpc(),
        ])
        .args([
            "--from", &dave, "--to", &bob, "--token", "GAS", "--amount", "0.25", "--force",
            "--await",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "neo-go could not use our wallet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.gas(&bob), bob1 + 2500_0000);
}

#[test]
fn bad_input_gets_clear_errors_and_loses_nothing() {
    let k = Krypton::new();
    let dir = tempfile::tempdir().unwrap();
    k.run(&["--password-stdin", "wallet", "create"], "pw\n")
        .ok();
    let before = k.run(&["wallet", "list"], "").ok();
    let good = dir.path().join("good.json");
    k.run(&["wallet", "export", "--nep6", good.to_str().unwrap()], "")
        .ok();
    let text = std::fs::read_to_string(&good).unwrap();

    // Truncated and corrupt NEP-6 files.
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let e = k.import_nep6(&truncated, "pw").err();
    assert!(e.contains("not a usable NEP-6 wallet"), "{e}");
    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, text.replace("\"6P", "\"7P")).unwrap();
    let e = k.import_nep6(&corrupt, "pw").err();
    assert!(
        e.to_lowercase().contains("nep-2") || e.contains("not a usable"),
        "{e}"
    );
    // A second wallet under another password cannot be merged in silently.
    let other = Krypton::new();
    other
        .run(&["--password-stdin", "wallet", "create"], "other\n")
        .ok();
    let other_file = dir.path().join("other.json");
    other
        .run(
            &["wallet", "export", "--nep6", other_file.to_str().unwrap()],
            "",
        )
        .ok();
    let e = k.import_nep6(&other_file, "other").err();
    assert!(e.contains("password"), "{e}");
    assert_eq!(
        k.run(&["wallet", "list"], "").ok(),
        before,
        "a failed import changed the keychain"
    );

    // Addresses with a bad checksum, bad WIF, unreachable RPC (never shown as a zero balance).
    let e = k
        .run(&["balance", "NVieniq1rBXU2XZziwcrhG3b3oVRdnS2ek"], "")
        .err();
    assert!(e.contains("checksum"), "{e}");
    let e = k
        .run(
            &["--password-stdin", "wallet", "import", "--wif"],
            "L1eV34wPoj9weqhGijdDLtVQzUpWGHszXXpdU9dPuh2nRFFzFa7F\npw\n",
        )
        .err();
    assert!(e.contains("WIF"), "{e}");
    assert!(!e.contains("L1eV34"), "the secret was echoed: {e}");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = k.run(&["--network", &format!("http://{dead}"), "balance"], "");
    assert!(
        !r.stdout.contains("\"GAS\""),
        "an unreachable node was shown as a balance: {}",
        r.stdout
    );
    let e = r.err();
    assert!(e.contains("cannot reach"), "{e}");
    assert_eq!(k.run(&["wallet", "list"], "").ok(), before);
}

#[test]
fn wif_and_legacy_neo2_nep2_import() {
    let k = Krypton::new();
    // NEP-2 reference vector (N3) and the classic NEO 2 vector.
    let r = k
        .run(
            &["--password-stdin", "wallet", "import", "--wif"],
            "L1eV34wPoj9weqhGijdDLtVQzUpWGHszXXpdU9dPuh2nRFFzFa7E\nneo\n",
        )
        .ok();
    assert_eq!(r["address"], "NM7Aky765FG8NhhwtxjXRx7jEL1cnw7PBP");
    let r = k
        .run(
            &["--password-stdin", "wallet", "import", "--nep2"],
            "6PYVPVe1fQznphjbUxXP9KZJqPMVnVwCx5s5pr5axRJ8uHkMtZg97eT5kL\nneo\n",
        )
        .err();
    assert!(r.contains("wrong password"), "{r}");
    let r = k
        .run(
            &["--password-stdin", "wallet", "import", "--nep2"],
            "6PYVPVe1fQznphjbUxXP9KZJqPMVnVwCx5s5pr5axRJ8uHkMtZg97eT5kL\nTestingOneTwoThree\n",
        )
        .err();
    // The NEP-2 password differs from the wallet's: refused, so the wallet keeps one password.
    assert!(r.contains("password"), "{r}");
    let k2 = Krypton::new();
    let r = k2
        .run(
            &["--password-stdin", "wallet", "import", "--nep2"],
            "6PYVPVe1fQznphjbUxXP9KZJqPMVnVwCx5s5pr5axRJ8uHkMtZg97eT5kL\nTestingOneTwoThree\n",
        )
        .ok();
    assert_eq!(r["source"], "nep2-neo2");
    assert!(r["address"].as_str().unwrap().starts_with('N'));
}
