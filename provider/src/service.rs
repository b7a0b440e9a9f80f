//! The provider service: the chain cache, the admission checks and the HTTP API that Kamailio's
//! KEMI script (and standard clients, through Kamailio's HTTP relay) call. Stateless beyond its
//! cache: a restart rebuilds everything from the chain.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use krypton_chain::krypton::KryptonEvent;
use krypton_chain::{RpcClient, RpcError};
use krypton_wallet::{PrivateKey, ScriptHash};
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::check::{Checker, Rejection, bearer_expected};
use crate::follow::{self, Sink};
use crate::peer::{PEER_HEADER, Peering, Route};
use crate::registry::{Change, Registry};

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The HTTP listener failed.
    #[error("the provider service's HTTP listener failed: {0}")]
    Http(#[from] std::io::Error),
    /// Bad settings.
    #[error("{0}")]
    Config(String),
}

/// Settings of one provider service.
#[derive(Clone)]
pub struct ServiceConfig {
    /// NEO RPC endpoints (failover order).
    pub rpc: Vec<String>,
    /// The KRYPTON contract.
    pub contract: ScriptHash,
    /// This provider's address.
    pub provider: ScriptHash,
    /// SIP realm/domain: the provider's on-chain location.
    pub realm: String,
    /// Secret shared with Kamailio's `auth_ephemeral`.
    pub ephemeral_secret: Zeroizing<Vec<u8>>,
    /// Kamailio's loopback JSON-RPC URL (`http://127.0.0.1:PORT/RPC`): bindings of users who
    /// leave on chain are removed at once (`ul.rm`).
    pub kamailio_rpc: Option<String>,
    /// How often to ask the node for new blocks.
    pub poll: Duration,
    /// The peer key: this provider's on-chain device key, which signs the `Krypton-Provider`
    /// tokens of requests to other providers (AUTH.md §6). Without it, calls to other
    /// providers' users are refused with 503.
    pub peer_key: Option<Arc<PrivateKey>>,
    /// PSTN gateway `host:port` for phone numbers.
    pub trunk: Option<String>,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("rpc", &self.rpc)
            .field("contract", &self.contract.to_hex())
            .field("provider", &self.provider.to_address())
            .field("realm", &self.realm)
            .field("kamailio_rpc", &self.kamailio_rpc)
            .field(
                "peer_key",
                &self.peer_key.as_ref().map(|k| k.public_key().to_hex()),
            )
            .field("trunk", &self.trunk)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Metrics {
    registers_admitted: AtomicU64,
    registers_refused: AtomicU64,
    credentials_issued: AtomicU64,
    credentials_refused: AtomicU64,
    bindings_removed: AtomicU64,
    events_applied: AtomicU64,
    routed_to_peers: AtomicU64,
    routed_to_trunk: AtomicU64,
    peers_admitted: AtomicU64,
    peers_refused: AtomicU64,
}

struct Cache {
    registry: Registry,
    checker: Checker,
    peering: Peering,
    /// Blocks applied (a block count), 0 until the first snapshot.
    height: u32,
    synced: bool,
    chain_error: Option<String>,
}

struct Shared {
    me: ScriptHash,
    /// The realm (the checker has it too), for verifying tokens without the cache lock.
    realm: String,
    cache: Mutex<Cache>,
    metrics: Metrics,
    /// Asks the node for its height when a user is unknown (see [`Shared::behind_chain`]).
    head_rpc: RpcClient,
    /// The node's last reported block count, and when it was asked.
    head: Mutex<Option<(std::time::Instant, u32)>>,
}

impl Shared {
    fn cache(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding the lock cannot leave the cache half-updated in a way that
        // matters more than stopping the service would: keep serving.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node's block count when it is ahead of the cache (at block count `height`), i.e. the
    /// node has blocks the cache has not applied yet; the node is asked at most every 200 ms,
    /// and when it does not answer the cache is taken as current.
    async fn chain_ahead_of(&self, height: u32) -> Option<u32> {
        const FRESH: Duration = Duration::from_millis(200);
        let known = *self.head.lock().unwrap_or_else(|p| p.into_inner());
        let head = match known {
            Some((at, head)) if at.elapsed() < FRESH => head,
            _ => {
                let head = self.head_rpc.get_block_count().await.ok()?;
                *self.head.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((std::time::Instant::now(), head));
                head
            }
        };
        (head > height).then_some(head)
    }

    /// Waits (at most `limit`) until the cache has applied `head` blocks.
    async fn caught_up(&self, head: u32, limit: Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        loop {
            if self.cache().height >= head {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Sink for Shared {
    fn apply_block(&self, height: u32, events: &[KryptonEvent]) -> Vec<Change> {
        let mut c = self.cache();
        let changes = events
            .iter()
            .map(|e| c.registry.apply(e, &self.me))
            .filter(|c| *c != Change::None)
            .collect();
        c.height = height + 1;
        self.metrics
            .events_applied
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        changes
    }

    fn chain_status(&self, error: Option<&RpcError>) {
        self.cache().chain_error = error.map(|e| e.to_string());
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs the service on `listener` until the process ends: serves at once (answering 503 until the
/// first chain snapshot is in), takes the snapshot (retrying while the node is unreachable), then
/// follows the chain.
pub async fn run(
    cfg: ServiceConfig,
    listener: tokio::net::TcpListener,
) -> Result<(), ServiceError> {
    let rpc = RpcClient::new(cfg.rpc.clone(), Duration::from_secs(10))
        .map_err(|e| ServiceError::Config(e.to_string()))?;
    // Kamailio's script makes the Bearer nonces itself with this key (AUTH.md §4), so a challenge
    // costs no round trip to us. The key outlives this process, the used-nonce set does not: refuse
    // nonces dated before the second after our start (one of the start second may already have
    // been spent by the process before).
    let started = now();
    let nonce_secret = bearer_nonce_key(&cfg.ephemeral_secret);
    let shared = Arc::new(Shared {
        me: cfg.provider,
        realm: cfg.realm.clone(),
        cache: Mutex::new(Cache {
            registry: Registry::default(),
            checker: Checker::new(
                cfg.provider,
                &cfg.realm,
                &nonce_secret,
                &cfg.ephemeral_secret,
            )
            .nonces_not_before(started + 1),
            peering: Peering::new(
                cfg.provider,
                &cfg.realm,
                cfg.peer_key.clone(),
                cfg.trunk.clone(),
            ),
            height: 0,
            synced: false,
            chain_error: None,
        }),
        metrics: Metrics::default(),
        head_rpc: RpcClient::new(cfg.rpc.clone(), Duration::from_secs(2))
            .map_err(|e| ServiceError::Config(e.to_string()))?,
        head: Mutex::new(None),
    });
    let app = router(shared.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let ready_at = UNIX_EPOCH + Duration::from_secs(started + 1);
    let chain = tokio::spawn(keep_in_sync(rpc, cfg, shared, ready_at));
    let r = server.await;
    chain.abort();
    match r {
        Ok(r) => r.map_err(ServiceError::Http),
        Err(e) => Err(ServiceError::Http(std::io::Error::other(e))),
    }
}

/// The Bearer nonce key: HMAC-SHA256(the provider's secret, "krypton bearer nonce"), as
/// `krypton.py` derives it from the same secret (`auth_ephemeral`'s, in its `kamailio.cfg`).
fn bearer_nonce_key(secret: &[u8]) -> Zeroizing<[u8; 32]> {
    use hmac::Mac as _;
    let mut m =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"krypton bearer nonce");
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&m.finalize().into_bytes());
    key
}

/// Loads the snapshot, then follows the chain. Serves (`synced`) no earlier than `ready_at`: the
/// second after the start, before which every nonce is refused anyway (see [`run`]); this way a
/// client challenged in the start second gets 503 + Retry-After rather than a stale-proof 403.
async fn keep_in_sync(
    rpc: RpcClient,
    cfg: ServiceConfig,
    shared: Arc<Shared>,
    ready_at: SystemTime,
) {
    let mut wait = Duration::from_millis(200);
    let next = loop {
        match follow::snapshot(&rpc, &cfg.contract).await {
            Ok((registry, height)) => {
                if let Ok(early) = ready_at.duration_since(SystemTime::now()) {
                    tokio::time::sleep(early).await;
                }
                let (providers, users) = registry.counts();
                tracing::info!(height, providers, users, "chain snapshot loaded");
                let mut c = shared.cache();
                c.registry = registry;
                c.height = height;
                c.synced = true;
                c.chain_error = None;
                break height;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the contract's storage; retrying");
                shared.chain_status(Some(&e));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    };
    let http = reqwest::Client::new();
    let kamailio = cfg.kamailio_rpc.clone();
    let sh = shared.clone();
    follow::follow(rpc, cfg.contract, next, cfg.poll, &*shared, move |change| {
        if let (Change::UserLeft(user), Some(url)) = (change, kamailio.clone()) {
            let http = http.clone();
            let sh = sh.clone();
            tokio::spawn(async move {
                let address = user.to_address();
                match remove_bindings(&http, &url, &address).await {
                    Ok(()) => {
                        sh.metrics.bindings_removed.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%address, "left on chain: bindings removed");
                    }
                    Err(e) => tracing::warn!(%address, error = %e,
                        "left on chain, but Kamailio did not remove the bindings; the next refresh fails"),
                }
            });
        }
    })
    .await;
}

/// Kamailio JSON-RPC `ul.rm location ADDRESS` (AUTH.md §4). A user without bindings is fine.
async fn remove_bindings(http: &reqwest::Client, url: &str, address: &str) -> Result<(), String> {
    let body = json!({"jsonrpc":"2.0","method":"ul.rm","params":["location", address],"id":1});
    let r: Value = http
        .post(url)
        .json(&body)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    match r.get("error") {
        // 404: no such AOR (not currently registered).
        Some(e) if e.get("code").and_then(Value::as_i64) != Some(404) => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/kemi/bearer", post(kemi_bearer))
        .route("/kemi/member", post(kemi_member))
        .route("/kemi/route", post(kemi_route))
        .route("/kemi/peer", post(kemi_peer))
        .route("/krypton/v1/nonce", get(api_nonce))
        .route("/krypton/v1/credentials", post(api_credentials))
        .with_state(shared)
}

/// 503 until the cache is loaded: Kamailio must fail closed, never admit on an empty cache.
fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "provider service unavailable: the chain cache is not loaded yet; retry"})),
    )
        .into_response()
}

async fn health(State(s): State<Arc<Shared>>) -> Response {
    let c = s.cache();
    let (providers, users) = c.registry.counts();
    let body = json!({
        "synced": c.synced,
        "height": c.height,
        "providers": providers,
        "users": users,
        "chain_error": c.chain_error,
        "realm": c.checker.realm(),
        "provider": s.me.to_address(),
    });
    let code = if c.synced {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> String {
    let (height, synced, providers, users, ours) = {
        let c = s.cache();
        let (p, u) = c.registry.counts();
        (c.height, c.synced, p, u, c.registry.users_of(&s.me).count())
    };
    let m = &s.metrics;
    let counter = |name: &str, help: &str, v: &AtomicU64| {
        format!(
            "# HELP krypton_provider_{name} {help}\n# TYPE krypton_provider_{name} counter\nkrypton_provider_{name} {}\n",
            v.load(Ordering::Relaxed)
        )
    };
    let gauge = |name: &str, help: &str, v: u64| {
        format!(
            "# HELP krypton_provider_{name} {help}\n# TYPE krypton_provider_{name} gauge\nkrypton_provider_{name} {v}\n"
        )
    };
    [
        gauge(
            "chain_height",
            "Blocks applied to the cache.",
            height as u64,
        ),
        gauge(
            "synced",
            "1 once the chain snapshot is loaded.",
            synced as u64,
        ),
        gauge("providers", "Deployed providers.", providers as u64),
        gauge(
            "users",
            "Users registered on chain (all providers).",
            users as u64,
        ),
        gauge(
            "own_users",
            "Users registered with this provider.",
            ours as u64,
        ),
        counter(
            "registers_admitted_total",
            "REGISTERs admitted.",
            &m.registers_admitted,
        ),
        counter(
            "registers_refused_total",
            "REGISTERs refused.",
            &m.registers_refused,
        ),
        counter(
            "credentials_issued_total",
            "Credentials issued.",
            &m.credentials_issued,
        ),
        counter(
            "credentials_refused_total",
            "Credential requests refused.",
            &m.credentials_refused,
        ),
        counter(
            "bindings_removed_total",
            "Bindings removed after an on-chain change.",
            &m.bindings_removed,
        ),
        counter(
            "events_applied_total",
            "Contract events applied.",
            &m.events_applied,
        ),
        counter(
            "routed_to_peers_total",
            "Requests of our users sent to other providers.",
            &m.routed_to_peers,
        ),
        counter(
            "routed_to_trunk_total",
            "Requests of our users sent to the PSTN trunk.",
            &m.routed_to_trunk,
        ),
        counter(
            "peers_admitted_total",
            "Requests from other providers admitted.",
            &m.peers_admitted,
        ),
        counter(
            "peers_refused_total",
            "Requests from outside refused.",
            &m.peers_refused,
        ),
    ]
    .concat()
}

#[derive(Deserialize)]
struct BearerReq {
    /// The whole `Authorization` / `Proxy-Authorization` value (`Bearer …`).
    authorization: String,
    /// The AOR user (REGISTER: To user; other requests: From user).
    user: String,
    call_id: String,
    /// The Contact's `+sip.instance`, when the request has one.
    #[serde(default)]
    instance: Option<String>,
}

fn verdict(r: Result<ScriptHash, Rejection>) -> Value {
    match r {
        Ok(who) => json!({"ok": true, "address": who.to_address()}),
        Err(e) => json!({"ok": false, "code": e.code, "reason": e.reason}),
    }
}

async fn kemi_bearer(State(s): State<Arc<Shared>>, Json(r): Json<BearerReq>) -> Response {
    let token = r
        .authorization
        .trim()
        .strip_prefix("Bearer ")
        .unwrap_or("")
        .trim();
    let instance = r
        .instance
        .as_deref()
        .map(|i| i.trim_matches(|ch| ch == '"' || ch == '<' || ch == '>'))
        .filter(|i| !i.is_empty());
    // The signature check, most of the cost, runs without the cache lock; the rest of
    // Checker::check_bearer (key-to-address, membership, spending the nonce) under it.
    let expect = bearer_expected(&s.realm, &r.user, &r.call_id, instance);
    let verified = krypton_auth::verify(token, &expect, now());
    let admit = || {
        let mut guard = s.cache();
        if !guard.synced {
            return None;
        }
        let c = &mut *guard;
        let res = match &verified {
            Ok(v) => c.checker.admit_verified(&c.registry, v, &r.call_id, now()),
            Err(e) => Err((*e).into()),
        };
        // A good proof from an address the cache does not know (membership is checked before
        // the nonce is spent, so the proof can be checked again).
        let unknown = res.is_err()
            && verified.is_ok()
            && ScriptHash::from_address(&r.user).is_ok_and(|u| c.registry.user(&u).is_none());
        Some((res, unknown, c.height))
    };
    let Some((mut res, unknown, height)) = admit() else {
        return unavailable();
    };
    // The address may have registered on chain a moment ago, in a block the cache (it polls)
    // has not applied yet: then wait for it to catch up and check again, rather than refuse.
    if unknown && let Some(head) = s.chain_ahead_of(height).await {
        if !s.caught_up(head, Duration::from_secs(2)).await {
            tracing::warn!(user = %r.user, height, head, "the cache lags the chain: 503");
            return unavailable();
        }
        match admit() {
            Some((again, _, _)) => res = again,
            None => return unavailable(),
        }
    }
    let m = if res.is_ok() {
        &s.metrics.registers_admitted
    } else {
        &s.metrics.registers_refused
    };
    m.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = &res {
        tracing::info!(user = %r.user, reason = %e.reason, "Bearer proof refused");
    }
    Json(verdict(res)).into_response()
}

#[derive(Deserialize)]
struct MemberReq {
    address: String,
}

async fn kemi_member(State(s): State<Arc<Shared>>, Json(r): Json<MemberReq>) -> Response {
    let c = s.cache();
    if !c.synced {
        return unavailable();
    }
    Json(verdict(c.checker.check_member(&c.registry, &r.address))).into_response()
}

#[derive(Deserialize)]
struct RouteReq {
    /// The caller, one of our users (already authenticated).
    from: String,
    /// The request URI's user part.
    to: String,
    call_id: String,
}

/// Where a request from one of our users goes: `{"route":"local"|"peer"|"trunk","uri":…}`, plus
/// `"header"` (the whole `Krypton-Provider` header line) for a peer; or a refusal.
async fn kemi_route(State(s): State<Arc<Shared>>, Json(r): Json<RouteReq>) -> Response {
    let c = s.cache();
    if !c.synced {
        return unavailable();
    }
    let res = c
        .peering
        .route(&c.registry, &r.from, &r.to, &r.call_id, now());
    drop(c);
    let body = match res {
        Ok(Route::Local { uri }) => json!({"ok": true, "route": "local", "uri": uri}),
        Ok(Route::Peer { uri, token }) => {
            s.metrics.routed_to_peers.fetch_add(1, Ordering::Relaxed);
            json!({"ok": true, "route": "peer", "uri": uri, "header": format!("{PEER_HEADER}: {token}")})
        }
        Ok(Route::Trunk { uri }) => {
            s.metrics.routed_to_trunk.fetch_add(1, Ordering::Relaxed);
            json!({"ok": true, "route": "trunk", "uri": uri})
        }
        Err(e) => json!({"ok": false, "code": e.code, "reason": e.reason}),
    };
    Json(body).into_response()
}

#[derive(Deserialize)]
struct PeerReq {
    /// The `Krypton-Provider` header value ("" when absent).
    token: String,
    call_id: String,
    /// The request URI's user part.
    to: String,
}

/// May this request from outside pass (AUTH.md §6)?
async fn kemi_peer(State(s): State<Arc<Shared>>, Json(r): Json<PeerReq>) -> Response {
    let mut guard = s.cache();
    if !guard.synced {
        return unavailable();
    }
    let c = &mut *guard;
    let t = now();
    c.peering.forget_expired(t);
    let res = c
        .peering
        .admit(&c.registry, r.token.trim(), &r.call_id, &r.to, t);
    drop(guard);
    if let Err(e) = &res {
        tracing::info!(to = %r.to, reason = %e.reason, "request from outside refused");
        s.metrics.peers_refused.fetch_add(1, Ordering::Relaxed);
    } else {
        s.metrics.peers_admitted.fetch_add(1, Ordering::Relaxed);
    }
    Json(verdict(res)).into_response()
}

async fn api_nonce(State(s): State<Arc<Shared>>) -> Response {
    let c = s.cache();
    if !c.synced {
        return unavailable();
    }
    Json(json!({
        "nonce": c.checker.nonce(now(), krypton_auth::CREDENTIALS_CID),
        "realm": c.checker.realm(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct CredentialsReq {
    token: String,
}

async fn api_credentials(State(s): State<Arc<Shared>>, Json(r): Json<CredentialsReq>) -> Response {
    let mut guard = s.cache();
    if !guard.synced {
        return unavailable();
    }
    let c = &mut *guard;
    match c.checker.credentials(&c.registry, &r.token, now()) {
        Ok(creds) => {
            s.metrics.credentials_issued.fetch_add(1, Ordering::Relaxed);
            Json(creds).into_response()
        }
        Err(e) => {
            s.metrics
                .credentials_refused
                .fetch_add(1, Ordering::Relaxed);
            (StatusCode::FORBIDDEN, Json(json!({"error": e.reason}))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krypton_auth::NonceIssuer;

    /// The key and a nonce as `krypton.py` makes them (computed with Python's hmac/struct/base64,
    /// the script's own code for secret `0123abcd` × 8, ts 1800000000 and this Call-ID).
    #[test]
    fn the_nonce_key_and_nonces_match_the_kemi_script() {
        let key = bearer_nonce_key("0123abcd".repeat(8).as_bytes());
        assert_eq!(
            hex::encode(*key),
            "1c1adb8cbb1038be39624d61df43fb5877afdec151cd5e0c54c681719cb0edfb"
        );
        let kemi = "AAAAAGtJ0gC64qk0BYeL1F6Z_gX0H086RCGMfttduaJ18nV1E_9gag";
        let n = NonceIssuer::new(&key);
        assert_eq!(n.issue(1_800_000_000, "a84b4c76e66710@pc33"), kemi);
        assert_eq!(
            n.check(kemi, 1_800_000_001, "a84b4c76e66710@pc33"),
            Ok(1_800_000_000)
        );
    }
}
