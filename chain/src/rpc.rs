//! Async N3 JSON-RPC client with several endpoints and failover.
//!
//! Transport failures (connection refused, timeout, HTTP 5xx, a reply that is not JSON-RPC) move on
//! to the next endpoint; an error answered by a node (a JSON-RPC `error` object) is returned as is,
//! since another node would answer the same.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use krypton_wallet::ScriptHash;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::script::Arg;
use crate::stack::StackItem;
use crate::tx::{Signer, Transaction};

/// An RPC failure.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// No endpoint could be reached.
    #[error(
        "cannot reach the NEO RPC node ({details}); check that it is running and the URL is right, or choose another network with --network"
    )]
    Unreachable {
        /// What happened at each endpoint.
        details: String,
    },
    /// The node answered with an error.
    #[error("the NEO node refused the request: {message} (code {code})")]
    Node {
        /// JSON-RPC error code.
        code: i64,
        /// The node's message (with its `data` when present).
        message: String,
    },
    /// The node's answer could not be understood.
    #[error("unexpected answer from the NEO node to {method}: {reason}")]
    BadResponse {
        /// The RPC method.
        method: String,
        /// What was wrong.
        reason: String,
    },
}

/// The protocol settings a node reports in `getversion`. Read them; never hard-code them.
#[derive(Debug, Clone, Deserialize)]
pub struct Protocol {
    /// Network magic (signing domain).
    pub network: u32,
    /// Address version byte.
    #[serde(rename = "addressversion")]
    pub address_version: u8,
    /// Block time in milliseconds.
    #[serde(rename = "msperblock")]
    pub ms_per_block: u64,
    /// Largest allowed `valid_until_block - height`.
    #[serde(rename = "maxvaliduntilblockincrement")]
    pub max_valid_until_block_increment: u32,
    /// Blocks kept for traceability.
    #[serde(rename = "maxtraceableblocks", default)]
    pub max_traceable_blocks: u32,
}

/// The answer to `getversion`.
#[derive(Debug, Clone, Deserialize)]
pub struct Version {
    /// Node software, e.g. `/NEO-GO:0.116.0/`.
    #[serde(rename = "useragent", default)]
    pub user_agent: String,
    /// Protocol settings.
    pub protocol: Protocol,
}

/// Result of a test invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `HALT` or `FAULT`.
    pub state: String,
    /// GAS the script consumed (datoshi): the system fee it needs.
    pub gas_consumed: i64,
    /// The VM's exception message on FAULT.
    pub exception: Option<String>,
    /// Result stack.
    pub stack: Vec<StackItem>,
}

impl Invocation {
    /// True when the VM halted normally.
    pub fn halted(&self) -> bool {
        self.state == "HALT"
    }
}

/// One contract notification.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Emitting contract.
    pub contract: ScriptHash,
    /// Event name.
    pub event: String,
    /// Event arguments.
    pub state: Vec<StackItem>,
}

/// Execution result of a transaction (`getapplicationlog`).
#[derive(Debug, Clone)]
pub struct ApplicationLog {
    /// `HALT` or `FAULT`.
    pub vm_state: String,
    /// The exception on FAULT.
    pub exception: Option<String>,
    /// GAS consumed (datoshi).
    pub gas_consumed: i64,
    /// Result stack.
    pub stack: Vec<StackItem>,
    /// Notifications, in order.
    pub notifications: Vec<Notification>,
}

/// A NEP-17 balance.
#[derive(Debug, Clone)]
pub struct Nep17Balance {
    /// Token contract.
    pub asset: ScriptHash,
    /// Token symbol when the node reports it.
    pub symbol: Option<String>,
    /// Decimals when the node reports them.
    pub decimals: Option<u32>,
    /// Amount in the token's smallest unit.
    pub amount: i128,
    /// Block of the last change.
    pub last_updated_block: u64,
}

/// A NEP-17 transfer from `getnep17transfers`.
#[derive(Debug, Clone)]
pub struct Nep17Transfer {
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// Token contract.
    pub asset: ScriptHash,
    /// The other party; `None` for mints and fee burns.
    pub counterparty: Option<String>,
    /// Amount in the token's smallest unit.
    pub amount: i128,
    /// Block height.
    pub block: u64,
    /// Transaction hash (for fee burns neo-go gives the block hash here).
    pub tx_hash: String,
    /// True for incoming.
    pub received: bool,
}

/// A storage entry from `findstorage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageEntry {
    /// Full key (without the contract id).
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
}

/// N3 JSON-RPC client over one or more endpoints.
#[derive(Debug)]
pub struct RpcClient {
    http: reqwest::Client,
    endpoints: Vec<String>,
    preferred: AtomicUsize,
}

fn bad(method: &str, reason: impl Into<String>) -> RpcError {
    RpcError::BadResponse {
        method: method.into(),
        reason: reason.into(),
    }
}

/// Reads the fields of one JSON object in a node's reply; errors name the RPC method.
#[derive(Clone, Copy)]
struct Reply<'a> {
    v: &'a Value,
    method: &'static str,
}

impl<'a> Reply<'a> {
    fn new(v: &'a Value, method: &'static str) -> Self {
        Reply { v, method }
    }

    fn str(self, field: &str) -> Option<&'a str> {
        self.v.get(field).and_then(Value::as_str)
    }

    /// A string field, empty when absent.
    fn text(self, field: &str) -> String {
        self.str(field).unwrap_or_default().to_string()
    }

    /// An unsigned number field, 0 when absent.
    fn u64(self, field: &str) -> u64 {
        self.v.get(field).and_then(Value::as_u64).unwrap_or(0)
    }

    /// An integer sent as a string or a number (fees, GAS amounts).
    fn int<T: std::str::FromStr>(self, field: &str) -> Result<T, RpcError> {
        let s = match self.v.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(bad(self.method, format!("missing {field}"))),
        };
        s.parse()
            .map_err(|_| bad(self.method, format!("{field} is not an integer")))
    }

    /// A `0x…` script hash.
    fn hash(self, field: &str) -> Result<ScriptHash, RpcError> {
        self.str(field)
            .and_then(|s| ScriptHash::from_hex(s).ok())
            .ok_or_else(|| bad(self.method, format!("bad {field}")))
    }

    /// Base64 bytes.
    fn bytes(self, field: &str) -> Result<Vec<u8>, RpcError> {
        self.str(field)
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| bad(self.method, format!("bad {field}")))
    }

    /// The objects of an array field (none when absent).
    fn items(self, field: &str) -> impl Iterator<Item = Reply<'a>> + 'a {
        let method = self.method;
        self.v
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(move |v| Reply { v, method })
    }

    /// A stack item field.
    fn stack_item(self, field: &str) -> Result<Option<StackItem>, RpcError> {
        self.v
            .get(field)
            .map(StackItem::from_json)
            .transpose()
            .map_err(|e| bad(self.method, e.to_string()))
    }

    /// The `stack` array (empty when absent).
    fn stack(self) -> Result<Vec<StackItem>, RpcError> {
        self.items("stack")
            .map(|r| StackItem::from_json(r.v).map_err(|e| bad(self.method, e.to_string())))
            .collect()
    }

    fn invocation(self) -> Result<Invocation, RpcError> {
        Ok(Invocation {
            state: self.text("state"),
            gas_consumed: self.int("gasconsumed")?,
            exception: self.str("exception").map(str::to_string),
            stack: self.stack()?,
        })
    }
}

impl RpcClient {
    /// A client over `endpoints`, tried in order with failover. Each request times out after `timeout`.
    pub fn new(endpoints: Vec<String>, timeout: Duration) -> Result<Self, RpcError> {
        if endpoints.is_empty() {
            return Err(RpcError::Unreachable {
                details: "no RPC endpoint configured".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| RpcError::Unreachable {
                details: e.to_string(),
            })?;
        Ok(RpcClient {
            http,
            endpoints,
            preferred: AtomicUsize::new(0),
        })
    }

    /// The endpoint that answered last.
    pub fn current_endpoint(&self) -> &str {
        &self.endpoints[self.preferred.load(Ordering::Relaxed) % self.endpoints.len()]
    }

    /// Calls `method` with `params`, failing over across endpoints on transport errors.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let start = self.preferred.load(Ordering::Relaxed);
        let mut details = Vec::new();
        for i in 0..self.endpoints.len() {
            let idx = (start + i) % self.endpoints.len();
            let url = &self.endpoints[idx];
            match self.call_one(url, &body).await {
                Ok(reply) => {
                    self.preferred.store(idx, Ordering::Relaxed);
                    if let Some(e) = reply.get("error").filter(|e| !e.is_null()) {
                        let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
                        let mut message = e
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        if let Some(d) = e.get("data").and_then(Value::as_str)
                            && !d.is_empty()
                            && !message.contains(d)
                        {
                            message = format!("{message}: {d}");
                        }
                        return Err(RpcError::Node { code, message });
                    }
                    return reply
                        .get("result")
                        .cloned()
                        .ok_or_else(|| bad(method, "no result"));
                }
                Err(why) => {
                    tracing::warn!(endpoint = %url, %method, error = %why, "RPC endpoint failed; trying the next");
                    details.push(format!("{url}: {why}"));
                }
            }
        }
        Err(RpcError::Unreachable {
            details: details.join("; "),
        })
    }

    async fn call_one(&self, url: &str, body: &Value) -> Result<Value, String> {
        let resp = self.http.post(url).json(body).send().await.map_err(|e| {
            if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "connection refused or host unreachable".to_string()
            } else {
                e.to_string()
            }
        })?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(format!("HTTP {status}"));
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|e| format!("not a JSON-RPC reply ({status}): {e}"))?;
        if v.get("result").is_none() && v.get("error").is_none() {
            return Err(format!("not a JSON-RPC reply ({status})"));
        }
        Ok(v)
    }

    /// A call whose result is a block height or count.
    async fn call_u32(&self, method: &'static str, params: Value) -> Result<u32, RpcError> {
        let v = self.call(method, params).await?;
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad(method, "not a block height"))
    }

    /// `getversion`: network magic, block time and limits.
    pub async fn get_version(&self) -> Result<Version, RpcError> {
        let v = self.call("getversion", json!([])).await?;
        serde_json::from_value(v).map_err(|e| bad("getversion", e.to_string()))
    }

    /// `getblockcount` (height + 1).
    pub async fn get_block_count(&self) -> Result<u32, RpcError> {
        self.call_u32("getblockcount", json!([])).await
    }

    /// `getblock HEIGHT true`: the hashes of the block's transactions, in block order.
    pub async fn get_block_tx_hashes(&self, height: u32) -> Result<Vec<String>, RpcError> {
        let m = "getblock";
        let v = self.call(m, json!([height, true])).await?;
        Reply::new(&v, m)
            .items("tx")
            .map(|t| {
                t.str("hash")
                    .map(str::to_string)
                    .ok_or_else(|| bad(m, "a transaction without hash"))
            })
            .collect()
    }

    /// `invokefunction` (test mode, nothing is sent).
    pub async fn invoke_function(
        &self,
        contract: &ScriptHash,
        method: &str,
        args: &[Arg],
        signers: &[Signer],
    ) -> Result<Invocation, RpcError> {
        let args: Vec<Value> = args.iter().map(Arg::to_rpc_json).collect();
        let signers: Vec<Value> = signers.iter().map(Signer::to_rpc_json).collect();
        let v = self
            .call(
                "invokefunction",
                json!([contract.to_hex(), method, args, signers]),
            )
            .await?;
        Reply::new(&v, "invokefunction").invocation()
    }

    /// `invokescript` (test mode).
    pub async fn invoke_script(
        &self,
        script: &[u8],
        signers: &[Signer],
    ) -> Result<Invocation, RpcError> {
        let signers: Vec<Value> = signers.iter().map(Signer::to_rpc_json).collect();
        let v = self
            .call("invokescript", json!([B64.encode(script), signers]))
            .await?;
        Reply::new(&v, "invokescript").invocation()
    }

    /// `calculatenetworkfee` for a transaction whose witnesses have the right shape.
    pub async fn calculate_network_fee(&self, tx: &Transaction) -> Result<i64, RpcError> {
        let v = self
            .call("calculatenetworkfee", json!([B64.encode(tx.to_bytes())]))
            .await?;
        Reply::new(&v, "calculatenetworkfee").int("networkfee")
    }

    /// `sendrawtransaction`; returns the txid the node computed.
    pub async fn send_raw_transaction(&self, tx: &Transaction) -> Result<String, RpcError> {
        let v = self
            .call("sendrawtransaction", json!([B64.encode(tx.to_bytes())]))
            .await?;
        Reply::new(&v, "sendrawtransaction")
            .str("hash")
            .map(str::to_string)
            .ok_or_else(|| bad("sendrawtransaction", "no hash"))
    }

    /// `getapplicationlog`; `Ok(None)` while the transaction is not in a block yet.
    pub async fn get_application_log(
        &self,
        txid: &str,
    ) -> Result<Option<ApplicationLog>, RpcError> {
        let v = match self.call("getapplicationlog", json!([txid])).await {
            Ok(v) => v,
            Err(RpcError::Node { code, message })
                if code == -100 || message.to_lowercase().contains("unknown") =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let m = "getapplicationlog";
        let exec = Reply::new(&v, m)
            .items("executions")
            .next()
            .ok_or_else(|| bad(m, "no executions"))?;
        let mut notifications = Vec::new();
        for n in exec.items("notifications") {
            let state = match n.stack_item("state")? {
                Some(StackItem::Array(a)) => a,
                Some(other) => vec![other],
                None => Vec::new(),
            };
            notifications.push(Notification {
                contract: n.hash("contract")?,
                event: n.text("eventname"),
                state,
            });
        }
        Ok(Some(ApplicationLog {
            vm_state: exec.text("vmstate"),
            exception: exec.str("exception").map(str::to_string),
            gas_consumed: exec.int("gasconsumed")?,
            stack: exec.stack()?,
            notifications,
        }))
    }

    /// `gettransactionheight`: the block that holds a transaction.
    pub async fn get_transaction_height(&self, txid: &str) -> Result<u32, RpcError> {
        self.call_u32("gettransactionheight", json!([txid])).await
    }

    /// `getnep17balances` of an address.
    pub async fn get_nep17_balances(
        &self,
        account: &ScriptHash,
    ) -> Result<Vec<Nep17Balance>, RpcError> {
        let m = "getnep17balances";
        let v = self.call(m, json!([account.to_address()])).await?;
        Reply::new(&v, m)
            .items("balance")
            .map(|b| {
                Ok(Nep17Balance {
                    asset: b.hash("assethash")?,
                    symbol: b.str("symbol").map(str::to_string),
                    decimals: b.int("decimals").ok(),
                    amount: b.int("amount")?,
                    last_updated_block: b.u64("lastupdatedblock"),
                })
            })
            .collect()
    }

    /// `getnep17transfers` of an address, from `since_ms` (Unix ms) until now.
    ///
    /// The end of the window is set an hour ahead: neo-go's default end is "now" in whole seconds,
    /// which hides transfers in a block stamped later in the current second.
    pub async fn get_nep17_transfers(
        &self,
        account: &ScriptHash,
        since_ms: u64,
    ) -> Result<Vec<Nep17Transfer>, RpcError> {
        let m = "getnep17transfers";
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(u64::MAX / 2);
        let v = self
            .call(
                m,
                json!([account.to_address(), since_ms, now_ms + 3_600_000]),
            )
            .await?;
        let mut out = Vec::new();
        for (field, received) in [("sent", false), ("received", true)] {
            for t in Reply::new(&v, m).items(field) {
                out.push(Nep17Transfer {
                    timestamp_ms: t.u64("timestamp"),
                    asset: t.hash("assethash")?,
                    counterparty: t.str("transferaddress").map(str::to_string),
                    amount: t.int("amount")?,
                    block: t.u64("blockindex"),
                    tx_hash: t.text("txhash"),
                    received,
                });
            }
        }
        out.sort_by_key(|t| (t.block, t.timestamp_ms));
        Ok(out)
    }

    /// `getcontractstate`; `Ok(None)` when no such contract exists.
    pub async fn get_contract_state(
        &self,
        contract: &ScriptHash,
    ) -> Result<Option<Value>, RpcError> {
        match self
            .call("getcontractstate", json!([contract.to_hex()]))
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(RpcError::Node { code, message })
                if code == -100 || message.to_lowercase().contains("unknown contract") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `findstorage`: every entry of `contract` whose key starts with `prefix` (pages through the results).
    pub async fn find_storage(
        &self,
        contract: &ScriptHash,
        prefix: &[u8],
    ) -> Result<Vec<StorageEntry>, RpcError> {
        let m = "findstorage";
        let mut out = Vec::new();
        let mut start = 0u64;
        loop {
            let v = self
                .call(m, json!([contract.to_hex(), B64.encode(prefix), start]))
                .await?;
            for r in Reply::new(&v, m).items("results") {
                out.push(StorageEntry {
                    key: r.bytes("key")?,
                    value: r.bytes("value")?,
                });
            }
            if v.get("truncated").and_then(Value::as_bool) != Some(true) {
                return Ok(out);
            }
            start = v
                .get("next")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(m, "truncated without next"))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_endpoints_are_reported_not_zero() {
        // Ports from a listener we close: nothing answers there.
        let dead = |()| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let c = RpcClient::new(vec![dead(()), dead(())], Duration::from_secs(2)).unwrap();
        let e = c.get_block_count().await.unwrap_err();
        assert!(matches!(e, RpcError::Unreachable { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("cannot reach"), "{msg}");
        assert_eq!(msg.matches("http://127.0.0.1").count(), 2, "{msg}");
    }

    #[test]
    fn replies_are_read_and_bad_fields_name_the_method() {
        // The shape neo-go 0.116 answers getnep17balances with.
        let v = json!({"balance": [
            {"assethash": "0xd2a4cff31913016155e38e474a2c06d08be276cf", "symbol": "GAS",
             "decimals": "8", "amount": "99982073620", "lastupdatedblock": 47},
            {"assethash": "nope", "amount": "1"}
        ]});
        let items: Vec<Reply> = Reply::new(&v, "getnep17balances")
            .items("balance")
            .collect();
        assert_eq!(items[0].hash("assethash").unwrap(), crate::nep17::GAS);
        assert_eq!(items[0].int::<i128>("amount").unwrap(), 99_982_073_620);
        assert_eq!(items[0].int::<u32>("decimals").unwrap(), 8);
        assert_eq!(items[0].u64("lastupdatedblock"), 47);
        let e = items[1].hash("assethash").unwrap_err().to_string();
        assert!(
            e.contains("getnep17balances") && e.contains("assethash"),
            "{e}"
        );
        assert!(items[1].int::<i64>("gasconsumed").is_err());
        assert_eq!(Reply::new(&v, "x").items("missing").count(), 0);
    }

    #[test]
    fn no_endpoint_is_an_error() {
        assert!(RpcClient::new(vec![], Duration::from_secs(1)).is_err());
    }
}
