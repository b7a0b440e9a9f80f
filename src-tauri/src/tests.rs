//! Command-layer tests through Tauri's mock runtime: the real `tauri.conf.json` and capabilities
//! (so the ACL is enforced), a mock `main` webview, and IPC requests as the UI sends them. The
//! wallet lives in the in-memory mock keychain store, one namespace per test (a temp data dir).

use std::collections::BTreeSet;
use std::path::Path;

use krypton_wallet::{Keychain, KeystoreKind, Nep6Wallet, PrivateKey};
use serde_json::{Value, json};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::{App, WebviewWindow};

use crate::COMMANDS;
use crate::config::DesktopConfig;

const PASSWORD: &str = "correct horse battery";
const SIP_PASSWORD: &str = "sip digest secret 42";

struct TestApp {
    _app: App<MockRuntime>,
    main: WebviewWindow<MockRuntime>,
    other: WebviewWindow<MockRuntime>,
    config: DesktopConfig,
    dir: tempfile::TempDir,
}

impl TestApp {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = DesktopConfig::new(&dir.path().join("data"), KeystoreKind::Mock).unwrap();
        let app = crate::builder(mock_builder(), config.clone())
            .build(tauri::generate_context!())
            .expect("mock app");
        let main = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .expect("main webview");
        // A window no capability names: the ACL must refuse it everything.
        let other = tauri::WebviewWindowBuilder::new(&app, "other", Default::default())
            .build()
            .expect("other webview");
        TestApp {
            _app: app,
            main,
            other,
            config,
            dir,
        }
    }

    fn invoke_in(
        &self,
        w: &WebviewWindow<MockRuntime>,
        cmd: &str,
        args: Value,
    ) -> Result<Value, Value> {
        get_ipc_response(
            w,
            tauri::webview::InvokeRequest {
                cmd: cmd.into(),
                callback: tauri::ipc::CallbackFn(0),
                error: tauri::ipc::CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: tauri::ipc::InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|b| b.deserialize::<Value>().expect("JSON response"))
    }

    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        self.invoke_in(&self.main, cmd, args)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn keychain(&self) -> Keychain {
        Keychain::open(KeystoreKind::Mock, &self.config.keychain_namespace()).unwrap()
    }
}

/// A NEP-6 file as another wallet (neo-go, Neon) writes it, with one key; returns the key.
fn foreign_wallet(path: &Path, password: &str) -> PrivateKey {
    let key = PrivateKey::generate();
    let mut w = Nep6Wallet::default();
    let a = w.add_account_from_key(&key, password, "imported").unwrap();
    w.set_default(&a).unwrap();
    std::fs::write(path, w.to_json_pretty()).unwrap();
    key
}

/// Every way a key could be written down.
fn key_forms(k: &PrivateKey) -> Vec<String> {
    let hex: String = k.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    vec![k.to_wif().to_string(), hex.to_uppercase(), hex]
}

#[test]
fn first_run_create_shows_address_and_backup_is_encrypted_nep6() {
    let t = TestApp::new();
    let s = t.invoke("wallet_status", json!({})).unwrap();
    assert_eq!(s["state"], "none");
    assert_eq!(s["accounts"], json!([]));

    let s = t
        .invoke("wallet_create", json!({ "password": PASSWORD }))
        .unwrap();
    assert_eq!(s["state"], "unlocked");
    let address = s["defaultAddress"].as_str().unwrap().to_string();
    assert!(address.starts_with('N') && address.len() == 34, "{address}");
    assert_eq!(s["accounts"][0]["address"], address.as_str());

    let s = t.invoke("wallet_status", json!({})).unwrap();
    assert_eq!(s["state"], "unlocked");
    assert_eq!(s["defaultAddress"], address.as_str());

    // A second create is refused and changes nothing.
    let err = t
        .invoke("wallet_create", json!({ "password": PASSWORD }))
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("already a wallet"), "{err}");

    let backup = t.path("backup.json");
    let r = t
        .invoke("wallet_backup", json!({ "path": backup }))
        .unwrap();
    assert_eq!(r["accounts"], 1);
    let text = std::fs::read_to_string(&backup).unwrap();
    let w = Nep6Wallet::from_json(&text).expect("backup is NEP-6");
    assert_eq!(w.accounts()[0].address(), address);
    assert!(w.accounts()[0].nep2_key().unwrap().starts_with("6P"));
    let key = w.decrypt_account(&address, PASSWORD).unwrap();
    for form in key_forms(&key) {
        assert!(!text.contains(&form), "the backup holds the plain key");
    }
    assert!(!text.contains(PASSWORD));
    // Never overwrites.
    let err = t
        .invoke("wallet_backup", json!({ "path": backup }))
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("exists already"), "{err}");

    let s = t.invoke("wallet_lock", json!({})).unwrap();
    assert_eq!(s["state"], "locked");
    let err = t
        .invoke("wallet_unlock", json!({ "password": "not the password" }))
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("try again"), "{err}");
    let s = t
        .invoke("wallet_unlock", json!({ "password": PASSWORD }))
        .unwrap();
    assert_eq!(s["state"], "unlocked");
}

#[test]
fn bad_input_gets_errors_that_say_what_to_do() {
    let t = TestApp::new();
    let err = t
        .invoke("wallet_create", json!({ "password": "short" }))
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("at least 8"), "{err}");
    let err = t
        .invoke("wallet_backup", json!({ "path": t.path("b.json") }))
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("create one first"), "{err}");
    let err = t
        .invoke("wallet_backup", json!({ "path": "relative.json" }))
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("full path"), "{err}");
    let err = t
        .invoke(
            "wallet_import_nep6",
            json!({ "path": t.path("missing.json"), "password": PASSWORD }),
        )
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("check the path"), "{err}");
    assert_eq!(
        t.invoke("wallet_status", json!({})).unwrap()["state"],
        "none"
    );
}

#[test]
fn import_nep6_then_wrong_password_is_refused() {
    let t = TestApp::new();
    let file = t.dir.path().join("neo-go.json");
    let key = foreign_wallet(&file, PASSWORD);
    // neo-go's `wallet init -a` flags no account as the default
    let mut w = Nep6Wallet::from_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let unflagged = w
        .to_json_compact()
        .replace("\"isDefault\":true", "\"isDefault\":false");
    w = Nep6Wallet::from_json(&unflagged).unwrap();
    assert!(!w.accounts()[0].is_default());
    std::fs::write(&file, w.to_json_pretty()).unwrap();
    let err = t
        .invoke(
            "wallet_import_nep6",
            json!({ "path": file, "password": "wrong password" }),
        )
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("try again"), "{err}");
    assert_eq!(
        t.invoke("wallet_status", json!({})).unwrap()["state"],
        "none"
    );
    let s = t
        .invoke(
            "wallet_import_nep6",
            json!({ "path": file, "password": PASSWORD }),
        )
        .unwrap();
    assert_eq!(s["state"], "unlocked");
    assert_eq!(s["defaultAddress"], key.public_key().address().as_str());
    assert_eq!(s["accounts"][0]["isDefault"], true, "{s}");
    assert!(t.keychain().load().unwrap().is_some());
}

/// The webview cannot read a private key or a password back: every command (the list is
/// `COMMANDS`, from the same source as the handler) is called with plausible arguments, the
/// wrong ones too, and no answer, success or error, holds a password or any form of a key.
#[test]
fn no_command_returns_a_private_key_or_password() {
    let t = TestApp::new();
    let other_password = "another wallet's password";
    let foreign = t.dir.path().join("foreign.json");
    let foreign_key = foreign_wallet(&foreign, PASSWORD);
    let foreign2 = t.dir.path().join("foreign2.json");
    let foreign2_key = foreign_wallet(&foreign2, other_password);
    let foreign3 = t.dir.path().join("foreign3.json");
    let foreign3_key = foreign_wallet(&foreign3, PASSWORD);
    let foreign3_json = std::fs::read_to_string(&foreign3).unwrap();
    let wif_key = PrivateKey::generate();
    let typo_wif = typo(&wif_key.to_wif());

    let calls: Vec<(&str, Value)> = vec![
        ("wallet_status", json!({})),
        ("wallet_create", json!({ "password": PASSWORD })),
        ("wallet_create", json!({ "password": PASSWORD })),
        ("wallet_status", json!({})),
        ("wallet_backup", json!({ "path": t.path("backup.json") })),
        ("wallet_lock", json!({})),
        ("wallet_unlock", json!({ "password": other_password })),
        ("wallet_unlock", json!({ "password": PASSWORD })),
        (
            "wallet_import_nep6",
            json!({ "path": foreign, "password": other_password }),
        ),
        (
            "wallet_import_nep6",
            json!({ "path": foreign, "password": PASSWORD }),
        ),
        (
            "wallet_import_nep6",
            json!({ "path": foreign2, "password": other_password }),
        ),
        (
            "wallet_import_nep6_json",
            json!({ "json": foreign3_json, "name": "foreign3.json", "password": other_password }),
        ),
        (
            "wallet_import_nep6_json",
            json!({ "json": foreign3_json, "name": "foreign3.json", "password": PASSWORD }),
        ),
        // a real WIF: with the wrong password, then imported, then again (duplicate)
        (
            "wallet_import_wif",
            json!({ "wif": &*wif_key.to_wif(), "password": other_password }),
        ),
        (
            "wallet_import_wif",
            json!({ "wif": &*wif_key.to_wif(), "password": PASSWORD }),
        ),
        (
            "wallet_import_wif",
            json!({ "wif": &*wif_key.to_wif(), "password": PASSWORD }),
        ),
        // a typo in it (the error must not echo the rest)
        (
            "wallet_import_wif",
            json!({ "wif": typo_wif, "password": PASSWORD }),
        ),
        (
            "wallet_receive",
            json!({ "address": wif_key.public_key().address(), "amount": "2.5" }),
        ),
        (
            "wallet_receive",
            json!({ "address": foreign2_key.public_key().address() }),
        ),
        // a new address: the wrong password adds nothing; then it becomes the default
        (
            "wallet_add_account",
            json!({ "password": other_password, "label": "second" }),
        ),
        (
            "wallet_add_account",
            json!({ "password": PASSWORD, "label": "second" }),
        ),
        (
            "wallet_set_default",
            json!({ "address": wif_key.public_key().address() }),
        ),
        ("wallet_status", json!({})),
        // No devnet in this data dir: each answers an error that says what to do (the E2E
        // runs them against a real chain and provider).
        ("chain_status", json!({})),
        ("chain_balances", json!({})),
        ("chain_history", json!({})),
        ("chain_providers", json!({})),
        ("chain_registration", json!({})),
        (
            "chain_register",
            json!({ "provider": foreign_key.public_key().address(), "progress": "__CHANNEL__:1" }),
        ),
        ("chain_unregister", json!({ "progress": "__CHANNEL__:2" })),
        (
            "chain_send_prepare",
            json!({ "to": foreign_key.public_key().address(), "amount": "1" }),
        ),
        (
            "chain_send_confirm",
            json!({ "id": 1, "progress": "__CHANNEL__:4" }),
        ),
        ("chain_send_cancel", json!({})),
        // a SIP password goes in (sealed with the unlocked wallet's key) and never comes back
        (
            "settings_save",
            json!({ "settings": {
                "network": "devnet", "autoLockMinutes": 10,
                "audioInput": "default", "audioOutput": "default",
                "sipAccounts": [{ "id": "office", "aor": "sip:alice@office.example",
                                  "password": SIP_PASSWORD }],
                "dialPlan": { "rules": [], "default": [] } } }),
        ),
        ("settings_get", json!({})),
        ("audio_devices", json!({})),
        ("phone_start", json!({ "events": "__CHANNEL__:3" })),
        ("phone_send", json!({ "command": { "cmd": "devices" } })),
        ("phone_stop", json!({})),
        ("calls_history", json!({ "limit": 50 })),
        (
            "contacts_save",
            json!({ "contact": { "name": "Foreign", "destination": foreign_key.public_key().address() } }),
        ),
        ("contacts_list", json!({})),
        ("contacts_delete", json!({ "id": 999 })),
    ];
    let called: BTreeSet<&str> = calls.iter().map(|(c, _)| *c).collect();
    let all: BTreeSet<&str> = COMMANDS.iter().copied().collect();
    assert_eq!(
        called, all,
        "add every new command to this test, with arguments that reach its secrets"
    );

    let mut answers = Vec::new();
    for (cmd, args) in &calls {
        let r = t.invoke(cmd, args.clone());
        answers.push(format!(
            "{cmd}: {}",
            match r {
                Ok(v) | Err(v) => v.to_string(),
            }
        ));
    }

    let w = t.keychain().load().unwrap().unwrap();
    let created = w.accounts()[0].address().to_string();
    let created_key = w.decrypt_account(&created, PASSWORD).unwrap();
    let mut secrets = vec![
        PASSWORD.to_string(),
        other_password.to_string(),
        SIP_PASSWORD.to_string(),
    ];
    for k in [
        &created_key,
        &foreign_key,
        &foreign2_key,
        &foreign3_key,
        &wif_key,
    ] {
        secrets.extend(key_forms(k));
    }
    // the added address's key too
    let second = w
        .accounts()
        .iter()
        .find(|a| a.label() == Some("second"))
        .expect("the second address was added")
        .address()
        .to_string();
    secrets.extend(key_forms(&w.decrypt_account(&second, PASSWORD).unwrap()));
    // the WIF and its typo'd copy, whole and in parts (an error must not quote it)
    for w in [wif_key.to_wif().to_string(), typo_wif.clone()] {
        secrets.push(w[..12].to_string());
        secrets.push(w[40..].to_string());
    }
    for a in &answers {
        for s in &secrets {
            assert!(!a.contains(s.as_str()), "an answer holds a secret: {a}");
        }
    }
    // The answers did carry the wallet (so the scenario reached the keys).
    assert!(answers.iter().any(|a| a.contains(&created)));
    assert!(
        answers
            .iter()
            .any(|a| a.contains(&foreign_key.public_key().address()))
    );
    for k in [&foreign3_key, &wif_key] {
        let a = k.public_key().address();
        assert!(w.account(&a).is_some(), "{a} was imported");
    }
    assert_eq!(
        w.default_account().map(|a| a.address().to_string()),
        Some(wif_key.public_key().address())
    );
    assert_eq!(
        w.accounts()
            .iter()
            .filter(|a| a.label() == Some("second"))
            .count(),
        1,
        "the wrong password added nothing"
    );
    assert!(
        answers.iter().any(|a| a.contains("neo:")),
        "receive answered"
    );
    assert!(
        answers
            .iter()
            .any(|a| a.starts_with("settings_get") && a.contains("\"hasPassword\":true")),
        "the SIP password was saved"
    );
}

/// `wif` with one character changed (so its checksum fails).
fn typo(wif: &str) -> String {
    let mut w = wif.to_string();
    let c = if &w[20..21] == "x" { "y" } else { "x" };
    w.replace_range(20..21, c);
    w
}

fn err_text(r: Result<Value, Value>) -> String {
    r.expect_err("an error").as_str().unwrap().to_string()
}

#[test]
fn import_wif_into_a_new_wallet_then_duplicate_and_wrong_password() {
    let t = TestApp::new();
    // the reference key of ../shared/data/neo-n3-vectors.json (a test key)
    let wif = "L1eV34wPoj9weqhGijdDLtVQzUpWGHszXXpdU9dPuh2nRFFzFa7E";
    let address = "NM7Aky765FG8NhhwtxjXRx7jEL1cnw7PBP";

    // bad WIFs: each error says what to do, never echoes the WIF, and imports nothing
    let bad: Vec<(String, &str)> = vec![
        (typo(wif), "copy it again"),
        (wif[..40].to_string(), "copy it again"),
        ("0OIl".repeat(13), "not Base58"),
        ("".to_string(), "copy all of it"),
    ];
    for (w, want) in &bad {
        let e = err_text(t.invoke(
            "wallet_import_wif",
            json!({ "wif": w, "password": PASSWORD }),
        ));
        assert!(
            e.contains("not a valid WIF") && e.contains(want),
            "{w}: {e}"
        );
        assert!(!e.contains(&wif[..12]) && !e.contains(&wif[40..]), "{e}");
    }
    // a new wallet needs a password as long as wallet_create's
    let e = err_text(t.invoke(
        "wallet_import_wif",
        json!({ "wif": wif, "password": "short" }),
    ));
    assert!(e.contains("at least 8"), "{e}");
    assert!(!e.contains(&wif[..12]), "{e}");
    assert_eq!(
        t.invoke("wallet_status", json!({})).unwrap()["state"],
        "none"
    );

    let s = t
        .invoke(
            "wallet_import_wif",
            json!({ "wif": format!(" {wif}\n"), "password": PASSWORD }),
        )
        .unwrap();
    assert_eq!(s["state"], "unlocked");
    assert_eq!(s["defaultAddress"], address);
    assert_eq!(s["accounts"][0]["isDefault"], true, "{s}");
    assert_eq!(s["accounts"][0]["watchOnly"], false, "{s}");
    // stored NEP-2 encrypted with the password, the key intact
    let w = t.keychain().load().unwrap().unwrap();
    assert!(w.accounts()[0].nep2_key().unwrap().starts_with("6P"));
    let k = w.decrypt_account(address, PASSWORD).unwrap();
    assert_eq!(&*k.to_wif(), wif);

    let e = err_text(t.invoke(
        "wallet_import_wif",
        json!({ "wif": wif, "password": PASSWORD }),
    ));
    assert!(
        e.contains("in this wallet already") && e.contains(address),
        "{e}"
    );

    // a second key goes into the same wallet only with that wallet's password
    let other = PrivateKey::generate();
    t.invoke("wallet_lock", json!({})).unwrap();
    let e = err_text(t.invoke(
        "wallet_import_wif",
        json!({ "wif": &*other.to_wif(), "password": "not the password" }),
    ));
    assert!(
        e.contains("this wallet's password") && e.contains("try again"),
        "{e}"
    );
    assert_eq!(t.keychain().load().unwrap().unwrap().accounts().len(), 1);
    assert_eq!(
        t.invoke("wallet_status", json!({})).unwrap()["state"],
        "locked"
    );
    let s = t
        .invoke(
            "wallet_import_wif",
            json!({ "wif": &*other.to_wif(), "password": PASSWORD }),
        )
        .unwrap();
    assert_eq!(s["state"], "unlocked");
    assert_eq!(s["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(s["defaultAddress"], address, "the default stays");
    assert_eq!(
        s["accounts"][1]["address"],
        other.public_key().address().as_str()
    );
}

#[test]
fn import_nep6_text_from_the_file_chooser() {
    let t = TestApp::new();
    let file = t.dir.path().join("chosen.json");
    let key = foreign_wallet(&file, PASSWORD);
    let json = std::fs::read_to_string(&file).unwrap();

    let e = err_text(t.invoke(
        "wallet_import_nep6_json",
        json!({ "json": "{\"not\": ", "name": "w.json", "password": PASSWORD }),
    ));
    assert!(e.contains("w.json is not a usable NEP-6 wallet"), "{e}");
    let big = " ".repeat(4 * 1024 * 1024 + 1);
    let e = err_text(t.invoke(
        "wallet_import_nep6_json",
        json!({ "json": big, "name": "big.json", "password": PASSWORD }),
    ));
    assert!(e.contains("larger than 4 MiB"), "{e}");
    let e = err_text(t.invoke(
        "wallet_import_nep6_json",
        json!({ "json": json, "name": "chosen.json", "password": "wrong password" }),
    ));
    assert!(e.contains("try again"), "{e}");
    assert_eq!(
        t.invoke("wallet_status", json!({})).unwrap()["state"],
        "none"
    );

    let s = t
        .invoke(
            "wallet_import_nep6_json",
            json!({ "json": json, "name": "chosen.json", "password": PASSWORD }),
        )
        .unwrap();
    assert_eq!(s["state"], "unlocked");
    assert_eq!(s["defaultAddress"], key.public_key().address().as_str());
    // the same file again: nothing new
    let e = err_text(t.invoke(
        "wallet_import_nep6_json",
        json!({ "json": json, "password": PASSWORD }),
    ));
    assert!(e.contains("the chosen file has no account"), "{e}");
}

#[test]
fn receive_is_only_for_an_address_of_the_wallet() {
    let t = TestApp::new();
    let e = err_text(t.invoke(
        "wallet_receive",
        json!({ "address": "NM7Aky765FG8NhhwtxjXRx7jEL1cnw7PBP" }),
    ));
    assert!(e.contains("create one or import"), "{e}");
    let s = t
        .invoke("wallet_create", json!({ "password": PASSWORD }))
        .unwrap();
    let mine = s["defaultAddress"].as_str().unwrap().to_string();
    t.invoke("wallet_lock", json!({})).unwrap();
    // locked is fine: the address is public
    let r = t
        .invoke(
            "wallet_receive",
            json!({ "address": mine, "amount": "0.1" }),
        )
        .unwrap();
    assert_eq!(r["address"], mine.as_str());
    assert_eq!(r["uri"], format!("neo:{mine}?asset=gas&amount=0.1"));
    let size = r["qr"]["size"].as_u64().unwrap() as usize;
    assert!(size >= 21, "{r}");
    assert_eq!(r["qr"]["modules"].as_str().unwrap().len(), size * size);

    let foreign = PrivateKey::generate().public_key().address();
    let e = err_text(t.invoke("wallet_receive", json!({ "address": foreign })));
    assert!(
        e.contains("not an address of this wallet") && e.contains("choose one"),
        "{e}"
    );
    let e = err_text(t.invoke(
        "wallet_receive",
        json!({ "address": mine, "amount": "lots" }),
    ));
    assert!(e.contains("leave the amount empty"), "{e}");
}

#[test]
fn the_acl_refuses_a_window_without_a_grant() {
    let t = TestApp::new();
    for cmd in COMMANDS {
        let err = t.invoke_in(&t.other, cmd, json!({})).unwrap_err();
        assert!(
            err.to_string().contains("not allowed"),
            "{cmd} from an ungranted window: {err}"
        );
    }
    // The same call from the main window goes through.
    assert!(t.invoke("wallet_status", json!({})).is_ok());
}

#[test]
fn main_capability_grants_exactly_the_commands() {
    let caps: Value = serde_json::from_str(include_str!("../capabilities/main.json")).unwrap();
    assert_eq!(caps["windows"], json!(["main"]));
    let granted: BTreeSet<String> = caps["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = COMMANDS
        .iter()
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    assert_eq!(granted, want);
}

#[test]
fn args_and_env_choose_data_dir_and_keystore() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let c = DesktopConfig::from_env_and_args(
        [
            "--data-dir".to_string(),
            d.to_string_lossy().into_owned(),
            "--keystore=mock".into(),
        ]
        .into_iter(),
    )
    .unwrap();
    assert_eq!(c.keystore, KeystoreKind::Mock);
    assert_eq!(c.data_dir, d.canonicalize().unwrap());
    assert!(
        DesktopConfig::from_env_and_args(["--keystore".to_string(), "nope".into()].into_iter())
            .is_err()
    );
}

#[test]
fn chain_and_phone_commands_say_what_to_do_without_a_chain() {
    let t = TestApp::new();
    t.invoke("wallet_create", json!({ "password": PASSWORD }))
        .unwrap();
    let err = t.invoke("chain_status", json!({})).unwrap_err();
    assert!(err.as_str().unwrap().contains("krypton devnet up"), "{err}");
    let err = t
        .invoke("phone_start", json!({ "events": "__CHANNEL__:3" }))
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("krypton devnet up"), "{err}");
    let err = t
        .invoke(
            "phone_send",
            json!({ "command": { "cmd": "call", "to": "bob" } }),
        )
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("not running"), "{err}");
    // A command the phone does not know is refused before it reaches the core.
    assert!(
        t.invoke("phone_send", json!({ "command": { "cmd": "format_disk" } }))
            .is_err()
    );
    let err = t
        .invoke(
            "chain_register",
            json!({ "provider": "not an address", "progress": "__CHANNEL__:1" }),
        )
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("pick one"), "{err}");
    let to = PrivateKey::generate().public_key().address();
    let err = t
        .invoke("chain_send_prepare", json!({ "to": "N123", "amount": "1" }))
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("34 characters"), "{err}");
    for bad in ["0", "-1", "1.000000001", "lots"] {
        let err = t
            .invoke("chain_send_prepare", json!({ "to": to, "amount": bad }))
            .unwrap_err();
        assert!(!err.as_str().unwrap().is_empty(), "{bad}: {err}");
    }
    // Nothing prepared: nothing to confirm.
    let err = t
        .invoke(
            "chain_send_confirm",
            json!({ "id": 7, "progress": "__CHANNEL__:4" }),
        )
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("prepare it again"), "{err}");
    // Locked: nothing can be signed.
    t.invoke("wallet_lock", json!({})).unwrap();
    let dir = t.config.data_dir.join("devnet");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("state.json"),
        format!(r#"{{"rpc_port": 9, "contract": "0x{}"}}"#, "ab".repeat(20)),
    )
    .unwrap();
    let err = t
        .invoke("chain_unregister", json!({ "progress": "__CHANNEL__:2" }))
        .unwrap_err();
    assert!(err.as_str().unwrap().contains("locked"), "{err}");
}

fn settings_input(network: &str, password: Option<&str>) -> Value {
    json!({ "settings": {
        "network": network, "autoLockMinutes": 5,
        "audioInput": "default", "audioOutput": "alsa:hw:9",
        "sipAccounts": [{ "id": "office", "aor": "sip:alice@office.example",
                          "proxy": "sip:127.0.0.1:5060", "password": password }],
        "dialPlan": { "rules": [{ "match": { "prefix": "0" }, "accounts": ["office"] }],
                      "default": [] } } })
}

#[test]
fn settings_are_saved_checked_and_keep_the_sip_password_sealed() {
    let t = TestApp::new();
    let file = t.config.data_dir.join(crate::settings::FILE_NAME);
    let v = t.invoke("settings_get", json!({})).unwrap();
    assert_eq!(v["network"], "devnet");
    assert_eq!(v["autoLockMinutes"], 15);
    assert_eq!(v["networkFixed"], false);

    // a password needs a wallet, unlocked: nothing is saved without it
    let e = t
        .invoke(
            "settings_save",
            settings_input("testnet", Some(SIP_PASSWORD)),
        )
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("wallet"), "{e}");
    assert!(!file.exists());

    t.invoke("wallet_create", json!({ "password": PASSWORD }))
        .unwrap();
    t.invoke("wallet_lock", json!({})).unwrap();
    let e = t
        .invoke(
            "settings_save",
            settings_input("testnet", Some(SIP_PASSWORD)),
        )
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("unlock the wallet"), "{e}");
    t.invoke("wallet_unlock", json!({ "password": PASSWORD }))
        .unwrap();
    let v = t
        .invoke(
            "settings_save",
            settings_input("testnet", Some(SIP_PASSWORD)),
        )
        .unwrap();
    assert_eq!(v["network"], "testnet");
    assert_eq!(v["sipAccounts"][0]["hasPassword"], true);
    assert_eq!(v["audioOutput"], "alsa:hw:9");
    let on_disk = std::fs::read_to_string(&file).unwrap();
    assert!(!on_disk.contains(SIP_PASSWORD), "the file holds it sealed");
    assert!(on_disk.contains("sealedPassword"));

    // saved again without a password: the sealed one stays
    let v = t
        .invoke("settings_save", settings_input("testnet", None))
        .unwrap();
    assert_eq!(v["sipAccounts"][0]["hasPassword"], true);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), on_disk.clone());
    // the network reaches the chain commands
    assert_eq!(
        t.invoke("settings_get", json!({})).unwrap()["network"],
        "testnet"
    );

    // bad input: a clear error, and the file is unchanged
    for (input, says) in [
        (settings_input("gopher://x", None), "http://"),
        (
            {
                let mut i = settings_input("testnet", None);
                i["settings"]["dialPlan"]["rules"][0]["accounts"] = json!(["nobody"]);
                i
            },
            "routing rules",
        ),
        (
            {
                let mut i = settings_input("testnet", None);
                i["settings"]["autoLockMinutes"] = json!(0);
                i
            },
            "auto-lock",
        ),
    ] {
        let e = t.invoke("settings_save", input).unwrap_err();
        assert!(e.as_str().unwrap().contains(says), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), on_disk);
    }
}

/// The error text of a command that must fail.
fn book_err(r: Result<Value, Value>) -> String {
    r.expect_err("the command should fail")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn contacts_save_list_delete_even_while_locked() {
    let t = TestApp::new();
    t.invoke("wallet_create", json!({ "password": PASSWORD }))
        .unwrap();
    t.invoke("wallet_lock", json!({})).unwrap();
    assert_eq!(t.invoke("contacts_list", json!({})).unwrap(), json!([]));
    let bob = PrivateKey::generate().public_key().address();
    let c = t
        .invoke(
            "contacts_save",
            json!({ "contact": { "name": " Bob ", "destination": bob } }),
        )
        .unwrap();
    assert_eq!(
        (c["name"].as_str(), c["destination"].as_str()),
        (Some("Bob"), Some(bob.as_str()))
    );
    let id = c["id"].as_i64().unwrap();
    let c = t
        .invoke(
            "contacts_save",
            json!({ "contact": { "id": id, "name": "Bobby", "destination": bob } }),
        )
        .unwrap();
    assert_eq!(c["id"].as_i64(), Some(id));
    t.invoke(
        "contacts_save",
        json!({ "contact": { "name": "Alice", "destination": "+31 20 123 4567" } }),
    )
    .unwrap();
    let list = t.invoke("contacts_list", json!({})).unwrap();
    assert_eq!(
        list,
        json!([
            { "id": id + 1, "name": "Alice", "destination": "+31201234567" },
            { "id": id, "name": "Bobby", "destination": bob },
        ])
    );
    // The core's checks reach the UI as errors that say what to change.
    let err = book_err(t.invoke(
        "contacts_save",
        json!({ "contact": { "name": "Twin", "destination": bob } }),
    ));
    assert!(err.contains("edit that contact"), "{err}");
    let err = book_err(t.invoke(
        "contacts_save",
        json!({ "contact": { "name": "", "destination": "123" } }),
    ));
    assert!(err.contains("type one"), "{err}");
    t.invoke("contacts_delete", json!({ "id": id })).unwrap();
    let err = book_err(t.invoke("contacts_delete", json!({ "id": id })));
    assert!(err.contains("no contact"), "{err}");
    assert_eq!(
        t.invoke("contacts_list", json!({}))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The database is the phone's: `<data dir>/phone/messages.sqlite`.
    let s = krypton_core::store::MessageStore::open(
        &t.config.data_dir.join("phone").join("messages.sqlite"),
    )
    .unwrap();
    assert_eq!(s.contacts().unwrap()[0].name, "Alice");
}

#[test]
fn calls_history_shows_what_the_phone_recorded() {
    use krypton_core::store::{Direction, MessageStore, NewCall};
    let t = TestApp::new();
    assert_eq!(
        t.invoke("calls_history", json!({ "limit": 10 })).unwrap(),
        json!([])
    );
    let dir = t.config.data_dir.join("phone");
    // The phone writes a row when a call ends (krypton-core's Phone, same file).
    let s = MessageStore::open(&dir.join("messages.sqlite")).unwrap();
    for (remote, answered) in [("NbobAddress", Some(2_000)), ("+3120", None)] {
        s.record_call(&NewCall {
            account: "krypton".into(),
            direction: Direction::Out,
            remote: remote.into(),
            started_ms: 1_000,
            answered_ms: answered,
            ended_ms: 9_000,
            end_reason: "local_hangup".into(),
            codec: answered.map(|_| "opus".into()),
            mos: answered.map(|_| 4.1),
        })
        .unwrap();
    }
    let h = t.invoke("calls_history", json!({ "limit": 10 })).unwrap();
    assert_eq!(h.as_array().unwrap().len(), 2);
    assert_eq!(h[0]["remote"], "+3120");
    assert_eq!(h[0]["answered_ms"], Value::Null);
    assert_eq!(h[1]["remote"], "NbobAddress");
    assert_eq!(
        (
            &h[1]["direction"],
            &h[1]["answered_ms"],
            &h[1]["ended_ms"],
            &h[1]["codec"]
        ),
        (&json!("out"), &json!(2_000), &json!(9_000), &json!("opus"))
    );
    let h = t.invoke("calls_history", json!({ "limit": 1 })).unwrap();
    assert_eq!(h.as_array().unwrap().len(), 1);
    assert!(t.invoke("calls_history", json!({})).is_err());
}
