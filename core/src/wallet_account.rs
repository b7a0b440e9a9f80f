//! A wallet address as the phone's KRYPTON SIP account, found through the chain.
//!
//! The chain says where the account lives: `query provider|location|uuid|key ADDRESS` on the
//! KRYPTON contract (read-only, nothing is signed or sent). The account is then
//!
//! - AOR `sip:ADDRESS@LOCATION`: the realm is the provider's on-chain location string exactly
//!   (`127.0.0.1:5070`, `sip.example.org:5060`);
//! - proxy `sip:LOCATION;transport=udp`, unless the front end names another (an SRV-name
//!   location is used as a host name: the phone does no SRV lookup yet);
//! - `+sip.instance` `urn:uuid:<the on-chain uuid>`;
//! - no password: the provider's Bearer challenge (provider/AUTH.md §4) is answered with a
//!   token that a [`WalletSigner`] mints with the decrypted key, held for the phone's lifetime
//!   and zeroized when it exits; it signs for this provider's realm only;
//! - `Expires: 60` (the providers' cap for Bearer registrations, AUTH.md §4), or less.
//!
//! Device keys: when the address has a device key on chain, the provider accepts only that key.
//! [`signing_address`] then names it if this wallet holds it as one of its accounts; a device
//! key kept elsewhere (another device, hardware) is not supported yet and is a clear error.
//!
//! The headless `krypton phone --wallet` and the desktop app both build their account here.

use std::sync::Arc;

use krypton_chain::RpcClient;
use krypton_chain::krypton::{ContractError, KryptonContract, QueryKind, QueryValue};
use krypton_wallet::{Nep6Wallet, PrivateKey, PublicKey, ScriptHash};

use crate::{AccountConfig, WalletSigner};

/// The registration expiry a Bearer account asks for (the providers' cap).
pub const BEARER_EXPIRES: u32 = 60;

/// Why a wallet address cannot be a phone account; each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletAccountError {
    /// Not an N3 address.
    #[error("{0:?} is not a valid N3 address")]
    BadAddress(String),
    /// The chain could not be asked.
    #[error(transparent)]
    Chain(#[from] ContractError),
    /// The address has no provider on chain.
    #[error(
        "{0} is not registered with a provider on chain: register with one first (`krypton providers` lists them)"
    )]
    NotRegistered(String),
    /// The address's provider undeployed itself.
    #[error(
        "{address}'s provider {provider} is not deployed on chain any more (it has no location): register with a deployed provider"
    )]
    ProviderGone {
        /// The user.
        address: String,
        /// The provider.
        provider: String,
    },
    /// The contract answered something this client does not understand.
    #[error("the contract answered {answer} for the {what} of {address}")]
    Unexpected {
        /// The user.
        address: String,
        /// What was asked.
        what: &'static str,
        /// What came back.
        answer: String,
    },
    /// The on-chain device key is not in this wallet.
    #[error(
        "{address} has a device key on chain ({device_key}) that this wallet does not hold: the provider accepts only that key; import it into this wallet, or remove it with `krypton --account {address} device-key clear`"
    )]
    DeviceKeyElsewhere {
        /// The user.
        address: String,
        /// The device key (hex).
        device_key: String,
    },
}

/// What the chain says about a registered address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChain {
    /// The provider's address.
    pub provider: String,
    /// The provider's location: the SIP realm and default proxy.
    pub location: String,
    /// The user's public device id (RFC 4122), the `+sip.instance`.
    pub uuid: String,
    /// The device key the address authorised, if any.
    pub device_key: Option<PublicKey>,
}

fn parse(address: &str) -> Result<ScriptHash, WalletAccountError> {
    ScriptHash::parse_any(address).map_err(|_| WalletAccountError::BadAddress(address.into()))
}

/// `query provider|location|uuid|key` for `address`.
pub async fn lookup(
    rpc: &RpcClient,
    contract: &KryptonContract,
    address: &str,
) -> Result<OnChain, WalletAccountError> {
    let user = parse(address)?;
    let unexpected = |what, answer: &QueryValue| WalletAccountError::Unexpected {
        address: address.into(),
        what,
        answer: format!("{answer:?}"),
    };
    let provider = match contract.query(rpc, QueryKind::Provider, &user).await? {
        Some(QueryValue::Account(p)) => p.to_address(),
        None => return Err(WalletAccountError::NotRegistered(address.into())),
        Some(other) => return Err(unexpected("provider", &other)),
    };
    let location = match contract.query(rpc, QueryKind::Location, &user).await? {
        Some(QueryValue::Text(l)) if !l.trim().is_empty() => l.trim().to_string(),
        _ => {
            return Err(WalletAccountError::ProviderGone {
                address: address.into(),
                provider,
            });
        }
    };
    let uuid = match contract.query(rpc, QueryKind::Uuid, &user).await? {
        Some(QueryValue::Text(u)) if !u.trim().is_empty() => u.trim().to_string(),
        Some(other) => return Err(unexpected("uuid", &other)),
        None => return Err(WalletAccountError::NotRegistered(address.into())),
    };
    let device_key = match contract.query(rpc, QueryKind::Key, &user).await? {
        Some(QueryValue::Key(k)) => Some(k),
        _ => None,
    };
    Ok(OnChain {
        provider,
        location,
        uuid,
        device_key,
    })
}

/// The wallet account whose key proves `address`: its own, or the on-chain device key when
/// this wallet holds it.
pub fn signing_address(
    wallet: &Nep6Wallet,
    address: &str,
    device_key: Option<&PublicKey>,
) -> Result<String, WalletAccountError> {
    let own_key = wallet
        .account(address)
        .and_then(|a| a.verification_script())
        .and_then(|s| s.single_key());
    match device_key {
        Some(dk) if own_key.as_ref().map(PublicKey::to_compressed) != Some(dk.to_compressed()) => {
            let device_address = dk.address();
            match wallet.account(&device_address) {
                Some(a) if !a.is_watch_only() => Ok(device_address),
                _ => Err(WalletAccountError::DeviceKeyElsewhere {
                    address: address.into(),
                    device_key: dk.to_hex(),
                }),
            }
        }
        _ => Ok(address.to_string()),
    }
}

/// Front-end choices for a wallet account.
#[derive(Debug, Clone, Default)]
pub struct WalletAccountOptions {
    /// Outbound proxy URI instead of `sip:LOCATION;transport=udp`.
    pub proxy: Option<String>,
    /// Registration expiry (capped at [`BEARER_EXPIRES`]).
    pub expires: Option<u32>,
    /// Keep-alive interval in seconds.
    pub keepalive: Option<u64>,
}

/// The phone account for `address` registered at `chain`'s provider, proving itself with `key`.
pub fn account_config(
    address: &str,
    chain: &OnChain,
    key: PrivateKey,
    opts: &WalletAccountOptions,
) -> AccountConfig {
    let location = chain.location.trim();
    AccountConfig {
        id: address.to_string(),
        aor: format!("sip:{address}@{location}"),
        proxy: Some(
            opts.proxy
                .clone()
                .unwrap_or_else(|| format!("sip:{location};transport=udp")),
        ),
        username: None,
        password_file: None,
        display_name: None,
        register: true,
        expires: Some(opts.expires.unwrap_or(BEARER_EXPIRES).min(BEARER_EXPIRES)),
        keepalive: opts.keepalive,
        krypton: true,
        tls_ca: None,
        instance: Some(format!("urn:uuid:{}", chain.uuid.trim())),
        bearer: Some(Arc::new(WalletSigner::new(key, address, location))),
        credentials: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet_auth::BearerChallenge;

    fn chain() -> OnChain {
        OnChain {
            provider: "NProvider".into(),
            location: "127.0.0.1:5070".into(),
            uuid: "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b".into(),
            device_key: None,
        }
    }

    #[test]
    fn the_account_follows_the_chain() {
        let key = PrivateKey::generate();
        let key_hex = hex_of(&key);
        let address = key.public_key().address();
        let opts = WalletAccountOptions {
            expires: Some(600),
            ..Default::default()
        };
        let a = account_config(&address, &chain(), key, &opts);
        assert_eq!(a.aor, format!("sip:{address}@127.0.0.1:5070"));
        assert_eq!(a.proxy.as_deref(), Some("sip:127.0.0.1:5070;transport=udp"));
        assert_eq!(a.expires, Some(60));
        assert_eq!(
            a.instance.as_deref(),
            Some("urn:uuid:6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")
        );
        assert!(a.password_file.is_none());
        let sip = a.to_account().unwrap();
        assert_eq!(sip.aor.domain, "127.0.0.1:5070");
        assert_eq!(sip.policy.expires, 60);
        // The signer signs for this realm only.
        let signer = a.bearer.as_ref().unwrap();
        let mut ch = BearerChallenge {
            realm: "127.0.0.1:5070".into(),
            scope: "krypton".into(),
            nonce: "n".into(),
        };
        assert!(signer.token(&ch, "cid", "urn:uuid:x").is_ok());
        ch.realm = "127.0.0.1:5071".into();
        assert!(signer.token(&ch, "cid", "urn:uuid:x").is_err());
        let debug = format!("{a:?}");
        assert!(
            debug.contains("<redacted>") && !debug.contains(&key_hex),
            "{debug}"
        );

        let opts = WalletAccountOptions {
            proxy: Some("sip:127.0.0.1:5070;transport=tcp".into()),
            expires: Some(30),
            keepalive: None,
        };
        let a = account_config(&address, &chain(), PrivateKey::generate(), &opts);
        assert_eq!(a.proxy.as_deref(), Some("sip:127.0.0.1:5070;transport=tcp"));
        assert_eq!(a.expires, Some(30));
    }

    fn hex_of(key: &PrivateKey) -> String {
        key.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_device_key_must_be_in_the_wallet() {
        let fast = krypton_wallet::ScryptParams { n: 16, r: 1, p: 1 };
        let mut w = Nep6Wallet::with_scrypt(fast).unwrap();
        let own = w
            .add_account_from_key(&PrivateKey::generate(), "pw", "own")
            .unwrap();
        let device = PrivateKey::generate();
        // No device key, or the address's own key: the address signs.
        assert_eq!(signing_address(&w, &own, None).unwrap(), own);
        // A device key this wallet lacks: a clear error.
        let err = signing_address(&w, &own, Some(&device.public_key())).unwrap_err();
        assert!(err.to_string().contains("device-key clear"), "{err}");
        // Once the wallet holds it, it signs.
        let device_address = w.add_account_from_key(&device, "pw", "device").unwrap();
        assert_eq!(
            signing_address(&w, &own, Some(&device.public_key())).unwrap(),
            device_address
        );
        assert!(matches!(
            parse("not an address"),
            Err(WalletAccountError::BadAddress(_))
        ));
    }
}
