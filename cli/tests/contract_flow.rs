//! The KRYPTON contract through `krypton`, on a real neo-go devnet: the whole flow, and every
//! forbidden case failing with a clear reason while the chain state stays as it was.

mod common;

use common::Devnet;
use krypton_chain::krypton::KryptonContract;
use krypton_chain::{Account, ChainError, RpcClient, Sender};
use krypton_wallet::{Nep6Wallet, ScriptHash};
use serde_json::Value;

const PW: &str = "devnet\n";

fn snapshot(d: &Devnet, users: &[&str]) -> Vec<Value> {
    let mut out = vec![d.run(&["providers"], "").ok()];
    for u in users {
        for q in ["uuid", "provider", "location"] {
            out.push(d.query(q, u));
        }
    }
    out
}

#[test]
fn registry_flow_and_forbidden_cases() {
    let d = Devnet::up();
    let (alice, bob) = (d.account("alice"), d.account("bob"));
    let (pa, pb, owner) = (
        d.account("provider-a"),
        d.account("provider-b"),
        d.account("owner"),
    );
    let accounts = d.accounts_file();
    d.k.import_nep6(&accounts, "devnet").ok();
    let as_ = |who: &str, args: &[&str]| {
        let mut a = vec!["--account", who, "--password-stdin"];
        a.extend_from_slice(args);
        d.run(&a, PW)
    };

    // Providers deploy themselves.
    let r = as_(
        &pa,
        &[
            "provider",
            "deploy",
            "--location",
            "sip.provider-a.test:5060",
        ],
    )
    .ok();
    assert_eq!(r["vm_state"], "HALT");
    assert_eq!(r["events"][0]["event"], "ProviderDeployed");
    as_(
        &pb,
        &[
            "provider",
            "deploy",
            "--location",
            "_sip._udp.provider-b.test",
        ],
    )
    .ok();
    let providers = d.run(&["providers"], "").ok()["providers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(providers.len(), 2);
    assert!(
        providers
            .iter()
            .any(|p| p["address"] == pa.as_str() && p["location"] == "sip.provider-a.test:5060")
    );

    // A user registers; query answers.
    let uuid = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    let r = as_(&alice, &["register", "--provider", &pa, "--uuid", uuid]).ok();
    assert_eq!(r["events"][0]["event"], "UserRegistered");
    assert_eq!(d.query("uuid", &alice), uuid);
    assert_eq!(d.query("provider", &alice), pa.as_str());
    assert_eq!(d.query("location", &alice), "sip.provider-a.test:5060");
    assert_eq!(d.query("uuid", &bob), Value::Null);

    // Re-registering replaces provider and uuid.
    let r = as_(&alice, &["register", "--provider", &pb]).ok();
    let new_uuid = r["uuid"].as_str().unwrap().to_string();
    assert_ne!(new_uuid, uuid);
    assert_eq!(d.query("provider", &alice), pb.as_str());
    assert_eq!(d.query("uuid", &alice), new_uuid.as_str());
    assert_eq!(d.query("location", &alice), "_sip._udp.provider-b.test");

    // Forbidden cases: each fails with its reason; chain state and balances stay exactly as they were.
    let before = snapshot(&d, &[&alice, &bob]);
    let gas_before: Vec<i128> = [&alice, &bob, &pa].iter().map(|a| d.gas(a)).collect();

    let e = as_(&pa, &["provider", "deploy", "--location", "other.test"]).err();
    assert!(e.contains("provider already deployed"), "{e}");
    let e = as_(&bob, &["register", "--provider", &alice]).err();
    assert!(e.contains("provider not deployed"), "{e}");
    let e = as_(
        &bob,
        &["register", "--provider", &pa, "--uuid", "not-a-uuid"],
    )
    .err();
    assert!(e.contains("invalid uuid"), "{e}");
    let e = as_(
        &bob,
        &[
            "register",
            "--provider",
            &pa,
            "--uuid",
            "6f1c2a3b-4d5e-1f60-8a7b-9c0d1e2f3a4b",
        ],
    )
    .err();
    assert!(e.contains("invalid uuid"), "v1 uuid accepted: {e}");
    let e = as_(
        &bob,
        &["provider", "deploy", "--location", "bad host name!"],
    )
    .err();
    assert!(e.contains("invalid location"), "{e}");
    let e = as_(&bob, &["unregister"]).err();
    assert!(e.contains("not registered"), "{e}");
    let nef = common::repo().join("contract/build/krypton.nef");
    let manifest = common::repo().join("contract/build/krypton.manifest.json");
    let e = as_(
        &alice,
        &[
            "contract",
            "update",
            "--nef",
            nef.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
        ],
    )
    .err();
    assert!(e.contains("only the contract owner may upgrade"), "{e}");

    // Acting for someone else needs the library: the CLI always signs as the one it acts for.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let w = Nep6Wallet::from_json(&std::fs::read_to_string(&accounts).unwrap()).unwrap();
        let bob_key = w.decrypt_account(&bob, "devnet").unwrap();
        let rpc = RpcClient::new(vec![d.rpc()], std::time::Duration::from_secs(10)).unwrap();
        let sender = Sender::connect(&rpc).await.unwrap();
        let c = KryptonContract::new(ScriptHash::from_hex(&d.contract()).unwrap());
        let h = |a: &str| ScriptHash::from_address(a).unwrap();
        let cases = [
            (
                c.register_script(&h(&alice), &h(&pa), uuid),
                "not signed by the user",
            ),
            (c.unregister_script(&h(&alice)), "not signed by the user"),
            (c.undeploy_script(&h(&pa)), "not signed by the provider"),
        ];
        // findstorage sees both provider entries (prefix 0x10 ‖ provider → location).
        let entries = rpc.find_storage(&c.hash, &[0x10]).await.unwrap();
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert!(entries.iter().any(|e| e.key[1..] == *h(&pa).as_bytes() && e.value == b"sip.provider-a.test:5060"));
        for (script, reason) in cases {
            match sender.build(script, &Account::single(&bob_key), 0).await {
                Err(ChainError::WouldFault { reason: r }) => assert!(r.contains(reason), "{r}"),
                other => panic!("expected a refusal ({reason}), got {other:?}"),
            }
        }
    });

    assert_eq!(
        snapshot(&d, &[&alice, &bob]),
        before,
        "a refused call changed the chain state"
    );
    let gas_after: Vec<i128> = [&alice, &bob, &pa].iter().map(|a| d.gas(a)).collect();
    assert_eq!(gas_after, gas_before, "a refused call cost GAS");

    // The owner is who deployed the contract.
    assert_eq!(
        d.run(&["contract", "info"], "").ok()["owner"],
        owner.as_str()
    );

    // A device key: set, query, clear.
    let device = "033a4d051b04b7fc0230d2b1aaedfd5a84be279a5361a7358db665ad7857787f1b";
    let r = as_(&alice, &["device-key", "set", "--key", device]).ok();
    assert_eq!(r["events"][0]["event"], "DeviceKeyChanged");
    assert_eq!(r["events"][0]["key"], device);
    assert_eq!(d.query("key", &alice), device);
    let e = as_(&alice, &["device-key", "set", "--key", "04abcd"]).err();
    assert!(e.contains("public key"), "{e}");
    let r = as_(&alice, &["device-key", "clear"]).ok();
    assert_eq!(r["events"][0]["key"], Value::Null);
    assert_eq!(d.query("key", &alice), Value::Null);

    // Unregister, undeploy, list.
    let r = as_(&alice, &["unregister"]).ok();
    assert_eq!(r["events"][0]["event"], "UserUnregistered");
    for q in ["uuid", "provider", "location"] {
        assert_eq!(d.query(q, &alice), Value::Null, "{q} after unregister");
    }
    let r = as_(&pa, &["provider", "undeploy"]).ok();
    assert_eq!(r["events"][0]["event"], "ProviderUndeployed");
    let providers = d.run(&["providers"], "").ok()["providers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["address"], pb.as_str());
    let e = as_(&pa, &["provider", "undeploy"]).err();
    assert!(e.contains("provider not deployed"), "{e}");
}

#[test]
fn devnet_up_is_idempotent_and_survives_a_restart() {
    let d = Devnet::up();
    let again = d.run(&["devnet", "up"], "").ok();
    assert_eq!(again["contract"], d.info["contract"]);
    assert_eq!(
        again["pid"], d.info["pid"],
        "a second `up` must not start another node"
    );
    let alice = d.account("alice");
    d.k.import_nep6(&d.accounts_file(), "devnet").ok();
    d.run(
        &[
            "--account",
            &d.account("provider-a"),
            "--password-stdin",
            "provider",
            "deploy",
            "--location",
            "10.0.0.1:5060",
        ],
        PW,
    )
    .ok();
    d.run(
        &[
            "--account",
            &alice,
            "--password-stdin",
            "register",
            "--provider",
            &d.account("provider-a"),
        ],
        PW,
    )
    .ok();
    let height = d.run(&["devnet", "status"], "").ok()["height"]
        .as_u64()
        .unwrap();

    let down = d.run(&["devnet", "down"], "").ok();
    assert_eq!(down["stopped"], true);
    let st = d.run(&["devnet", "status"], "").ok();
    assert_eq!(st["running"], false);
    let e = d.run(&["balance", &alice], "").err();
    assert!(e.contains("cannot reach"), "{e}");

    let up = d.run(&["devnet", "up"], "").ok();
    assert_eq!(up["contract"], d.info["contract"]);
    assert_eq!(up["rpc"], d.info["rpc"]);
    assert!(
        up["height"].as_u64().unwrap() >= height,
        "the chain was not kept"
    );
    assert_eq!(d.query("location", &alice), "10.0.0.1:5060");
}

/// Writes an executable shell script standing in for neo-go.
fn fake_neogo(dir: &std::path::Path, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("neogo-wrapper.sh");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn devnet_up_reports_a_node_that_cannot_start() {
    let scripts = tempfile::tempdir().unwrap();
    let mut k = common::Krypton::new();
    let fake = fake_neogo(scripts.path(), "echo 'fatal: config is wrong' >&2; exit 3");
    k.env.push(("KRYPTON_NEOGO".into(), fake));
    let e = k.run(&["devnet", "up"], "").err();
    assert!(e.contains("exit status: 3"), "{e}");
    assert!(e.contains("fatal: config is wrong"), "{e}");
}

#[test]
fn devnet_up_starts_again_a_node_that_died_silently() {
    let scripts = tempfile::tempdir().unwrap();
    let marker = scripts.path().join("died-once");
    let mut k = common::Krypton::new();
    // First start: killed before it writes anything. Second: the real node.
    let fake = fake_neogo(
        scripts.path(),
        &format!(
            "[ -e {m} ] || {{ touch {m}; kill -9 $$; }}\nexec {neogo} \"$@\"",
            m = marker.display(),
            neogo = common::neogo().display()
        ),
    );
    k.env.push(("KRYPTON_NEOGO".into(), fake));
    let up = k.run(&["devnet", "up"], "");
    assert!(marker.exists(), "the first start did not run");
    let info = up.ok();
    assert!(info["contract"].is_string(), "{info}");
    let down = k.run(&["devnet", "down"], "").ok();
    assert_eq!(
        down["stopped"], true,
        "the restarted node is the one tracked"
    );
}
