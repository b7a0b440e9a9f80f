//! NEO N3 chain access for KRYPTON.
//!
//! - [`rpc`]: async JSON-RPC client with several endpoints and failover.
//! - [`tx`]: the N3 transaction wire format, txid, signing message and witnesses.
//! - [`script`]: a script builder for contract calls.
//! - [`stack`]: VM stack items as JSON-RPC returns them.
//! - [`sender`]: build, fee, sign, send and wait for a transaction, with progress.
//! - [`nep17`]: GAS/NEO balances, transfers and amounts.
//! - [`krypton`]: the typed client of the KRYPTON contract and its events.
//! - [`network`]: a network setting (devnet, testnet, mainnet, URLs) as endpoints and contract.

pub mod krypton;
pub mod nep17;
pub mod network;
pub mod rpc;
pub mod script;
pub mod sender;
pub mod stack;
pub mod tx;

pub use network::{Network, NetworkError};
pub use rpc::{RpcClient, RpcError, Version};
pub use sender::{Account, ChainError, Progress, Sender, TxOutcome};
pub use stack::StackItem;
pub use tx::{Signer, Transaction, Witness, WitnessScope};
