//! `krypton credentials [--provider-url URL]`: SIP digest credentials for a standard client
//! (baresip, linphone, a desk phone) that cannot sign KRYPTON Bearer tokens (provider/AUTH.md §5).
//!
//! 1. The chain says where the signing account (`--account`, else the wallet's default) lives:
//!    its provider's location, which is the SIP realm and the host of the provider's API.
//! 2. `GET http://LOCATION/krypton/v1/nonce` → `{"nonce","realm"}` (the API is relayed by the
//!    provider's Kamailio on its SIP port). This also checks that the provider answers before the
//!    wallet password is asked.
//! 3. The wallet key (or the on-chain device key, if this wallet holds it: the same rule as
//!    `krypton phone --wallet`) signs `Claims::credentials` for that realm and nonce.
//! 4. `POST http://LOCATION/krypton/v1/credentials {"token": JWT}` → `{"username",
//!    "password","expires","realm"}`: auth_ephemeral credentials, user name
//!    `<expiry>:<address>`, valid until `expires`.
//!
//! Printed: those fields plus `aor` (`sip:ADDRESS@LOCATION`), `proxy` (`sip:LOCATION`) and a
//! baresip account line. The token is only ever signed for the realm the chain names, so a
//! `--provider-url` pointing elsewhere cannot obtain a proof for another provider.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::context::Context;
use crate::output::Output;
use crate::phone_cmd::phone_wallet;

/// How long the credentials token is valid (the providers' maximum, AUTH.md §4).
const TOKEN_LIFETIME_SECS: u64 = 60;
/// A nonce older than this is fetched again before signing (the provider keeps them 30 s).
const NONCE_REUSE: Duration = Duration::from_secs(10);
/// Timeout of each HTTP request to the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
struct NonceAnswer {
    nonce: String,
    realm: String,
}

/// The provider's answer to a credentials request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Credentials {
    /// `<expiry>:<address>`.
    pub username: String,
    /// base64(HMAC-SHA-256(secret, username)).
    pub password: String,
    /// Expiry, unix seconds.
    pub expires: u64,
    /// The digest realm.
    pub realm: String,
}

/// `krypton credentials`.
pub async fn run(ctx: &Context, provider_url: Option<String>, out: &Output) -> anyhow::Result<()> {
    let w = ctx.wallet().await?;
    let address = ctx.signing_account(&w)?.address().to_string();
    // The chain first: an unregistered address fails before any password is asked.
    let chain = phone_wallet::lookup(ctx, &address).await?;
    let location = chain.location.trim().to_string();
    let base = api_base(provider_url.as_deref(), &location)?;
    let http = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .context("cannot create an HTTP client")?;
    // The provider next: an unreachable one fails before the password too.
    let mut nonce = fetch_nonce(&http, &base, &address, &location).await?;
    let fetched = Instant::now();
    let password = ctx.password(false)?;
    out.note("unlocking the key (scrypt)…");
    let key = phone_wallet::signing_key(&w, &address, chain.device_key.as_ref(), password).await?;
    if fetched.elapsed() > NONCE_REUSE {
        nonce = fetch_nonce(&http, &base, &address, &location).await?;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| anyhow!("the system clock is before 1970"))?
        .as_secs();
    let claims = krypton_auth::Claims::credentials(
        &address,
        &location,
        &nonce.nonce,
        now,
        TOKEN_LIFETIME_SECS,
    );
    let token = krypton_auth::mint(&key, &claims);
    drop(key);
    let url = format!("{base}/krypton/v1/credentials");
    let r = http
        .post(&url)
        .json(&json!({ "token": token }))
        .send()
        .await
        .map_err(|e| unreachable_error(&url, &address, &location, &e))?;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    let creds = credentials_answer(status, &body, &url, &address)?;
    if creds.realm != location {
        bail!(
            "the provider at {base} issued credentials for realm {:?}, but {address}'s provider is at {location} on chain: check --provider-url",
            creds.realm
        );
    }
    out.result(summary(&address, &location, &creds));
    out.note("baresip: paste the `baresip` line into ~/.baresip/accounts");
    Ok(())
}

/// `http://LOCATION` (the provider's SIP port also serves its API), or `--provider-url`
/// without a trailing `/`.
fn api_base(provider_url: Option<&str>, location: &str) -> anyhow::Result<String> {
    match provider_url {
        Some(u) => {
            let u = u.trim().trim_end_matches('/');
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                bail!(
                    "--provider-url {u:?} is not an http(s) URL: give the provider's API base, e.g. http://{location}"
                );
            }
            Ok(u.to_string())
        }
        None => {
            if location.is_empty() || location.contains(['/', ' ']) {
                bail!(
                    "the provider's on-chain location {location:?} is not a HOST[:PORT]: pass --provider-url URL"
                );
            }
            Ok(format!("http://{location}"))
        }
    }
}

async fn fetch_nonce(
    http: &reqwest::Client,
    base: &str,
    address: &str,
    location: &str,
) -> anyhow::Result<NonceAnswer> {
    let url = format!("{base}/krypton/v1/nonce");
    let r = http
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable_error(&url, address, location, &e))?;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    if status != 200 {
        return Err(refusal(status, &body, &url, address));
    }
    let n: NonceAnswer = serde_json::from_str(&body).with_context(|| {
        format!("{url} answered something that is not a KRYPTON nonce ({}): is this a KRYPTON provider? pass --provider-url URL", short(&body))
    })?;
    if n.realm != location {
        bail!(
            "the provider at {base} serves realm {:?}, but {address}'s provider is at {location} on chain: the token is signed for the on-chain location only; check --provider-url",
            n.realm
        );
    }
    Ok(n)
}

fn unreachable_error(
    url: &str,
    address: &str,
    location: &str,
    e: &reqwest::Error,
) -> anyhow::Error {
    let why = if e.is_timeout() {
        "it did not answer in time".to_string()
    } else {
        format!("{e}")
    };
    anyhow!(
        "cannot reach {address}'s provider at {url} ({why}): the provider may be down; try again later, or ask its operator (on chain it is at {location}; `krypton query provider {address}` names it)"
    )
}

/// The credentials from a `POST /krypton/v1/credentials` answer, or an error that says what to do.
fn credentials_answer(
    status: u16,
    body: &str,
    url: &str,
    address: &str,
) -> anyhow::Result<Credentials> {
    if status != 200 {
        return Err(refusal(status, body, url, address));
    }
    let c: Credentials = serde_json::from_str(body).with_context(|| {
        format!(
            "{url} answered something that is not KRYPTON credentials ({})",
            short(body)
        )
    })?;
    let user_ok = c
        .username
        .split_once(':')
        .is_some_and(|(exp, a)| a == address && exp.parse::<u64>().is_ok());
    if !user_ok {
        bail!(
            "the provider issued credentials for user name {:?}, not for {address}: report this to its operator",
            c.username
        );
    }
    Ok(c)
}

/// An error for a non-200 answer, with the provider's reason (`{"error": …}`).
fn refusal(status: u16, body: &str, url: &str, address: &str) -> anyhow::Error {
    let reason = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string));
    match (status, reason) {
        (403, Some(r)) => anyhow!(
            "the provider refused credentials for {address}: {r} (check `krypton query provider {address}` and `krypton query key {address}`; register with `krypton register --provider …`)"
        ),
        (503, r) => anyhow!(
            "the provider service is unavailable ({}): try again in a few seconds",
            r.unwrap_or_else(|| "HTTP 503".into())
        ),
        (s, Some(r)) => anyhow!("the provider refused ({s} at {url}): {r}"),
        (s, None) => anyhow!(
            "the provider answered HTTP {s} at {url} ({}): is this a KRYPTON provider? pass --provider-url URL",
            short(body)
        ),
    }
}

fn short(body: &str) -> String {
    let b = body.trim();
    if b.is_empty() {
        return "an empty body".into();
    }
    let mut s: String = b.chars().take(120).collect();
    if s.len() < b.len() {
        s.push('…');
    }
    s
}

/// What `krypton credentials` prints.
fn summary(address: &str, location: &str, c: &Credentials) -> Value {
    json!({
        "username": c.username,
        "password": c.password,
        "realm": c.realm,
        "expires": c.expires,
        "aor": format!("sip:{address}@{location}"),
        "proxy": format!("sip:{location}"),
        "baresip": baresip_line(address, location, c),
    })
}

/// A baresip `accounts` line: the AOR is the address, the digest user `<expiry>:<address>`, the
/// provider the outbound proxy (its registrar caps bindings at 60 s; baresip follows the 200 OK's
/// expiry).
fn baresip_line(address: &str, location: &str, c: &Credentials) -> String {
    format!(
        "<sip:{address}@{location}>;auth_user={user};auth_pass={pw};outbound=\"sip:{location}\"",
        user = c.username,
        pw = c.password,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str = "NZNovRzVc6Gsxb3SiA8pAYMDv3hyGbMtbm";

    fn creds() -> Credentials {
        Credentials {
            username: format!("1790000000:{ADDR}"),
            password: "q1+/w2E=".into(),
            expires: 1_790_000_000,
            realm: "127.0.0.1:5070".into(),
        }
    }

    #[test]
    fn the_api_lives_on_the_location_unless_a_url_is_given() {
        assert_eq!(
            api_base(None, "127.0.0.1:5070").unwrap(),
            "http://127.0.0.1:5070"
        );
        assert_eq!(
            api_base(Some("https://p.example/api/ "), "x").unwrap(),
            "https://p.example/api"
        );
        assert!(api_base(Some("p.example"), "x").is_err());
        assert!(api_base(None, "").is_err());
    }

    #[test]
    fn the_summary_has_everything_a_client_needs() {
        let s = summary(ADDR, "127.0.0.1:5070", &creds());
        assert_eq!(s["aor"], format!("sip:{ADDR}@127.0.0.1:5070"));
        assert_eq!(s["proxy"], "sip:127.0.0.1:5070");
        assert_eq!(s["username"], format!("1790000000:{ADDR}"));
        assert_eq!(s["password"], "q1+/w2E=");
        assert_eq!(s["realm"], "127.0.0.1:5070");
        assert_eq!(s["expires"], 1_790_000_000u64);
        assert_eq!(
            s["baresip"],
            format!(
                "<sip:{ADDR}@127.0.0.1:5070>;auth_user=1790000000:{ADDR};auth_pass=q1+/w2E=;outbound=\"sip:127.0.0.1:5070\""
            )
        );
    }

    #[test]
    fn answers_are_checked_and_refusals_say_why() {
        let ok = serde_json::to_string(&json!({
            "username": format!("1790000000:{ADDR}"), "password": "q1+/w2E=",
            "expires": 1_790_000_000u64, "realm": "127.0.0.1:5070",
        }))
        .unwrap();
        assert_eq!(credentials_answer(200, &ok, "u", ADDR).unwrap(), creds());
        // Credentials for somebody else are not printed as ours.
        let other = ok.replace(ADDR, "NOther");
        assert!(credentials_answer(200, &other, "u", ADDR).is_err());
        let e = credentials_answer(
            403,
            r#"{"error":"not registered with this provider on chain"}"#,
            "u",
            ADDR,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("refused") && e.contains("not registered with this provider on chain"),
            "{e}"
        );
        let e = credentials_answer(
            503,
            r#"{"error":"provider service unavailable"}"#,
            "u",
            ADDR,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("try again"), "{e}");
        let e = credentials_answer(404, "<html>", "http://x/y", ADDR)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HTTP 404") && e.contains("--provider-url"),
            "{e}"
        );
    }
}
