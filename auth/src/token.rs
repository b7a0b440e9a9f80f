//! ES256 compact JWS tokens (AUTH.md §4–§6): claims, minting, strict verification, key check.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use krypton_wallet::{PrivateKey, PublicKey, ScriptHash};
use serde::{Deserialize, Serialize};

use crate::AuthError;

/// Longest token accepted, in bytes (a real one is about 600).
pub const MAX_TOKEN_LEN: usize = 4096;
/// Longest base64url header part accepted.
const MAX_HEADER_B64: usize = 512;
/// A 64-byte `r ‖ s` signature is exactly 86 base64url characters without padding.
const SIG_B64_LEN: usize = 86;
/// How far in the future `iat` may be (clock skew), seconds.
pub const IAT_SKEW_SECS: u64 = 5;
/// Longest accepted `exp − iat`, seconds.
pub const MAX_LIFETIME_SECS: u64 = 60;
/// The `cid` of a credentials request (§5), which has no SIP Call-ID.
pub const CREDENTIALS_CID: &str = "credentials";

/// The claims of a KRYPTON token. One struct covers the three uses; the constructors
/// [`Claims::register`], [`Claims::credentials`] and [`Claims::provider`] fill the right fields.
///
/// Unknown claims are refused when verifying (strict parsing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Issuer: the user's NEO address (§4, §5) or the sending provider's address (§6).
    pub iss: String,
    /// `sip:ADDRESS@P-domain` (§4, §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience: the provider's realm (§4, §5) or the receiving provider's address (§6).
    pub aud: String,
    /// The provider-issued nonce (§4, §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The request's Call-ID, or [`CREDENTIALS_CID`] (§5).
    pub cid: String,
    /// The Contact's `+sip.instance`, `urn:uuid:…` (§4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inst: Option<String>,
    /// The calling user's address (§6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The called user's address (§6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Expires at, unix seconds.
    pub exp: u64,
}

impl Claims {
    /// REGISTER (or 407 re-challenge) Bearer claims, §4: `exp = iat + lifetime`.
    pub fn register(
        address: &str,
        realm: &str,
        nonce: &str,
        call_id: &str,
        instance: &str,
        iat: u64,
        lifetime: u64,
    ) -> Self {
        Claims {
            iss: address.to_owned(),
            sub: Some(format!("sip:{address}@{realm}")),
            aud: realm.to_owned(),
            nonce: Some(nonce.to_owned()),
            cid: call_id.to_owned(),
            inst: Some(instance.to_owned()),
            from: None,
            to: None,
            iat,
            exp: iat.saturating_add(lifetime),
        }
    }

    /// Credentials-request claims, §5: as §4 with `cid` = [`CREDENTIALS_CID`] and no instance.
    pub fn credentials(address: &str, realm: &str, nonce: &str, iat: u64, lifetime: u64) -> Self {
        Claims {
            iss: address.to_owned(),
            sub: Some(format!("sip:{address}@{realm}")),
            aud: realm.to_owned(),
            nonce: Some(nonce.to_owned()),
            cid: CREDENTIALS_CID.to_owned(),
            inst: None,
            from: None,
            to: None,
            iat,
            exp: iat.saturating_add(lifetime),
        }
    }

    /// Provider-to-provider claims, §6 (`Krypton-Provider` header).
    pub fn provider(
        from_provider: &str,
        to_provider: &str,
        call_id: &str,
        from_user: &str,
        to_user: &str,
        iat: u64,
        lifetime: u64,
    ) -> Self {
        Claims {
            iss: from_provider.to_owned(),
            sub: None,
            aud: to_provider.to_owned(),
            nonce: None,
            cid: call_id.to_owned(),
            inst: None,
            from: Some(from_user.to_owned()),
            to: Some(to_user.to_owned()),
            iat,
            exp: iat.saturating_add(lifetime),
        }
    }
}

/// What the verifier expects of a token. `None` fields are not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// Our realm (§4, §5) or our provider address (§6).
    pub aud: &'a str,
    /// The request's Call-ID, or [`CREDENTIALS_CID`].
    pub cid: &'a str,
    /// The nonce the token must carry (check it with [`crate::NonceIssuer`] too).
    pub nonce: Option<&'a str>,
    /// The AOR user part (the address) the token must be issued by.
    pub iss: Option<&'a str>,
    /// The Contact's `+sip.instance` the token must name.
    pub inst: Option<&'a str>,
}

/// A token that passed [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The issuer (`iss`), a NEO address; still to be matched to `kid` with [`key_matches_address`].
    pub iss: String,
    /// The signing key from the header, 33-byte compressed SEC1.
    pub kid: [u8; 33],
    /// All claims.
    pub claims: Claims,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    kid: String,
}

/// Signs `claims` as an ES256 compact JWS: header `{"alg":"ES256","typ":"JWT","kid":<hex>}`,
/// signature `r ‖ s` over SHA-256 of `header.payload` (RFC 7518 §3.4), made by the wallet key.
pub fn mint(key: &PrivateKey, claims: &Claims) -> String {
    let header = Header {
        alg: "ES256".to_owned(),
        typ: Some("JWT".to_owned()),
        kid: key.public_key().to_hex(),
    };
    let h = serde_json::to_vec(&header).expect("header serializes");
    let p = serde_json::to_vec(claims).expect("claims serialize");
    let mut out = URL_SAFE_NO_PAD.encode(h);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(p));
    let sig = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    out
}

/// Decodes unpadded, canonical base64url (the engine refuses padding and stray trailing bits).
fn b64(part: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::BadBase64)
}

/// Parses `kid`: exactly 66 lowercase or uppercase hex digits of a valid compressed point.
/// Returns its bytes and the point uncompressed (`04 ‖ X ‖ Y`, the form ring verifies with).
fn parse_kid(kid: &str) -> Result<([u8; 33], p256::EncodedPoint), AuthError> {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    if kid.len() != 66 {
        return Err(AuthError::BadKid);
    }
    let mut b = [0u8; 33];
    hex::decode_to_slice(kid, &mut b).map_err(|_| AuthError::BadKid)?;
    if b[0] != 0x02 && b[0] != 0x03 {
        return Err(AuthError::BadKid);
    }
    let pk = p256::PublicKey::from_sec1_bytes(&b).map_err(|_| AuthError::BadKid)?;
    Ok((b, pk.to_encoded_point(false)))
}

/// ES256: the raw 64-byte `r ‖ s` over SHA-256(`input`) with the uncompressed key `point`. ring's
/// P-256 (assembly) verifies about 5× faster than p256's (~70 vs ~370 µs on the dev VM), which is
/// most of a REGISTER's cost at the provider; [`mint`] still signs with the wallet's p256 key.
fn es256_verify(point: &p256::EncodedPoint, input: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        point.as_bytes(),
    )
    .verify(input, sig)
    .is_ok()
}

/// Verifies `token` at unix time `now`: strict parsing, the ES256 signature against `kid`, then
/// the claims against `expect` (AUTH.md §4): `aud`, `nonce`, `cid`, `iat ≤ now + 5`,
/// `iat ≤ exp ≤ iat + 60`, `now ≤ exp`, `iss` and `inst` when expected, `sub` = `sip:ISS@AUD` when
/// present.
///
/// Does not check that `kid` belongs to `iss` (see [`key_matches_address`]) nor that the nonce is
/// ours and unused (see [`crate::NonceIssuer::consume`]): both need state the caller holds.
pub fn verify(token: &str, expect: &Expected<'_>, now: u64) -> Result<Verified, AuthError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::BadSize);
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::BadShape);
    };
    if h64.is_empty() || h64.len() > MAX_HEADER_B64 || p64.is_empty() || s64.len() != SIG_B64_LEN {
        return Err(AuthError::BadSize);
    }
    let header_json = b64(h64)?;
    let payload_json = b64(p64)?;
    let sig = b64(s64)?;

    let header: Header = serde_json::from_slice(&header_json).map_err(|_| AuthError::BadHeader)?;
    if header.alg != "ES256" {
        return Err(AuthError::UnsupportedAlg);
    }
    if header.typ.as_deref().is_some_and(|t| t != "JWT") {
        return Err(AuthError::BadType);
    }
    let (kid, point) = parse_kid(&header.kid)?;

    let signing_input = &token[..h64.len() + 1 + p64.len()];
    if !es256_verify(&point, signing_input.as_bytes(), &sig) {
        return Err(AuthError::BadSignature);
    }

    let claims: Claims =
        serde_json::from_slice(&payload_json).map_err(|_| AuthError::BadPayload)?;
    check_claims(&claims, expect, now)?;
    Ok(Verified {
        iss: claims.iss.clone(),
        kid,
        claims,
    })
}

fn check_claims(c: &Claims, expect: &Expected<'_>, now: u64) -> Result<(), AuthError> {
    if c.aud != expect.aud {
        return Err(AuthError::WrongAudience);
    }
    if let Some(n) = expect.nonce
        && c.nonce.as_deref() != Some(n)
    {
        return Err(AuthError::WrongNonce);
    }
    if c.cid != expect.cid {
        return Err(AuthError::WrongCallId);
    }
    if c.iat > now.saturating_add(IAT_SKEW_SECS) {
        return Err(AuthError::IssuedInFuture);
    }
    if c.exp < c.iat || c.exp - c.iat > MAX_LIFETIME_SECS {
        return Err(AuthError::BadLifetime);
    }
    if now > c.exp {
        return Err(AuthError::Expired);
    }
    if let Some(iss) = expect.iss
        && c.iss != iss
    {
        return Err(AuthError::WrongIssuer);
    }
    if let Some(sub) = &c.sub {
        let want = format!("sip:{}@{}", c.iss, c.aud);
        if *sub != want {
            return Err(AuthError::WrongSubject);
        }
    }
    if let Some(inst) = expect.inst
        && c.inst.as_deref() != Some(inst)
    {
        return Err(AuthError::WrongInstance);
    }
    Ok(())
}

/// AUTH.md §3 point 2: does the key `kid` belong to `address`?
///
/// With a device key on chain (`device_key` = `query("key", A)`), only that key is accepted. Without
/// one, the key's single-signature verification script must hash to the address.
pub fn key_matches_address(
    kid: &[u8; 33],
    address: &str,
    device_key: Option<&[u8; 33]>,
) -> Result<(), AuthError> {
    if let Some(dk) = device_key {
        return if dk == kid {
            Ok(())
        } else {
            Err(AuthError::KeyNotAddress)
        };
    }
    let pk = PublicKey::from_bytes(kid).map_err(|_| AuthError::BadKid)?;
    let want = ScriptHash::from_address(address).map_err(|_| AuthError::KeyNotAddress)?;
    if pk.script_hash() == want {
        Ok(())
    } else {
        Err(AuthError::KeyNotAddress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIV: &str = "84180ac9d6eb6fba207ea4ef9d2200102d1ebeb4b9c07e2c6a738a42742e27a5";
    const ADDR: &str = "NM7Aky765FG8NhhwtxjXRx7jEL1cnw7PBP";
    const REALM: &str = "sip.example.org";
    const NONCE: &str = "n0nce";
    const CID: &str = "a84b4c76e66710@pc33";
    const INST: &str = "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
    const T0: u64 = 1_800_000_000;

    fn key() -> PrivateKey {
        PrivateKey::from_bytes(&hex::decode(PRIV).unwrap()).unwrap()
    }

    fn claims() -> Claims {
        Claims::register(ADDR, REALM, NONCE, CID, INST, T0, 60)
    }

    fn expected() -> Expected<'static> {
        Expected {
            aud: REALM,
            cid: CID,
            nonce: Some(NONCE),
            iss: Some(ADDR),
            inst: Some(INST),
        }
    }

    fn parts(t: &str) -> (String, String, String) {
        let v: Vec<&str> = t.split('.').collect();
        (v[0].into(), v[1].into(), v[2].into())
    }

    /// A token with a raw header and payload, correctly signed by `key()`.
    fn signed_raw(header: &str, payload: &str) -> String {
        let mut s = URL_SAFE_NO_PAD.encode(header);
        s.push('.');
        s.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let sig = key().sign(s.as_bytes());
        s.push('.');
        s.push_str(&URL_SAFE_NO_PAD.encode(sig));
        s
    }

    fn kid_hex() -> String {
        key().public_key().to_hex()
    }

    #[test]
    fn round_trip_register_token() {
        let t = mint(&key(), &claims());
        let (h, _, s) = parts(&t);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg":"ES256","typ":"JWT","kid": kid_hex()})
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(s).unwrap().len(), 64);
        for now in [T0 - IAT_SKEW_SECS, T0, T0 + 60] {
            let v = verify(&t, &expected(), now).unwrap();
            assert_eq!(v.iss, ADDR);
            assert_eq!(v.kid, key().public_key().to_compressed());
            assert_eq!(v.claims, claims());
        }
        assert_eq!(key_matches_address(&v_kid(), ADDR, None), Ok(()));
    }

    fn v_kid() -> [u8; 33] {
        key().public_key().to_compressed()
    }

    #[test]
    fn credentials_and_provider_tokens_verify() {
        let c = Claims::credentials(ADDR, REALM, NONCE, T0, 30);
        let t = mint(&key(), &c);
        let e = Expected {
            cid: CREDENTIALS_CID,
            inst: None,
            ..expected()
        };
        assert_eq!(verify(&t, &e, T0).unwrap().claims.cid, "credentials");
        // A §4 expectation (real Call-ID) does not accept a credentials token.
        assert_eq!(verify(&t, &expected(), T0), Err(AuthError::WrongCallId));

        let b = "NVg7LjGcUSrgxgjX3zEgqaksfMaiS8Z6e1";
        let p = Claims::provider(ADDR, b, CID, "NAlice", "NBob", T0, 60);
        let t = mint(&key(), &p);
        let e = Expected {
            aud: b,
            cid: CID,
            nonce: None,
            iss: None,
            inst: None,
        };
        let v = verify(&t, &e, T0 + 10).unwrap();
        assert_eq!(v.claims.from.as_deref(), Some("NAlice"));
        assert_eq!(v.claims.to.as_deref(), Some("NBob"));
        assert!(!parts(&t).1.is_empty());
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts(&t).1).unwrap()).unwrap();
        assert!(payload.get("nonce").is_none() && payload.get("sub").is_none());
    }

    #[test]
    fn each_claim_violation_has_its_own_error() {
        let k = key();
        let check = |c: Claims, e: Expected<'_>, now: u64, want: AuthError| {
            assert_eq!(verify(&mint(&k, &c), &e, now), Err(want), "{c:?}");
        };
        let e = expected();
        check(
            Claims {
                aud: "other.org".into(),
                sub: Some(format!("sip:{ADDR}@other.org")),
                ..claims()
            },
            e,
            T0,
            AuthError::WrongAudience,
        );
        check(
            Claims {
                nonce: Some("other".into()),
                ..claims()
            },
            e,
            T0,
            AuthError::WrongNonce,
        );
        check(
            Claims {
                nonce: None,
                ..claims()
            },
            e,
            T0,
            AuthError::WrongNonce,
        );
        check(
            Claims {
                cid: "other-call".into(),
                ..claims()
            },
            e,
            T0,
            AuthError::WrongCallId,
        );
        // iat 6 s ahead of now: beyond the skew.
        check(
            claims(),
            e,
            T0 - IAT_SKEW_SECS - 1,
            AuthError::IssuedInFuture,
        );
        check(
            Claims {
                exp: T0 + 61,
                ..claims()
            },
            e,
            T0,
            AuthError::BadLifetime,
        );
        check(
            Claims {
                exp: T0 - 1,
                ..claims()
            },
            e,
            T0,
            AuthError::BadLifetime,
        );
        check(claims(), e, T0 + 61, AuthError::Expired);
        let other_addr = PrivateKey::generate().public_key().address();
        check(
            Claims {
                iss: other_addr.clone(),
                sub: Some(format!("sip:{other_addr}@{REALM}")),
                ..claims()
            },
            e,
            T0,
            AuthError::WrongIssuer,
        );
        check(
            Claims {
                sub: Some(format!("sip:{other_addr}@{REALM}")),
                ..claims()
            },
            e,
            T0,
            AuthError::WrongSubject,
        );
        check(
            Claims {
                inst: Some("urn:uuid:0".into()),
                ..claims()
            },
            e,
            T0,
            AuthError::WrongInstance,
        );
        check(
            Claims {
                inst: None,
                ..claims()
            },
            e,
            T0,
            AuthError::WrongInstance,
        );
    }

    #[test]
    fn reason_texts_follow_auth_md_section_7() {
        assert_eq!(
            AuthError::BadSignature.to_string(),
            "the proof is not signed by this address's key"
        );
        assert_eq!(
            AuthError::KeyNotAddress.to_string(),
            "the proof is not signed by this address's key"
        );
        assert_eq!(AuthError::ReplayedNonce.to_string(), "stale proof: retry");
        assert_eq!(AuthError::WrongNonce.to_string(), "stale proof: retry");
        assert_eq!(
            AuthError::Expired.to_string(),
            "expired proof: check the computer's clock"
        );
    }

    #[test]
    fn tampering_is_detected() {
        let t = mint(&key(), &claims());
        let (h, p, s) = parts(&t);
        let e = expected();

        // Payload swapped for another (valid-looking) one: the signature no longer matches.
        let other = Claims {
            exp: T0 + 30,
            ..claims()
        };
        let p2 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            verify(&format!("{h}.{p2}.{s}"), &e, T0),
            Err(AuthError::BadSignature)
        );
        // One bit of the signature flipped.
        let mut sig = URL_SAFE_NO_PAD.decode(&s).unwrap();
        sig[10] ^= 0x40;
        let s2 = URL_SAFE_NO_PAD.encode(&sig);
        assert_eq!(
            verify(&format!("{h}.{p}.{s2}"), &e, T0),
            Err(AuthError::BadSignature)
        );
        // Header re-encoded with the key order changed: signed input differs.
        let h2 = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"typ":"JWT","alg":"ES256","kid":"{}"}}"#,
            kid_hex()
        ));
        assert_eq!(
            verify(&format!("{h2}.{p}.{s}"), &e, T0),
            Err(AuthError::BadSignature)
        );
        // Another key in kid: its own signature would be needed.
        let other_kid = PrivateKey::generate().public_key().to_hex();
        let h3 = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"ES256","typ":"JWT","kid":"{other_kid}"}}"#
        ));
        assert_eq!(
            verify(&format!("{h3}.{p}.{s}"), &e, T0),
            Err(AuthError::BadSignature)
        );
        // alg downgraded to none with the signature dropped or kept.
        let hn = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            kid_hex()
        ));
        assert_eq!(
            verify(&format!("{hn}.{p}."), &e, T0),
            Err(AuthError::BadSize)
        );
        assert_eq!(
            verify(&format!("{hn}.{p}.{s}"), &e, T0),
            Err(AuthError::UnsupportedAlg)
        );
    }

    /// ring verifies (see `es256_verify`) what the wallet's p256 key signs, and agrees with p256's
    /// own verifier on every variant: good, a flipped bit in the signature or the input, the
    /// high-`s` twin of a signature (`n − s`, valid ECDSA that neither side normalises), `r` or `s`
    /// zero.
    #[test]
    fn ring_verify_agrees_with_the_p256_signer() {
        use p256::ecdsa::Signature;
        for i in 0..16u64 {
            let k = if i == 0 {
                key()
            } else {
                PrivateKey::generate()
            };
            let kid = k.public_key().to_hex();
            let (_, point) = parse_kid(&kid).unwrap();
            let pk = k.public_key();
            // A minted token verifies through `verify`.
            let c = Claims {
                iat: T0 + i,
                exp: T0 + i + 60,
                ..claims()
            };
            let t = mint(&k, &c);
            let e = Expected {
                iss: Some(&c.iss),
                ..expected()
            };
            assert_eq!(verify(&t, &e, T0 + i).map(|v| v.claims), Ok(c.clone()));
            let (h, p, s64) = parts(&t);
            let input = format!("{h}.{p}");
            let sig = URL_SAFE_NO_PAD.decode(&s64).unwrap();
            assert!(es256_verify(&point, input.as_bytes(), &sig));
            assert!(pk.verify(input.as_bytes(), &sig));
            // A flipped bit anywhere in the signature, or in the signed input: refused by both.
            let bit = (i as usize * 37) % (64 * 8);
            let mut bad = sig.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!es256_verify(&point, input.as_bytes(), &bad));
            assert!(!pk.verify(input.as_bytes(), &bad));
            let s_bad = URL_SAFE_NO_PAD.encode(&bad);
            assert_eq!(
                verify(&format!("{input}.{s_bad}"), &e, T0 + i),
                Err(AuthError::BadSignature)
            );
            let mut bad_input = input.clone().into_bytes();
            bad_input[(i as usize * 11) % input.len()] ^= 0x01;
            assert!(!es256_verify(&point, &bad_input, &sig));
            assert!(!pk.verify(&bad_input, &sig));
            // The same signature with s → n − s: both verifiers give the same answer.
            let parsed = Signature::from_slice(&sig).unwrap();
            let (r, s) = parsed.split_scalars();
            let twin = Signature::from_scalars(r, -s).unwrap().to_bytes();
            assert_eq!(
                es256_verify(&point, input.as_bytes(), &twin),
                pk.verify(input.as_bytes(), &twin)
            );
            // r = 0 or s = 0: refused by both.
            for zero in [0..32, 32..64] {
                let mut z = sig.clone();
                z[zero].fill(0);
                assert!(!es256_verify(&point, input.as_bytes(), &z));
                assert!(!pk.verify(input.as_bytes(), &z));
            }
        }
    }

    #[test]
    fn header_and_payload_are_parsed_strictly() {
        let e = expected();
        let payload = serde_json::to_string(&claims()).unwrap();
        let kid = kid_hex();
        let cases: Vec<(String, AuthError)> = vec![
            (
                format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#),
                AuthError::UnsupportedAlg,
            ),
            (
                format!(r#"{{"alg":"es256","kid":"{kid}"}}"#),
                AuthError::UnsupportedAlg,
            ),
            (
                format!(r#"{{"alg":"ES256","typ":"JOSE","kid":"{kid}"}}"#),
                AuthError::BadType,
            ),
            (
                format!(r#"{{"alg":"ES256","kid":"{kid}","crit":["x"]}}"#),
                AuthError::BadHeader,
            ),
            (
                format!(r#"{{"alg":"ES256","alg":"ES256","kid":"{kid}"}}"#),
                AuthError::BadHeader,
            ),
            (r#"{"alg":"ES256"}"#.into(), AuthError::BadHeader),
            (r#"[1,2]"#.into(), AuthError::BadHeader),
            (
                format!(r#"{{"alg":"ES256","kid":"{}"}}"#, &kid[..64]),
                AuthError::BadKid,
            ),
            (
                // Uncompressed form is refused: kid is the 33-byte point.
                format!(r#"{{"alg":"ES256","kid":"04{}"}}"#, &kid[2..]),
                AuthError::BadKid,
            ),
            (
                format!(r#"{{"alg":"ES256","kid":"02{}"}}"#, "ff".repeat(32)),
                AuthError::BadKid,
            ),
            (
                format!(r#"{{"alg":"ES256","kid":"zz{}"}}"#, &kid[2..]),
                AuthError::BadKid,
            ),
        ];
        for (header, want) in cases {
            assert_eq!(
                verify(&signed_raw(&header, &payload), &e, T0),
                Err(want),
                "{header}"
            );
        }
        // typ may be left out.
        let ok = signed_raw(&format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#), &payload);
        assert!(verify(&ok, &e, T0).is_ok());

        let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#);
        let mut extra: serde_json::Value = serde_json::from_str(&payload).unwrap();
        extra["admin"] = true.into();
        let bad_payloads = [
            extra.to_string(),
            payload.replace(&format!("\"iat\":{T0}"), &format!("\"iat\":\"{T0}\"")),
            payload.replace(&format!("\"exp\":{}", T0 + 60), "\"exp\":-1"),
            payload.replace("\"aud\"", "\"aud\":\"x\",\"aud\""),
            payload.replace(&format!("\"aud\":\"{REALM}\","), ""),
            "null".into(),
            "[]".into(),
            "{".into(),
        ];
        for p in bad_payloads {
            assert_eq!(
                verify(&signed_raw(&header, &p), &e, T0),
                Err(AuthError::BadPayload),
                "{p}"
            );
        }
    }

    #[test]
    fn shape_size_and_base64_are_checked() {
        let t = mint(&key(), &claims());
        let (h, p, s) = parts(&t);
        let e = expected();
        assert_eq!(verify("", &e, T0), Err(AuthError::BadSize));
        assert_eq!(
            verify(&"a".repeat(MAX_TOKEN_LEN + 1), &e, T0),
            Err(AuthError::BadSize)
        );
        assert_eq!(
            verify(&format!("{h}.{p}"), &e, T0),
            Err(AuthError::BadShape)
        );
        assert_eq!(
            verify(&format!("{h}.{p}.{s}.x"), &e, T0),
            Err(AuthError::BadShape)
        );
        // Padding, standard-alphabet characters and whitespace are not base64url without padding.
        let padded = format!("{h}=.{p}.{s}");
        assert_eq!(verify(&padded, &e, T0), Err(AuthError::BadBase64));
        let plus = format!("{}+{}.{p}.{s}", &h[..4], &h[5..]);
        assert_eq!(verify(&plus, &e, T0), Err(AuthError::BadBase64));
        let space = format!("{h}.{p} .{s}");
        assert_eq!(verify(&space, &e, T0), Err(AuthError::BadBase64));
        // Non-canonical final character (stray low bits) in the 86-char signature.
        let last = s.chars().last().unwrap();
        let bumped = match last {
            'A' => 'B',
            'Q' => 'R',
            'g' => 'h',
            'w' => 'x',
            c => c,
        };
        if bumped != last {
            let s2 = format!("{}{bumped}", &s[..s.len() - 1]);
            assert_eq!(
                verify(&format!("{h}.{p}.{s2}"), &e, T0),
                Err(AuthError::BadBase64)
            );
        }
        // Signature of the wrong length.
        assert_eq!(
            verify(&format!("{h}.{p}.{}", &s[..85]), &e, T0),
            Err(AuthError::BadSize)
        );
    }

    #[test]
    fn key_to_address_check() {
        let kid = v_kid();
        assert_eq!(key_matches_address(&kid, ADDR, None), Ok(()));
        let stranger = PrivateKey::generate().public_key();
        // A valid token from another key claiming our address: signature fine, key check fails.
        assert_eq!(
            key_matches_address(&stranger.to_compressed(), ADDR, None),
            Err(AuthError::KeyNotAddress)
        );
        assert_eq!(
            key_matches_address(&kid, "not-an-address", None),
            Err(AuthError::KeyNotAddress)
        );
        assert_eq!(
            key_matches_address(&[0u8; 33], ADDR, None),
            Err(AuthError::BadKid)
        );
    }

    #[test]
    fn device_key_path() {
        let device = PrivateKey::generate();
        let dk = device.public_key().to_compressed();
        // The device signs for ADDR; the token verifies and the key matches the device key on chain.
        let t = mint(&device, &claims());
        let v = verify(&t, &expected(), T0).unwrap();
        assert_eq!(v.kid, dk);
        assert_eq!(key_matches_address(&v.kid, ADDR, Some(&dk)), Ok(()));
        // Without a device key on chain the device key is not the address's key.
        assert_eq!(
            key_matches_address(&v.kid, ADDR, None),
            Err(AuthError::KeyNotAddress)
        );
        // With a device key set, the account key itself is no longer accepted.
        assert_eq!(
            key_matches_address(&v_kid(), ADDR, Some(&dk)),
            Err(AuthError::KeyNotAddress)
        );
    }

    #[test]
    fn replay_is_refused_via_nonce_issuer() {
        let mut issuer = crate::NonceIssuer::new(&[9u8; 32]);
        let nonce = issuer.issue(T0, CID);
        let c = Claims::register(ADDR, REALM, &nonce, CID, INST, T0, 60);
        let t = mint(&key(), &c);
        let e = Expected {
            nonce: Some(&nonce),
            ..expected()
        };
        let accept = |issuer: &mut crate::NonceIssuer, now| {
            let v = verify(&t, &e, now)?;
            key_matches_address(&v.kid, &v.iss, None)?;
            issuer.consume(v.claims.nonce.as_deref().unwrap_or(""), now, &v.claims.cid)
        };
        assert_eq!(accept(&mut issuer, T0 + 1), Ok(()));
        assert_eq!(accept(&mut issuer, T0 + 2), Err(AuthError::ReplayedNonce));
        // Later still the token is valid but the nonce is stale.
        assert_eq!(accept(&mut issuer, T0 + 40), Err(AuthError::StaleNonce));
    }

    /// Small deterministic generator so the hostile-input test needs no extra crate.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn hostile_tokens_never_panic_or_pass() {
        let e = expected();
        let good = mint(&key(), &claims());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_hdr = URL_SAFE_NO_PAD.encode("[".repeat(300));
        let deep_payload = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"iss":{}{}}}"#,
            "[".repeat(1000),
            "]".repeat(1000)
        ));
        let (h, _, s) = parts(&good);
        let fixed = vec![
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            "a.b.c".into(),
            "\u{0}\u{0}.\u{0}.\u{0}".into(),
            "é.é.é".into(),
            deep,
            format!("{deep_hdr}.{}.{s}", parts(&good).1),
            format!("{h}.{deep_payload}.{s}"),
            "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.".into(),
            "x".repeat(1_000_000),
        ];
        for t in &fixed {
            assert!(verify(t, &e, T0).is_err(), "{:.40}", t);
        }
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ {}\"";
        for _ in 0..2000 {
            let len = (rng.next() % 400) as usize;
            let t: String = (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize] as char)
                .collect();
            assert!(verify(&t, &e, T0).is_err());
        }
        // Single-byte mutations of a valid token never pass.
        let bytes = good.as_bytes();
        for _ in 0..2000 {
            let mut b = bytes.to_vec();
            let i = (rng.next() % b.len() as u64) as usize;
            let c = alphabet[(rng.next() % alphabet.len() as u64) as usize];
            if b[i] == c {
                continue;
            }
            b[i] = c;
            let t = String::from_utf8(b).unwrap();
            assert!(verify(&t, &e, T0).is_err(), "{t}");
        }
    }
}
