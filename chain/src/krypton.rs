//! Typed client of the KRYPTON contract (see `contract/README.md`) and of contract deployment.

use krypton_wallet::{PublicKey, ScriptHash};

use crate::rpc::{Notification, RpcClient, RpcError};
use crate::script::{Arg, ScriptBuilder};
use crate::sender::fault_reason;
use crate::stack::{StackError, StackItem};

/// ContractManagement native contract (`0xfffdc93764dbaddd97c48f252a53ea4643faa3fd`).
pub const CONTRACT_MANAGEMENT: ScriptHash = ScriptHash([
    0xfd, 0xa3, 0xfa, 0x43, 0x46, 0xea, 0x53, 0x2a, 0x25, 0x8f, 0xc4, 0x97, 0xdd, 0xad, 0xdb, 0x64,
    0x37, 0xc9, 0xfd, 0xff,
]);

/// A read of the KRYPTON contract failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// Talking to the node failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The contract faulted.
    #[error("the KRYPTON contract refused: {0}")]
    Fault(String),
    /// The contract returned something unexpected: probably a different contract at that hash.
    #[error(
        "the contract at {contract} returned an unexpected value ({detail}); is --contract the KRYPTON contract?"
    )]
    Unexpected {
        /// Contract hash.
        contract: ScriptHash,
        /// What was wrong.
        detail: String,
    },
}

/// What `query` can ask about a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// The user's public device id.
    Uuid,
    /// The user's provider.
    Provider,
    /// The location (SIP proxy) of the user's provider.
    Location,
    /// The user's device key.
    Key,
}

impl QueryKind {
    /// The contract's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryKind::Uuid => "uuid",
            QueryKind::Provider => "provider",
            QueryKind::Location => "location",
            QueryKind::Key => "key",
        }
    }
    /// Parses `uuid|provider|location|key`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "uuid" => QueryKind::Uuid,
            "provider" => QueryKind::Provider,
            "location" => QueryKind::Location,
            "key" => QueryKind::Key,
            _ => return None,
        })
    }
}

/// A typed answer to `query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryValue {
    /// uuid or location.
    Text(String),
    /// provider.
    Account(ScriptHash),
    /// device key.
    Key(PublicKey),
}

/// A deployed provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Provider account.
    pub provider: ScriptHash,
    /// Its outbound SIP proxy (host[:port] or SRV name).
    pub location: String,
}

/// A KRYPTON contract event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KryptonEvent {
    /// A provider deployed itself.
    ProviderDeployed {
        /// Provider.
        provider: ScriptHash,
        /// Location.
        location: String,
    },
    /// A provider left.
    ProviderUndeployed {
        /// Provider.
        provider: ScriptHash,
    },
    /// A user registered (or re-registered) with a provider.
    UserRegistered {
        /// User.
        user: ScriptHash,
        /// Provider.
        provider: ScriptHash,
        /// Public device id.
        uuid: String,
    },
    /// A user unregistered.
    UserUnregistered {
        /// User.
        user: ScriptHash,
    },
    /// A user's device key was set (`Some`) or cleared (`None`).
    DeviceKeyChanged {
        /// User.
        user: ScriptHash,
        /// The new key.
        key: Option<PublicKey>,
    },
}

impl KryptonEvent {
    /// Decodes a notification; `None` when it is not a known KRYPTON event.
    pub fn from_notification(n: &Notification) -> Option<Result<Self, StackError>> {
        Self::decode(n).transpose()
    }

    fn decode(n: &Notification) -> Result<Option<Self>, StackError> {
        let arg = |i: usize| {
            n.state
                .get(i)
                .ok_or_else(|| StackError(format!("{} has too few arguments", n.event)))
        };
        Ok(Some(match n.event.as_str() {
            "ProviderDeployed" => KryptonEvent::ProviderDeployed {
                provider: arg(0)?.as_hash160()?,
                location: arg(1)?.as_string()?,
            },
            "ProviderUndeployed" => KryptonEvent::ProviderUndeployed {
                provider: arg(0)?.as_hash160()?,
            },
            "UserRegistered" => KryptonEvent::UserRegistered {
                user: arg(0)?.as_hash160()?,
                provider: arg(1)?.as_hash160()?,
                uuid: arg(2)?.as_string()?,
            },
            "UserUnregistered" => KryptonEvent::UserUnregistered {
                user: arg(0)?.as_hash160()?,
            },
            "DeviceKeyChanged" => KryptonEvent::DeviceKeyChanged {
                user: arg(0)?.as_hash160()?,
                key: arg(1)?.optional(|k| {
                    PublicKey::from_bytes(k.as_bytes()?).map_err(|e| StackError(e.to_string()))
                })?,
            },
            _ => return Ok(None),
        }))
    }
}

/// The KRYPTON contract at a given hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KryptonContract {
    /// Contract hash.
    pub hash: ScriptHash,
}

impl KryptonContract {
    /// The contract at `hash`.
    pub fn new(hash: ScriptHash) -> Self {
        KryptonContract { hash }
    }

    fn call(&self, method: &str, args: &[Arg]) -> Vec<u8> {
        let mut sb = ScriptBuilder::new();
        sb.contract_call(&self.hash, method, args);
        sb.into_bytes()
    }

    /// Script: `deploy(provider, location)`.
    pub fn deploy_script(&self, provider: &ScriptHash, location: &str) -> Vec<u8> {
        self.call(
            "deploy",
            &[Arg::Hash160(*provider), Arg::String(location.into())],
        )
    }
    /// Script: `undeploy(provider)`.
    pub fn undeploy_script(&self, provider: &ScriptHash) -> Vec<u8> {
        self.call("undeploy", &[Arg::Hash160(*provider)])
    }
    /// Script: `register(user, provider, uuid)`.
    pub fn register_script(&self, user: &ScriptHash, provider: &ScriptHash, uuid: &str) -> Vec<u8> {
        self.call(
            "register",
            &[
                Arg::Hash160(*user),
                Arg::Hash160(*provider),
                Arg::String(uuid.into()),
            ],
        )
    }
    /// Script: `unregister(user)`.
    pub fn unregister_script(&self, user: &ScriptHash) -> Vec<u8> {
        self.call("unregister", &[Arg::Hash160(*user)])
    }
    /// Script: `setDeviceKey(user, key)`.
    pub fn set_device_key_script(&self, user: &ScriptHash, key: &PublicKey) -> Vec<u8> {
        self.call(
            "setDeviceKey",
            &[
                Arg::Hash160(*user),
                Arg::Bytes(key.to_compressed().to_vec()),
            ],
        )
    }
    /// Script: `clearDeviceKey(user)`.
    pub fn clear_device_key_script(&self, user: &ScriptHash) -> Vec<u8> {
        self.call("clearDeviceKey", &[Arg::Hash160(*user)])
    }
    /// Script: `update(nef, manifest, null)` (owner only).
    pub fn update_script(&self, nef: &[u8], manifest: &str) -> Vec<u8> {
        self.call(
            "update",
            &[
                Arg::Bytes(nef.to_vec()),
                Arg::String(manifest.into()),
                Arg::Null,
            ],
        )
    }

    async fn read(
        &self,
        rpc: &RpcClient,
        method: &str,
        args: &[Arg],
    ) -> Result<StackItem, ContractError> {
        let inv = rpc.invoke_function(&self.hash, method, args, &[]).await?;
        if !inv.halted() {
            return Err(ContractError::Fault(fault_reason(
                inv.exception.as_deref().unwrap_or("FAULT"),
            )));
        }
        inv.stack
            .into_iter()
            .next()
            .ok_or_else(|| self.unexpected("empty stack"))
    }

    fn unexpected(&self, detail: impl ToString) -> ContractError {
        ContractError::Unexpected {
            contract: self.hash,
            detail: detail.to_string(),
        }
    }

    /// `version()`.
    pub async fn version(&self, rpc: &RpcClient) -> Result<i128, ContractError> {
        self.read(rpc, "version", &[])
            .await?
            .as_int()
            .map_err(|e| self.unexpected(e))
    }

    /// `owner()`.
    pub async fn owner(&self, rpc: &RpcClient) -> Result<ScriptHash, ContractError> {
        self.read(rpc, "owner", &[])
            .await?
            .as_hash160()
            .map_err(|e| self.unexpected(e))
    }

    /// `query(kind, user)`; `None` when absent.
    pub async fn query(
        &self,
        rpc: &RpcClient,
        kind: QueryKind,
        user: &ScriptHash,
    ) -> Result<Option<QueryValue>, ContractError> {
        let item = self
            .read(
                rpc,
                "query",
                &[Arg::String(kind.as_str().into()), Arg::Hash160(*user)],
            )
            .await?;
        let v = item.optional(|i| {
            Ok(match kind {
                QueryKind::Uuid | QueryKind::Location => QueryValue::Text(i.as_string()?),
                QueryKind::Provider => QueryValue::Account(i.as_hash160()?),
                QueryKind::Key => QueryValue::Key(
                    PublicKey::from_bytes(i.as_bytes()?).map_err(|e| StackError(e.to_string()))?,
                ),
            })
        });
        v.map_err(|e| self.unexpected(e))
    }

    /// `providers()`: every deployed provider with its location.
    pub async fn providers(&self, rpc: &RpcClient) -> Result<Vec<ProviderInfo>, ContractError> {
        let item = self.read(rpc, "providers", &[]).await?;
        let parse = || -> Result<Vec<ProviderInfo>, StackError> {
            let mut out = Vec::new();
            for p in item.as_array()? {
                let pair = p.as_array()?;
                if pair.len() != 2 {
                    return Err(StackError("provider entry is not a pair".into()));
                }
                out.push(ProviderInfo {
                    provider: pair[0].as_hash160()?,
                    location: pair[1].as_string()?,
                });
            }
            Ok(out)
        };
        parse().map_err(|e| self.unexpected(e))
    }
}

/// Script: `ContractManagement.deploy(nef, manifest)`.
pub fn contract_deployment_script(nef: &[u8], manifest: &str) -> Vec<u8> {
    let mut sb = ScriptBuilder::new();
    sb.contract_call(
        &CONTRACT_MANAGEMENT,
        "deploy",
        &[Arg::Bytes(nef.to_vec()), Arg::String(manifest.into())],
    );
    sb.into_bytes()
}

/// The hash a contract gets when `sender` deploys it: hash of `ABORT ‖ push sender ‖ push nef checksum ‖ push name`.
pub fn contract_hash(sender: &ScriptHash, nef: &[u8], name: &str) -> Option<ScriptHash> {
    let checksum = u32::from_le_bytes(nef.get(nef.len().checked_sub(4)?..)?.try_into().ok()?);
    let mut sb = ScriptBuilder::new();
    sb.op(0x38)
        .push_bytes(sender.as_bytes())
        .push_int(checksum as i128)
        .push_bytes(name.as_bytes());
    Some(ScriptHash::of_script(&sb.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::Notification;
    use crate::stack::StackItem;

    #[test]
    fn contract_management_hash() {
        assert_eq!(
            CONTRACT_MANAGEMENT.to_hex(),
            "0xfffdc93764dbaddd97c48f252a53ea4643faa3fd"
        );
    }

    #[test]
    fn events_decode_and_reject_malformed() {
        let h = ScriptHash([1; 20]);
        let n = Notification {
            contract: h,
            event: "UserRegistered".into(),
            state: vec![
                StackItem::Bytes(vec![2; 20]),
                StackItem::Bytes(vec![3; 20]),
                StackItem::Bytes(b"8c2f3f4c-9d53-4c8e-9a11-0d2c5e6c1a7b".to_vec()),
            ],
        };
        assert_eq!(
            KryptonEvent::from_notification(&n).unwrap().unwrap(),
            KryptonEvent::UserRegistered {
                user: ScriptHash([2; 20]),
                provider: ScriptHash([3; 20]),
                uuid: "8c2f3f4c-9d53-4c8e-9a11-0d2c5e6c1a7b".into()
            }
        );
        let short = Notification {
            state: vec![StackItem::Bytes(vec![2; 20])],
            ..n.clone()
        };
        assert!(KryptonEvent::from_notification(&short).unwrap().is_err());
        let other = Notification {
            event: "Transfer".into(),
            ..n
        };
        assert!(KryptonEvent::from_notification(&other).is_none());
    }
}
