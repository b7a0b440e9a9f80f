//! Build, fee, sign, send and confirm transactions, reporting progress.

use std::time::Duration;

use krypton_wallet::{PrivateKey, ScriptHash, VerificationScript};

use crate::rpc::{ApplicationLog, RpcClient, RpcError, Version};
use crate::tx::{Signer, Transaction, Witness, WitnessScope};

/// A failure while preparing, sending or confirming a transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// Talking to the node failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The test invocation FAULTed: nothing was sent and nothing was spent.
    #[error("the transaction would fail, so it was not sent: {reason}")]
    WouldFault {
        /// The VM's reason (the contract's abort message when it gave one).
        reason: String,
    },
    /// The transaction executed on chain but FAULTed: its fees are spent, its effects are not.
    #[error("transaction {txid} failed on chain in block {block}: {reason}")]
    Faulted {
        /// Transaction id.
        txid: String,
        /// Block that holds it.
        block: u32,
        /// The VM's reason.
        reason: String,
    },
    /// The account cannot pay.
    #[error(
        "not enough GAS: this needs {needed} GAS (amount and fees) but {account} holds {available} GAS; add GAS to it (on the devnet: krypton devnet fund {account})"
    )]
    InsufficientGas {
        /// Paying address.
        account: String,
        /// Needed, formatted in GAS.
        needed: String,
        /// Available, formatted in GAS.
        available: String,
    },
    /// No confirmation before the wait timed out.
    #[error(
        "transaction {txid} was sent but is not confirmed after {waited:?}; it stays valid until block {valid_until_block}: check it later with its id"
    )]
    NotConfirmed {
        /// Transaction id.
        txid: String,
        /// How long we waited.
        waited: Duration,
        /// Last valid block.
        valid_until_block: u32,
    },
    /// The signing keys do not match the account's verification script.
    #[error("cannot sign for {account}: {reason}")]
    CannotSign {
        /// The account.
        account: String,
        /// Why.
        reason: String,
    },
}

/// Progress of a transaction, reported while waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Fees are known and the transaction is signed.
    Signed {
        /// Transaction id.
        txid: String,
        /// System fee (datoshi).
        system_fee: i64,
        /// Network fee (datoshi).
        network_fee: i64,
    },
    /// The node accepted it into its mempool.
    Submitted {
        /// Transaction id.
        txid: String,
        /// Last block that may include it.
        valid_until_block: u32,
    },
    /// It is in a block.
    Included {
        /// Transaction id.
        txid: String,
        /// Block height.
        block: u32,
    },
    /// The VM ran it: `HALT` or `FAULT`.
    Executed {
        /// Transaction id.
        txid: String,
        /// `HALT` or `FAULT`.
        vm_state: String,
    },
}

/// A confirmed, successful transaction.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    /// Transaction id.
    pub txid: String,
    /// Block height.
    pub block: u32,
    /// System fee paid (datoshi).
    pub system_fee: i64,
    /// Network fee paid (datoshi).
    pub network_fee: i64,
    /// Its execution log (stack, notifications).
    pub log: ApplicationLog,
}

impl TxOutcome {
    /// Total fees (datoshi).
    pub fn fees(&self) -> i64 {
        self.system_fee + self.network_fee
    }
}

/// An account that can sign: its verification script and the keys it needs.
pub struct Account<'k> {
    script: VerificationScript,
    keys: Vec<&'k PrivateKey>,
}

impl<'k> Account<'k> {
    /// A single-signature account of `key`.
    pub fn single(key: &'k PrivateKey) -> Self {
        Account {
            script: key.public_key().verification_script(),
            keys: vec![key],
        }
    }

    /// An account with an arbitrary verification script (e.g. m-of-n multisig) and the local keys.
    pub fn with_script(script: VerificationScript, keys: Vec<&'k PrivateKey>) -> Self {
        Account { script, keys }
    }

    /// The account's script hash.
    pub fn script_hash(&self) -> ScriptHash {
        self.script.script_hash()
    }

    fn signatures_required(&self) -> Result<usize, ChainError> {
        self.script
            .signatures_required()
            .map_err(|e| ChainError::CannotSign {
                account: self.script_hash().to_address(),
                reason: e.to_string(),
            })
    }

    /// Signs `message` with the keys the script needs, in script order.
    fn witness(&self, message: &[u8]) -> Result<Witness, ChainError> {
        let cannot = |reason: &str| ChainError::CannotSign {
            account: self.script_hash().to_address(),
            reason: reason.to_string(),
        };
        let sigs: Vec<[u8; 64]> = if let Some(pk) = self.script.single_key() {
            let k = self
                .keys
                .iter()
                .find(|k| k.public_key() == pk)
                .ok_or_else(|| cannot("its key is not in this wallet"))?;
            vec![k.sign(message)]
        } else {
            let ms = self
                .script
                .as_multisig()
                .map_err(|e| cannot(&e.to_string()))?;
            let mut sigs = Vec::new();
            for pk in &ms.keys {
                if sigs.len() == ms.m {
                    break;
                }
                if let Some(k) = self.keys.iter().find(|k| k.public_key() == *pk) {
                    sigs.push(k.sign(message));
                }
            }
            if sigs.len() < ms.m {
                return Err(cannot(&format!(
                    "needs {} signatures, this wallet holds {} of the keys",
                    ms.m,
                    sigs.len()
                )));
            }
            sigs
        };
        Ok(Witness {
            invocation: Witness::invocation_for(&sigs),
            verification: self.script.as_bytes().to_vec(),
        })
    }
}

/// Extracts the contract's own abort reason from a VM exception, when there is one.
pub fn fault_reason(exception: &str) -> String {
    match exception.find("Reason: ") {
        Some(i) => exception[i + "Reason: ".len()..].trim().to_string(),
        None => exception.trim().to_string(),
    }
}

/// Prepares and sends transactions on one network.
pub struct Sender<'c> {
    rpc: &'c RpcClient,
    version: Version,
    /// How long [`Sender::send`] waits for a confirmation.
    pub confirm_timeout: Duration,
}

impl<'c> Sender<'c> {
    /// Reads the network's settings with `getversion`.
    pub async fn connect(rpc: &'c RpcClient) -> Result<Self, ChainError> {
        let version = rpc.get_version().await?;
        let block = Duration::from_millis(version.protocol.ms_per_block.max(1));
        Ok(Sender {
            rpc,
            version,
            confirm_timeout: (block * 20).max(Duration::from_secs(30)),
        })
    }

    /// The node's protocol settings.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The RPC client.
    pub fn rpc(&self) -> &RpcClient {
        self.rpc
    }

    /// Builds and signs a transaction running `script`, signed by `account` with scope CalledByEntry.
    ///
    /// The system fee comes from a test invocation (which must HALT), the network fee from the node.
    /// `extra_gas` (datoshi) is GAS the script itself moves out of the account, for the balance check.
    pub async fn build(
        &self,
        script: Vec<u8>,
        account: &Account<'_>,
        extra_gas: i64,
    ) -> Result<Transaction, ChainError> {
        let signer = Signer {
            account: account.script_hash(),
            scope: WitnessScope::CalledByEntry,
        };
        if extra_gas > 0 {
            // Say "not enough GAS" rather than the VM's ASSERT when the amount alone is too much.
            self.check_gas(account.script_hash(), extra_gas).await?;
        }
        let inv = self.rpc.invoke_script(&script, &[signer]).await?;
        if !inv.halted() {
            return Err(ChainError::WouldFault {
                reason: fault_reason(inv.exception.as_deref().unwrap_or("FAULT")),
            });
        }
        let height = self.rpc.get_block_count().await?;
        let increment = self
            .version
            .protocol
            .max_valid_until_block_increment
            .clamp(2, 5760);
        let m = account.signatures_required()?;
        let mut tx = Transaction {
            nonce: rand_core::RngCore::next_u32(&mut rand_core::OsRng),
            system_fee: inv.gas_consumed,
            network_fee: 0,
            valid_until_block: height + increment - 1,
            signers: vec![signer],
            script,
            witnesses: vec![Witness {
                invocation: Witness::invocation_for(&vec![[0u8; 64]; m]),
                verification: account.script.as_bytes().to_vec(),
            }],
        };
        tx.network_fee = self.rpc.calculate_network_fee(&tx).await?;
        self.check_gas(
            account.script_hash(),
            tx.system_fee + tx.network_fee + extra_gas,
        )
        .await?;
        tx.witnesses = vec![account.witness(&tx.sign_data(self.version.protocol.network))?];
        Ok(tx)
    }

    async fn check_gas(&self, account: ScriptHash, needed: i64) -> Result<(), ChainError> {
        let balances = self.rpc.get_nep17_balances(&account).await?;
        let available = crate::nep17::amount_of(&balances, crate::nep17::Asset::Gas);
        if available < needed as i128 {
            return Err(ChainError::InsufficientGas {
                account: account.to_address(),
                needed: crate::nep17::format_amount(needed as i128, 8),
                available: crate::nep17::format_amount(available, 8),
            });
        }
        Ok(())
    }

    /// Sends a signed transaction and waits for its execution, reporting progress.
    pub async fn send(
        &self,
        tx: &Transaction,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<TxOutcome, ChainError> {
        let txid = tx.txid();
        progress(Progress::Signed {
            txid: txid.clone(),
            system_fee: tx.system_fee,
            network_fee: tx.network_fee,
        });
        if let Err(e) = self.rpc.send_raw_transaction(tx).await {
            // The node's "insufficient funds" names no figures: say how much is needed and held.
            if let (RpcError::Node { message, .. }, Some(payer)) = (&e, tx.signers.first())
                && message.to_lowercase().contains("insufficient funds")
            {
                self.check_gas(payer.account, tx.system_fee + tx.network_fee)
                    .await?;
            }
            return Err(e.into());
        }
        progress(Progress::Submitted {
            txid: txid.clone(),
            valid_until_block: tx.valid_until_block,
        });
        let poll = Duration::from_millis((self.version.protocol.ms_per_block / 2).clamp(20, 1000));
        let started = tokio::time::Instant::now();
        let log = loop {
            if let Some(log) = self.rpc.get_application_log(&txid).await? {
                break log;
            }
            if started.elapsed() >= self.confirm_timeout {
                return Err(ChainError::NotConfirmed {
                    txid,
                    waited: started.elapsed(),
                    valid_until_block: tx.valid_until_block,
                });
            }
            tokio::time::sleep(poll).await;
        };
        let block = self.rpc.get_transaction_height(&txid).await?;
        progress(Progress::Included {
            txid: txid.clone(),
            block,
        });
        progress(Progress::Executed {
            txid: txid.clone(),
            vm_state: log.vm_state.clone(),
        });
        if log.vm_state != "HALT" {
            return Err(ChainError::Faulted {
                txid,
                block,
                reason: fault_reason(log.exception.as_deref().unwrap_or("FAULT")),
            });
        }
        Ok(TxOutcome {
            txid,
            block,
            system_fee: tx.system_fee,
            network_fee: tx.network_fee,
            log,
        })
    }

    /// [`Self::build`] then [`Self::send`].
    pub async fn invoke(
        &self,
        script: Vec<u8>,
        account: &Account<'_>,
        extra_gas: i64,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<TxOutcome, ChainError> {
        let tx = self.build(script, account, extra_gas).await?;
        self.send(&tx, progress).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_reason_is_extracted() {
        assert_eq!(
            fault_reason(
                "at instruction 212 (ABORTMSG): ABORTMSG is executed. Reason: provider already deployed"
            ),
            "provider already deployed"
        );
        assert_eq!(
            fault_reason("ASSERT is executed with false result."),
            "ASSERT is executed with false result."
        );
    }

    #[test]
    fn multisig_witness_signs_in_key_order_and_needs_m_keys() {
        let a = PrivateKey::generate();
        let b = PrivateKey::generate();
        let script = VerificationScript::multisig(2, &[a.public_key(), b.public_key()]).unwrap();
        let acc = Account::with_script(script.clone(), vec![&b, &a]);
        let w = acc.witness(b"msg").unwrap();
        assert_eq!(w.invocation.len(), 132);
        let ms = script.as_multisig().unwrap();
        assert!(ms.keys[0].verify(b"msg", &w.invocation[2..66]));
        assert!(ms.keys[1].verify(b"msg", &w.invocation[68..132]));
        let short = Account::with_script(script, vec![&a]);
        assert!(matches!(
            short.witness(b"msg"),
            Err(ChainError::CannotSign { .. })
        ));
    }

    #[test]
    fn single_witness_needs_the_right_key() {
        let a = PrivateKey::generate();
        let b = PrivateKey::generate();
        let acc = Account::with_script(a.public_key().verification_script(), vec![&b]);
        assert!(acc.witness(b"m").is_err());
        let w = Account::single(&a).witness(b"m").unwrap();
        assert!(a.public_key().verify(b"m", &w.invocation[2..]));
    }
}
