//! KRYPTON's SIP Bearer authentication (RFC 8898, `provider/AUTH.md` §4 and §7), phone side.
//!
//! - [`BearerChallenge`] and [`parse_bearer_challenges`]: a lenient parser of
//!   `WWW-Authenticate`/`Proxy-Authenticate: Bearer realm="…", scope="krypton", nonce="…"` that
//!   never panics and skips what it does not understand (a 401 may carry a Digest challenge next
//!   to the Bearer one, in its own header or in the same one).
//! - [`BearerSigner`]: whoever holds the key mints the token for a challenge. The SIP crate knows
//!   no keys and no NEO; an account that has a signer ([`crate::Account::bearer`]) sends
//!   `Supported: krypton` in REGISTER, INVITE and MESSAGE, and answers a Bearer challenge with
//!   `Authorization`/`Proxy-Authorization: Bearer <token>`.
//! - [`AuthRetry`]: the sans-IO decision of how to go on after a 401/407/403, shared by the
//!   REGISTER and MESSAGE drivers and the call machine ([`crate::invite`]): answer a challenge
//!   (Bearer preferred when we have a signer, else digest), answer a digest `stale=true` once
//!   more, retry once with a fresh challenge after a `403 stale proof`, and give up with the
//!   provider's words otherwise.
//! - [`reason_text`]: the `text` of a `Reason: SIP;cause=403;text="…"` header (RFC 3326), the
//!   provider's explanation the phone shows.

use std::fmt;

/// The `Supported` option tag that asks a KRYPTON provider for its Bearer challenge.
pub const SUPPORTED_TAG: &str = "krypton";

/// How many challenges one request may answer before we call authentication failed (a
/// Bearer and a digest round, a stale nonce, a fresh challenge after a stale proof).
const MAX_ROUNDS: u32 = 4;

/// One `Bearer` challenge (RFC 8898 §2.3) as a KRYPTON provider sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    /// The provider's realm: its on-chain location (`host[:port]`).
    pub realm: String,
    /// The scope (`krypton`; empty when the challenge has none).
    pub scope: String,
    /// The provider's nonce, to be signed into the token.
    pub nonce: String,
}

/// Mints the Bearer token that answers a challenge. Implemented by whoever holds the key (the
/// wallet side of the phone); the user agent calls it in its driver, never in a state machine.
///
/// `Debug` must not print secrets.
pub trait BearerSigner: Send + Sync + fmt::Debug {
    /// A token for `challenge`, bound to the request's `call_id` and our `instance` (the
    /// account's `+sip.instance`, `urn:uuid:…`). `Err` is a reason for the user (the signer
    /// refuses, for example, to sign for a realm that is not its provider's).
    fn token(
        &self,
        challenge: &BearerChallenge,
        call_id: &str,
        instance: &str,
    ) -> Result<String, String>;
}

/// Every `Bearer` challenge with a realm and a nonce in one header value. Anything else in
/// the value (other schemes, unknown parameters, broken quoting) is skipped.
pub fn parse_bearer_challenges(value: &str) -> Vec<BearerChallenge> {
    let mut out = Vec::new();
    let mut current: Option<Partial> = None;
    for item in split_quoted(value, ',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        // A new challenge starts with a scheme token: `Bearer realm="x"` or a bare `Bearer`;
        // a parameter is `name = value`.
        let token_end = item
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(item.len());
        let after = item[token_end..].trim_start();
        let param = if after.starts_with('=') {
            item
        } else {
            out.extend(current.take().and_then(Partial::finish));
            current = Some(Partial {
                bearer: item[..token_end].eq_ignore_ascii_case("Bearer"),
                ..Partial::default()
            });
            after
        };
        let (Some((name, raw)), Some(c)) = (param.split_once('='), current.as_mut()) else {
            continue;
        };
        let v = unquote(raw.trim());
        match name.trim().to_ascii_lowercase().as_str() {
            "realm" => c.realm = Some(v),
            "scope" => c.scope = Some(v),
            "nonce" => c.nonce = Some(v),
            _ => {}
        }
    }
    out.extend(current.and_then(Partial::finish));
    out
}

/// A challenge being read.
#[derive(Default)]
struct Partial {
    bearer: bool,
    realm: Option<String>,
    scope: Option<String>,
    nonce: Option<String>,
}

impl Partial {
    /// A Bearer challenge with a realm and a nonce, else nothing.
    fn finish(self) -> Option<BearerChallenge> {
        if !self.bearer {
            return None;
        }
        Some(BearerChallenge {
            realm: self.realm?,
            scope: self.scope.unwrap_or_default(),
            nonce: self.nonce?,
        })
    }
}

/// The first Bearer challenge among header values.
pub fn first_bearer_challenge(values: &[String]) -> Option<BearerChallenge> {
    values
        .iter()
        .flat_map(|v| parse_bearer_challenges(v))
        .next()
}

/// The explanation in `Reason` header values (RFC 3326): the `text` of the first `SIP` reason
/// that has one, else of any reason that has one.
pub fn reason_text(values: &[String]) -> Option<String> {
    let mut any = None;
    for v in values {
        for reason in split_quoted(v, ',') {
            let mut parts = split_quoted(reason, ';').into_iter();
            let protocol = parts.next().unwrap_or("").trim();
            let text = parts.find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("text")
                    .then(|| unquote(v.trim()))
            });
            match text {
                Some(t) if protocol.eq_ignore_ascii_case("SIP") => return Some(t),
                Some(t) if any.is_none() => any = Some(t),
                _ => {}
            }
        }
    }
    any
}

/// A `Supported` value with `krypton` added (once) to the option tags in `existing`.
pub fn supported_with_krypton(existing: &str) -> String {
    let has = existing
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(SUPPORTED_TAG));
    match existing.trim() {
        _ if has => existing.to_string(),
        "" => SUPPORTED_TAG.to_string(),
        e => format!("{e}, {SUPPORTED_TAG}"),
    }
}

/// Split on `sep` outside double quotes (a backslash escapes the next character in quotes).
fn split_quoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

/// A token as it is, or a quoted string without its quotes and escapes (an unterminated one
/// runs to the end).
fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"') else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// The retry decision

/// How to answer in the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthAnswer {
    /// Send the request again without credentials, to get a fresh challenge (after a `403
    /// stale proof`).
    Fresh,
    /// `Authorization` (401) or `Proxy-Authorization` (407): `Bearer <token>` for this
    /// challenge.
    Bearer {
        /// The challenge came in a 407.
        proxy: bool,
        /// What to sign.
        challenge: BearerChallenge,
    },
    /// `Authorization` or `Proxy-Authorization` with digest credentials, answering one of
    /// these challenge header values.
    Digest {
        /// The challenge came in a 407.
        proxy: bool,
        /// The `WWW-Authenticate`/`Proxy-Authenticate` values.
        challenges: Vec<String>,
    },
}

impl AuthAnswer {
    /// The header the answer goes in (`None` for [`AuthAnswer::Fresh`]).
    pub fn header(&self) -> Option<&'static str> {
        match self {
            AuthAnswer::Fresh => None,
            AuthAnswer::Bearer { proxy, .. } | AuthAnswer::Digest { proxy, .. } => {
                Some(if *proxy {
                    "Proxy-Authorization"
                } else {
                    "Authorization"
                })
            }
        }
    }
}

/// What to do after a response, as far as authentication goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Not a matter of authentication: handle the response as usual.
    Pass,
    /// Send the request again (same Call-ID, next CSeq) with this answer.
    Retry(AuthAnswer),
    /// Authentication failed for good.
    Refused {
        /// The status that said so.
        status: u16,
        /// Why, for the user (the provider's `Reason` text when it gave one).
        reason: String,
    },
}

/// A final response, reduced to what [`AuthRetry`] needs.
#[derive(Debug, Clone, Copy)]
pub struct AuthResponse<'a> {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub phrase: &'a str,
    /// `WWW-Authenticate` (401) or `Proxy-Authenticate` (407) values.
    pub challenges: &'a [String],
    /// The `Reason` header's text, if any ([`reason_text`]).
    pub reason_text: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Nothing,
    Bearer,
    Digest,
}

/// The authentication state of one request (a REGISTER with its retries, one INVITE, one
/// MESSAGE). Sans-IO: feed it each final response with [`AuthRetry::handle`].
///
/// Rules: the first 401/407 is answered — with Bearer when we have a signer and the response
/// carries a Bearer challenge, else with digest. A challenge after our Bearer token is a
/// refusal with the provider's text. A challenge after our digest answer is a refusal unless it
/// says `stale=true` (answered once, RFC 7616 §3.3). A 403 whose text starts with
/// `stale proof` after our Bearer token is retried once with no credentials, to get a fresh
/// nonce (AUTH.md §7).
#[derive(Debug, Clone)]
pub struct AuthRetry {
    bearer: bool,
    sent: Sent,
    stale_digest_answered: bool,
    stale_proof_retried: bool,
    rounds: u32,
}

impl AuthRetry {
    /// `bearer`: the account has a [`BearerSigner`].
    pub fn new(bearer: bool) -> Self {
        AuthRetry {
            bearer,
            sent: Sent::Nothing,
            stale_digest_answered: false,
            stale_proof_retried: false,
            rounds: 0,
        }
    }

    /// Decide what a final response means for authentication.
    pub fn handle(&mut self, r: &AuthResponse<'_>) -> AuthStep {
        match r.status {
            401 | 407 => self.challenge(r),
            403 if self.sent == Sent::Bearer
                && !self.stale_proof_retried
                && r.reason_text.or(Some(r.phrase)).is_some_and(is_stale_proof) =>
            {
                self.stale_proof_retried = true;
                self.sent = Sent::Nothing;
                AuthStep::Retry(AuthAnswer::Fresh)
            }
            _ => AuthStep::Pass,
        }
    }

    fn challenge(&mut self, r: &AuthResponse<'_>) -> AuthStep {
        let proxy = r.status == 407;
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            return refused(r, "authentication did not converge");
        }
        match self.sent {
            Sent::Bearer => {
                return refused(r, "the provider refused our proof");
            }
            Sent::Digest => {
                let stale = r
                    .challenges
                    .iter()
                    .filter_map(|c| crate::digest::parse_challenges(c).ok())
                    .flatten()
                    .any(|c| c.stale);
                if !stale || self.stale_digest_answered {
                    return AuthStep::Refused {
                        status: r.status,
                        reason: "wrong user name or password (the proxy refused our credentials)"
                            .into(),
                    };
                }
                self.stale_digest_answered = true;
            }
            Sent::Nothing => {}
        }
        if self.bearer
            && let Some(challenge) = first_bearer_challenge(r.challenges)
        {
            self.sent = Sent::Bearer;
            return AuthStep::Retry(AuthAnswer::Bearer { proxy, challenge });
        }
        self.sent = Sent::Digest;
        AuthStep::Retry(AuthAnswer::Digest {
            proxy,
            challenges: r.challenges.to_vec(),
        })
    }
}

/// AUTH.md §7: a replayed, unknown or stale nonce; the phone retries once with a new token.
fn is_stale_proof(text: &str) -> bool {
    text.trim_start()
        .get(..11)
        .is_some_and(|p| p.eq_ignore_ascii_case("stale proof"))
}

fn refused(r: &AuthResponse<'_>, fallback: &str) -> AuthStep {
    let text = r
        .reason_text
        .filter(|t| !t.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            if r.phrase.trim().is_empty() {
                format!("{fallback} ({})", r.status)
            } else {
                format!("{fallback} ({} {})", r.status, r.phrase)
            }
        });
    AuthStep::Refused {
        status: r.status,
        reason: text,
    }
}

/// The user-facing reason of a final failure response: the `Reason` text if the provider gave
/// one, else `STATUS PHRASE`.
pub fn failure_text(status: u16, phrase: &str, reason_text: Option<&str>) -> String {
    match reason_text.filter(|t| !t.trim().is_empty()) {
        Some(t) => t.to_string(),
        None if phrase.is_empty() => status.to_string(),
        None => format!("{status} {phrase}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEARER: &str = r#"Bearer realm="127.0.0.1:5070", scope="krypton", nonce="abc.123""#;
    const DIGEST: &str = r#"Digest realm="127.0.0.1:5070", nonce="d1", qop="auth""#;

    fn ch(nonce: &str) -> BearerChallenge {
        BearerChallenge {
            realm: "127.0.0.1:5070".into(),
            scope: "krypton".into(),
            nonce: nonce.into(),
        }
    }

    #[test]
    fn bearer_challenges_parse() {
        assert_eq!(parse_bearer_challenges(BEARER), [ch("abc.123")]);
        // Case, spacing, unquoted tokens, unknown parameters, parameter order.
        assert_eq!(
            parse_bearer_challenges(
                "bearer   nonce=abc.123 ,error=\"x, y\",REALM = \"127.0.0.1:5070\" , scope=krypton"
            ),
            [ch("abc.123")]
        );
        // A Digest challenge in the same value is skipped, before or after.
        assert_eq!(
            parse_bearer_challenges(&format!("{DIGEST}, {BEARER}")),
            [ch("abc.123")]
        );
        assert_eq!(
            parse_bearer_challenges(&format!("{BEARER}, {DIGEST}")),
            [ch("abc.123")]
        );
        // Escapes in quoted strings; no scope.
        assert_eq!(
            parse_bearer_challenges(r#"Bearer realm="a\"b", nonce="n""#),
            [BearerChallenge {
                realm: "a\"b".into(),
                scope: String::new(),
                nonce: "n".into()
            }]
        );
        let values = vec![DIGEST.to_string(), BEARER.to_string()];
        assert_eq!(first_bearer_challenge(&values), Some(ch("abc.123")));
    }

    #[test]
    fn malformed_bearer_challenges_are_skipped_without_panics() {
        for bad in [
            "",
            "Bearer",
            "Bearer realm=\"x\"",              // no nonce
            "Bearer nonce=\"x\"",              // no realm
            "Digest realm=\"x\", nonce=\"y\"", // another scheme
            "Bearer realm=\"x, nonce=\"y\"",   // broken quoting
            "=,=,\"\",\\",
            ",,,",
            "Bearer realm=\"é\u{0}\", nonce",
            "Bearerrealm=\"x\",nonce=\"y\"",
            "\"Bearer realm=x, nonce=y\"",
        ] {
            assert_eq!(parse_bearer_challenges(bad), [], "{bad:?}");
        }
        // Every prefix of a real value (byte-wise, on char boundaries) parses without panics.
        let v = format!("{DIGEST}, {BEARER}, Bearer realm=\"ü\", nonce=\"ß\"");
        for i in (0..=v.len()).filter(|i| v.is_char_boundary(*i)) {
            let _ = parse_bearer_challenges(&v[..i]);
            let _ = reason_text(&[v[..i].to_string()]);
        }
    }

    #[test]
    fn reason_texts_parse() {
        let r = |v: &str| reason_text(&[v.to_string()]);
        assert_eq!(
            r(r#"SIP;cause=403;text="stale proof: retry""#).as_deref(),
            Some("stale proof: retry")
        );
        assert_eq!(
            r(r#"Q.850;cause=16;text="normal", SIP ; cause=403 ; TEXT="not registered with this provider on chain: run krypton register --provider …""#).as_deref(),
            Some("not registered with this provider on chain: run krypton register --provider …")
        );
        assert_eq!(r(r#"Q.850;cause=16;text="a, b""#).as_deref(), Some("a, b"));
        assert_eq!(r("SIP;cause=403"), None);
        assert_eq!(r(""), None);
        assert_eq!(
            r("SIP;text=\"unterminated").as_deref(),
            Some("unterminated")
        );
        assert_eq!(reason_text(&[]), None);
    }

    #[test]
    fn supported_gets_krypton_once() {
        assert_eq!(supported_with_krypton(""), "krypton");
        assert_eq!(
            supported_with_krypton("path, outbound"),
            "path, outbound, krypton"
        );
        assert_eq!(
            supported_with_krypton("replaces,KRYPTON"),
            "replaces,KRYPTON"
        );
    }

    fn resp<'a>(status: u16, challenges: &'a [String], text: Option<&'a str>) -> AuthResponse<'a> {
        AuthResponse {
            status,
            phrase: "Phrase",
            challenges,
            reason_text: text,
        }
    }

    #[test]
    fn bearer_is_preferred_with_a_signer_and_digest_without() {
        let both = vec![BEARER.to_string(), DIGEST.to_string()];
        let mut a = AuthRetry::new(true);
        assert_eq!(
            a.handle(&resp(401, &both, None)),
            AuthStep::Retry(AuthAnswer::Bearer {
                proxy: false,
                challenge: ch("abc.123")
            })
        );
        let mut a = AuthRetry::new(false);
        assert_eq!(
            a.handle(&resp(407, &both, None)),
            AuthStep::Retry(AuthAnswer::Digest {
                proxy: true,
                challenges: both.clone()
            })
        );
        // A signer but only a digest challenge: digest as before.
        let digest = vec![DIGEST.to_string()];
        let mut a = AuthRetry::new(true);
        let step = a.handle(&resp(401, &digest, None));
        assert!(matches!(
            step,
            AuthStep::Retry(AuthAnswer::Digest { proxy: false, .. })
        ));
        assert_eq!(
            AuthAnswer::Bearer {
                proxy: true,
                challenge: ch("n")
            }
            .header(),
            Some("Proxy-Authorization")
        );
        assert_eq!(AuthAnswer::Fresh.header(), None);
        // Not an authentication matter.
        assert_eq!(a.handle(&resp(200, &[], None)), AuthStep::Pass);
        assert_eq!(a.handle(&resp(503, &[], None)), AuthStep::Pass);
    }

    #[test]
    fn a_challenge_after_our_token_is_a_refusal_with_its_text() {
        let b = vec![BEARER.to_string()];
        let mut a = AuthRetry::new(true);
        assert!(matches!(a.handle(&resp(401, &b, None)), AuthStep::Retry(_)));
        assert_eq!(
            a.handle(&resp(
                401,
                &b,
                Some("the proof is not signed by this address's key")
            )),
            AuthStep::Refused {
                status: 401,
                reason: "the proof is not signed by this address's key".into()
            }
        );
        let mut a = AuthRetry::new(true);
        a.handle(&resp(407, &b, None));
        assert_eq!(
            a.handle(&resp(407, &b, None)),
            AuthStep::Refused {
                status: 407,
                reason: "the provider refused our proof (407 Phrase)".into()
            }
        );
    }

    #[test]
    fn a_stale_proof_is_retried_once_with_a_fresh_challenge() {
        let b = vec![BEARER.to_string()];
        let stale = Some("stale proof: retry");
        let mut a = AuthRetry::new(true);
        assert!(matches!(
            a.handle(&resp(401, &b, None)),
            AuthStep::Retry(AuthAnswer::Bearer { .. })
        ));
        assert_eq!(
            a.handle(&resp(403, &[], stale)),
            AuthStep::Retry(AuthAnswer::Fresh)
        );
        // The fresh challenge is answered with a new token …
        assert!(matches!(
            a.handle(&resp(401, &b, None)),
            AuthStep::Retry(AuthAnswer::Bearer { .. })
        ));
        // … and a second stale proof is an ordinary 403.
        assert_eq!(a.handle(&resp(403, &[], stale)), AuthStep::Pass);

        // Other 403s, and a stale-proof 403 to a request without a token, pass through.
        let mut a = AuthRetry::new(true);
        assert_eq!(a.handle(&resp(403, &[], stale)), AuthStep::Pass);
        a.handle(&resp(401, &b, None));
        assert_eq!(
            a.handle(&resp(
                403,
                &[],
                Some("expired proof: check the computer's clock")
            )),
            AuthStep::Pass
        );
    }

    #[test]
    fn digest_stale_nonces_are_answered_once() {
        let d1 = vec![DIGEST.to_string()];
        let stale = vec![format!("{DIGEST}, stale=true")];
        let mut a = AuthRetry::new(false);
        assert!(matches!(
            a.handle(&resp(401, &d1, None)),
            AuthStep::Retry(AuthAnswer::Digest { .. })
        ));
        assert!(matches!(
            a.handle(&resp(401, &stale, None)),
            AuthStep::Retry(AuthAnswer::Digest { .. })
        ));
        assert!(matches!(
            a.handle(&resp(401, &stale, None)),
            AuthStep::Refused { status: 401, reason } if reason.contains("refused our credentials")
        ));
        let mut a = AuthRetry::new(false);
        a.handle(&resp(407, &d1, None));
        assert!(matches!(
            a.handle(&resp(407, &d1, None)),
            AuthStep::Refused { status: 407, .. }
        ));
    }

    #[test]
    fn failure_texts() {
        assert_eq!(failure_text(403, "Forbidden", Some("nope")), "nope");
        assert_eq!(failure_text(403, "Forbidden", Some(" ")), "403 Forbidden");
        assert_eq!(failure_text(403, "Forbidden", None), "403 Forbidden");
        assert_eq!(failure_text(403, "", None), "403");
        assert!(is_stale_proof("stale proof: retry"));
        assert!(!is_stale_proof("stale"));
        assert!(!is_stale_proof("ståle proof"));
    }
}
