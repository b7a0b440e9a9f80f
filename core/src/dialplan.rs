//! The dial plan: which account(s) carry a call or message to a destination. Sans-IO and pure.
//!
//! A user routes by destination, e.g. Dutch numbers through one provider, other international
//! numbers through another, NEO N3 addresses through KRYPTON, and everything else through a
//! default:
//!
//! ```json
//! { "rules": [
//!     { "match": { "prefix": "+31" }, "accounts": ["provider-a"] },
//!     { "match": { "prefix": "00" },  "accounts": ["provider-b"], "strip": 2, "prepend": "+" },
//!     { "match": { "prefix": "0" },   "accounts": ["provider-a"] },
//!     { "match": { "prefix": "+" },   "accounts": ["provider-b", "provider-a"] },
//!     { "match": "neo_address",       "accounts": ["krypton"] } ],
//!   "default": ["provider-a"] }
//! ```
//!
//! (In TOML: `match = { prefix = "+31" }`, `match = "neo_address"`.)
//!
//! # Semantics
//!
//! * The destination is first [`normalize`]d.
//! * Rules are tried **in order and the first matching rule wins** (not the longest prefix):
//!   what the user reads top-down is what happens. So `00` must come before `0`;
//!   [`DialPlan::validate`] reports a rule that an earlier one makes unreachable.
//! * The routes are the matching rule's accounts in failover order, each with the rule's target
//!   (after `strip` / `prepend`). Later matching rules are **not** consulted. Only when the rule
//!   sets `fallback_to_default`, the default accounts not already listed follow, with the
//!   destination unmodified (as if no rule had matched).
//! * When no rule matches, the routes are the default accounts with the destination unmodified.
//!   An empty result means "no route": the caller tells the user.
//! * The caller tries the routes in order and moves on when [`should_fail_over`] says so.
//!
//! Destinations are of three kinds: `sip:`/`sips:` URIs, NEO N3 addresses (checked with
//! [`krypton_wallet::ScriptHash::from_address`], including the checksum), and everything else
//! ("numbers", which may also be plain user names). [`Match::Prefix`] and [`Match::Pattern`] only
//! look at numbers, so a NEO address or URI never leaks into a PSTN rule; `strip` and `prepend`
//! only change numbers.

use serde::{Deserialize, Serialize};

/// Why a dial plan is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialPlanError {
    /// A rule or the default list names an account that does not exist.
    #[error("{} names the unknown account {account:?}", where_(*rule))]
    UnknownAccount {
        /// Index of the rule (0-based), or `None` for the default list.
        rule: Option<usize>,
        /// The unknown account id.
        account: String,
    },
    /// A rule has no accounts.
    #[error("dial plan rule {} has no accounts", rule + 1)]
    NoAccounts {
        /// Index of the rule (0-based).
        rule: usize,
    },
    /// A [`Match::Pattern`] is not valid.
    #[error("dial plan rule {}: invalid pattern {pattern:?}: {reason}", rule + 1)]
    BadPattern {
        /// Index of the rule (0-based).
        rule: usize,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `prepend` contains something other than `0-9 + * #`.
    #[error("dial plan rule {}: prepend {prepend:?} may only contain digits, '+', '*' and '#'", rule + 1)]
    BadPrepend {
        /// Index of the rule (0-based).
        rule: usize,
        /// The prepend string.
        prepend: String,
    },
    /// `strip` or `prepend` on a rule that matches NEO addresses or SIP URIs, which they never
    /// change.
    #[error("dial plan rule {}: strip/prepend only apply to numbers, not to NEO addresses or SIP URIs", rule + 1)]
    RewriteOnNonNumber {
        /// Index of the rule (0-based).
        rule: usize,
    },
    /// A rule can never match because an earlier rule matches everything it would.
    #[error("dial plan rule {} can never match: rule {} before it already matches those destinations (first match wins; move the more specific rule up)", rule + 1, shadowed_by + 1)]
    Unreachable {
        /// Index of the unreachable rule (0-based).
        rule: usize,
        /// Index of the earlier rule that shadows it (0-based).
        shadowed_by: usize,
    },
}

fn where_(rule: Option<usize>) -> String {
    match rule {
        Some(i) => format!("dial plan rule {}", i + 1),
        None => "the default route list".to_owned(),
    }
}

/// The user's routing table. Deserialises from the phone's TOML/JSON config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialPlan {
    /// Rules, tried in order; the first match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Account ids, in failover order, for destinations no rule matches.
    #[serde(default)]
    pub default: Vec<String>,
}

/// One routing rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Which destinations this rule takes (config key `match`).
    #[serde(rename = "match", alias = "matches")]
    pub matches: Match,
    /// Account ids in failover order.
    pub accounts: Vec<String>,
    /// How many leading characters of the number to remove (a leading `+` counts as one).
    #[serde(default)]
    pub strip: usize,
    /// What to put in front of the number after stripping (digits, `+`, `*`, `#`).
    #[serde(default)]
    pub prepend: String,
    /// After this rule's accounts, also try the default accounts (with the unmodified
    /// destination).
    #[serde(default)]
    pub fallback_to_default: bool,
}

/// What a rule matches. Serialised externally tagged in snake case: `{ "prefix": "+31" }`,
/// `{ "pattern": "0NXXXXXXXX" }`, `"neo_address"`, `"sip_uri"`, `"any"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// A number starting with this prefix (the prefix is [`normalize`]d too; `""` matches
    /// every number).
    Prefix(String),
    /// A number matching this Asterisk-like pattern as a whole. An optional leading `_` is
    /// ignored. Elements:
    ///
    /// * `0`–`9`, `+`, `*`, `#`: themselves;
    /// * `X`: any digit, `Z`: 1–9, `N`: 2–9 (upper or lower case);
    /// * `[…]`: one digit from a set of digits and ranges, e.g. `[1-5]`, `[137]`, `[0-35-9]`;
    /// * `.`: one or more characters of any kind (usually last: `00.`).
    ///
    /// Anything else makes the pattern invalid ([`DialPlan::validate`] says why; an invalid
    /// pattern matches nothing).
    Pattern(String),
    /// A valid NEO N3 address (version byte and checksum checked): the KRYPTON path. Its
    /// accounts should be the account flagged `krypton`.
    NeoAddress,
    /// A destination that is already a `sip:` or `sips:` URI.
    SipUri,
    /// Every destination.
    Any,
}

/// One way to reach the destination: which account, and what to dial on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The account id.
    pub account: String,
    /// The number after strip/prepend, or the NEO address or SIP URI unchanged.
    pub target: String,
}

/// What kind of destination a (normalised) string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `sip:` or `sips:` URI.
    SipUri,
    /// A NEO N3 address with a valid checksum.
    NeoAddress,
    /// Anything else: a phone number or a plain user name.
    Number,
}

fn is_sip_uri(s: &str) -> bool {
    let starts = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    starts("sip:") || starts("sips:")
}

fn is_neo_address(s: &str) -> bool {
    s.len() == 34 && s.starts_with('N') && krypton_wallet::ScriptHash::from_address(s).is_ok()
}

/// The kind of the (normalised) destination `s`.
pub fn kind(s: &str) -> Kind {
    if is_sip_uri(s) {
        Kind::SipUri
    } else if is_neo_address(s) {
        Kind::NeoAddress
    } else {
        Kind::Number
    }
}

/// Cleans up a destination as typed or pasted.
///
/// Phone numbers (only digits, `+`, `*`, `#` and separators) lose spaces, dashes, dots, slashes
/// and parentheses; the international "(0)" trunk-prefix notation is dropped (`+31 (0)20 …` →
/// `+3120…`). `sip:`/`sips:` URIs, NEO addresses and anything else (e.g. a user name like
/// `john.doe`) are only trimmed.
pub fn normalize(destination: &str) -> String {
    let s = destination.trim();
    let is_separator = |c: char| c.is_whitespace() || matches!(c, '-' | '.' | '(' | ')' | '/');
    let looks_like_number = s.chars().any(|c| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#') || is_separator(c));
    if !looks_like_number || kind(s) != Kind::Number {
        return s.to_owned();
    }
    let without_trunk = if s.starts_with('+') {
        s.replacen("(0)", "", 1)
    } else {
        s.to_owned()
    };
    without_trunk
        .chars()
        .filter(|&c| !is_separator(c))
        .collect()
}

/// Whether a final response to an INVITE or MESSAGE sent through one account means "try the
/// next route" (RFC 3261 §21).
///
/// Yes, because the failure is about that provider or account, not the callee:
///
/// * 408 Request Timeout (also what a transaction timeout or transport failure counts as);
/// * every 5xx: the server failed (500, 502, 503 Service Unavailable, 504 …);
/// * 401, 407 (credentials refused after the authentication layer's retry), 402 Payment
///   Required, 403 Forbidden (providers use it for "no credit" or "destination not allowed for
///   this account");
/// * 488 Not Acceptable Here: "may succeed elsewhere" (RFC 3261 §21.4.26), e.g. codecs.
///
/// No, because another provider would reach the same callee or the answer is final:
///
/// * 6xx (600 Busy Everywhere, 603 Decline, 604, 606): global failures, "decline everywhere";
/// * 404, 410, 484 (the number is wrong), 480 Temporarily Unavailable and 486 Busy Here (the
///   callee's state), 487 (we cancelled), and the other 4xx;
/// * 1xx–3xx, which are not failures (redirects are followed by the SIP layer).
///
/// An unanswered call (no-answer timeout) is not a failover reason; the caller handles it.
pub fn should_fail_over(status: u16) -> bool {
    matches!(status, 401..=403 | 407 | 408 | 488 | 500..=599)
}

impl Match {
    /// Whether this matches a destination that is already [`normalize`]d.
    pub fn matches(&self, destination: &str) -> bool {
        let k = kind(destination);
        match self {
            Match::Any => true,
            Match::SipUri => k == Kind::SipUri,
            Match::NeoAddress => k == Kind::NeoAddress,
            Match::Prefix(p) => k == Kind::Number && destination.starts_with(normalize(p).as_str()),
            Match::Pattern(p) => {
                k == Kind::Number
                    && compile(p).is_ok_and(|toks| match_toks(&toks, destination.as_bytes()))
            }
        }
    }
}

impl DialPlan {
    /// The routes for a destination, in the order to try them (see the module docs for the
    /// rules). Empty when nothing matches and there is no default.
    pub fn routes(&self, destination: &str) -> Vec<Route> {
        let dest = normalize(destination);
        let mut out: Vec<Route> = Vec::new();
        let push = |out: &mut Vec<Route>, account: &str, target: &str| {
            if !out.iter().any(|r| r.account == account) {
                out.push(Route {
                    account: account.to_owned(),
                    target: target.to_owned(),
                });
            }
        };
        let matched = self.rules.iter().find_map(|rule| {
            if !rule.matches.matches(&dest) {
                return None;
            }
            rewrite(rule, &dest).map(|target| (rule, target))
        });
        match matched {
            Some((rule, target)) => {
                for a in &rule.accounts {
                    push(&mut out, a, &target);
                }
                if rule.fallback_to_default {
                    for a in &self.default {
                        push(&mut out, a, &dest);
                    }
                }
            }
            None => {
                for a in &self.default {
                    push(&mut out, a, &dest);
                }
            }
        }
        out
    }

    /// Checks the plan against the configured account ids: unknown accounts, rules without
    /// accounts, invalid patterns and prepends, strip/prepend on non-numbers, and rules that an
    /// earlier rule makes unreachable. Returns the first problem found.
    pub fn validate(&self, known_accounts: &[&str]) -> Result<(), DialPlanError> {
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.accounts.is_empty() {
                return Err(DialPlanError::NoAccounts { rule: i });
            }
            check_accounts(Some(i), &rule.accounts, known_accounts)?;
            if let Match::Pattern(p) = &rule.matches {
                compile(p).map_err(|reason| DialPlanError::BadPattern {
                    rule: i,
                    pattern: p.clone(),
                    reason,
                })?;
            }
            if !rule
                .prepend
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#'))
            {
                return Err(DialPlanError::BadPrepend {
                    rule: i,
                    prepend: rule.prepend.clone(),
                });
            }
            if matches!(rule.matches, Match::NeoAddress | Match::SipUri)
                && (rule.strip > 0 || !rule.prepend.is_empty())
            {
                return Err(DialPlanError::RewriteOnNonNumber { rule: i });
            }
            if let Some(j) = self.rules[..i]
                .iter()
                .position(|earlier| shadows(&earlier.matches, &rule.matches))
            {
                return Err(DialPlanError::Unreachable {
                    rule: i,
                    shadowed_by: j,
                });
            }
        }
        check_accounts(None, &self.default, known_accounts)
    }
}

fn check_accounts(
    rule: Option<usize>,
    accounts: &[String],
    known: &[&str],
) -> Result<(), DialPlanError> {
    match accounts.iter().find(|a| !known.contains(&a.as_str())) {
        Some(a) => Err(DialPlanError::UnknownAccount {
            rule,
            account: a.clone(),
        }),
        None => Ok(()),
    }
}

/// Whether every destination `later` matches is already taken by `earlier`. Conservative: only
/// the obvious cases (`any`, equal matches, a prefix of a prefix).
fn shadows(earlier: &Match, later: &Match) -> bool {
    match (earlier, later) {
        (Match::Any, _) => true,
        (Match::Prefix(a), Match::Prefix(b)) => normalize(b).starts_with(normalize(a).as_str()),
        (a, b) => a == b,
    }
}

/// The rule's target for a matched destination, or `None` when stripping leaves nothing (then
/// the rule does not apply).
fn rewrite(rule: &Rule, dest: &str) -> Option<String> {
    if kind(dest) != Kind::Number {
        return Some(dest.to_owned());
    }
    let rest: String = dest.chars().skip(rule.strip).collect();
    if rest.is_empty() {
        return None;
    }
    Some(format!("{}{rest}", rule.prepend))
}

/// A compiled pattern element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(u8),
    /// A set of digits, as a bit mask over 0–9.
    Digits(u16),
    /// One or more of anything.
    Rest,
}

fn compile(pattern: &str) -> Result<Vec<Tok>, &'static str> {
    let p = pattern.strip_prefix('_').unwrap_or(pattern).as_bytes();
    if p.is_empty() {
        return Err("empty pattern");
    }
    let range = |lo: u8, hi: u8| -> u16 { (lo..=hi).fold(0u16, |m, d| m | (1 << d)) };
    let mut toks = Vec::with_capacity(p.len());
    let mut i = 0;
    while let Some(&c) = p.get(i) {
        i += 1;
        toks.push(match c {
            b'0'..=b'9' | b'+' | b'*' | b'#' => Tok::Lit(c),
            b'X' | b'x' => Tok::Digits(range(0, 9)),
            b'Z' | b'z' => Tok::Digits(range(1, 9)),
            b'N' | b'n' => Tok::Digits(range(2, 9)),
            b'.' => Tok::Rest,
            b'[' => {
                let mut mask = 0u16;
                loop {
                    match p.get(i) {
                        None => return Err("'[' without ']'"),
                        Some(b']') => {
                            i += 1;
                            break;
                        }
                        Some(&lo @ b'0'..=b'9') => {
                            if p.get(i + 1) == Some(&b'-') {
                                let Some(&hi @ b'0'..=b'9') = p.get(i + 2) else {
                                    return Err("a range needs a digit on both sides of '-'");
                                };
                                if hi < lo {
                                    return Err("a range goes from low to high, e.g. [1-5]");
                                }
                                mask |= range(lo - b'0', hi - b'0');
                                i += 3;
                            } else {
                                mask |= 1 << (lo - b'0');
                                i += 1;
                            }
                        }
                        Some(_) => return Err("only digits and ranges may appear inside [...]"),
                    }
                }
                if mask == 0 {
                    return Err("empty [] set");
                }
                Tok::Digits(mask)
            }
            _ => return Err("allowed: digits, + * #, X Z N, [sets], and '.'"),
        });
    }
    Ok(toks)
}

/// Anchored match of compiled tokens against the whole input, by dynamic programming over
/// (token, position): O(tokens × input), so patterns with many `.` cannot blow up.
fn match_toks(toks: &[Tok], s: &[u8]) -> bool {
    let n = s.len();
    // next[j]: whether toks[i + 1..] matches s[j..]; starts as "no tokens left".
    let mut next: Vec<bool> = (0..=n).map(|j| j == n).collect();
    for tok in toks.iter().rev() {
        let mut cur = vec![false; n + 1];
        // For `.`: whether next[k] holds for some k > j, accumulated from the end.
        let mut any_later = false;
        for j in (0..n).rev() {
            any_later |= next[j + 1];
            cur[j] = match tok {
                Tok::Rest => any_later,
                Tok::Lit(l) => s[j] == *l && next[j + 1],
                Tok::Digits(mask) => {
                    s[j].is_ascii_digit() && mask & (1 << (s[j] - b'0')) != 0 && next[j + 1]
                }
            };
        }
        next = cur;
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str = "NVieniq1rBXU2XZziwcrhG3b3oVRdnS2ej";
    const ADDR_BAD_CHECKSUM: &str = "NVieniq1rBXU2XZziwcrhG3b3oVRdnS2ek";

    fn rule(m: Match, accounts: &[&str]) -> Rule {
        Rule {
            matches: m,
            accounts: accounts.iter().map(|s| s.to_string()).collect(),
            strip: 0,
            prepend: String::new(),
            fallback_to_default: false,
        }
    }

    fn prefix(p: &str) -> Match {
        Match::Prefix(p.into())
    }

    fn pattern(p: &str) -> Match {
        Match::Pattern(p.into())
    }

    /// The example from the module docs, from its JSON form.
    fn example() -> DialPlan {
        serde_json::from_str(
            r#"{ "rules": [
                { "match": { "prefix": "+31" }, "accounts": ["provider-a"] },
                { "match": { "prefix": "00" },  "accounts": ["provider-b"], "strip": 2, "prepend": "+" },
                { "match": { "prefix": "0" },   "accounts": ["provider-a"] },
                { "match": { "prefix": "+" },   "accounts": ["provider-b", "provider-a"] },
                { "match": "neo_address",       "accounts": ["krypton"] } ],
              "default": ["provider-a"] }"#,
        )
        .expect("example parses")
    }

    fn accounts_and_targets(routes: &[Route]) -> Vec<(&str, &str)> {
        routes
            .iter()
            .map(|r| (r.account.as_str(), r.target.as_str()))
            .collect()
    }

    #[test]
    fn domestic_and_foreign_example() {
        let plan = example();
        plan.validate(&["provider-a", "provider-b", "krypton"])
            .unwrap();
        assert_eq!(
            accounts_and_targets(&plan.routes("+31 20 123 4567")),
            [("provider-a", "+31201234567")]
        );
        assert_eq!(
            accounts_and_targets(&plan.routes("020-1234567")),
            [("provider-a", "0201234567")]
        );
        assert_eq!(
            accounts_and_targets(&plan.routes("0049 30 1234")),
            [("provider-b", "+49301234")]
        );
        assert_eq!(
            accounts_and_targets(&plan.routes("+1 (555) 010-0000")),
            [
                ("provider-b", "+15550100000"),
                ("provider-a", "+15550100000")
            ]
        );
        assert_eq!(
            accounts_and_targets(&plan.routes(ADDR)),
            [("krypton", ADDR)]
        );
        // Nothing matches a user name: the default.
        assert_eq!(
            accounts_and_targets(&plan.routes("john.doe")),
            [("provider-a", "john.doe")]
        );
    }

    #[test]
    fn first_match_wins_not_longest() {
        // "0" before "00": every 00… number goes to a, and validate() says so.
        let plan = DialPlan {
            rules: vec![rule(prefix("0"), &["a"]), rule(prefix("00"), &["b"])],
            default: vec![],
        };
        assert_eq!(accounts_and_targets(&plan.routes("0049")), [("a", "0049")]);
        assert_eq!(
            plan.validate(&["a", "b"]),
            Err(DialPlanError::Unreachable {
                rule: 1,
                shadowed_by: 0
            })
        );
        // Patterns are not ranked either: the first listed wins even if a later one is more
        // specific.
        let plan = DialPlan {
            rules: vec![
                rule(pattern("0."), &["a"]),
                rule(pattern("06XXXXXXXX"), &["b"]),
            ],
            default: vec!["c".into()],
        };
        assert_eq!(plan.routes("0612345678")[0].account, "a");
        // Later matching rules are not appended as fallbacks; neither is the default.
        assert_eq!(plan.routes("0612345678").len(), 1);
        // No match at all → default.
        assert_eq!(accounts_and_targets(&plan.routes("+44")), [("c", "+44")]);
        // An empty plan routes nowhere.
        assert!(DialPlan::default().routes("123").is_empty());
    }

    #[test]
    fn fallback_to_default_appends_missing_default_accounts() {
        let mut r = rule(prefix("00"), &["b", "a"]);
        r.strip = 2;
        r.prepend = "+".into();
        r.fallback_to_default = true;
        let plan = DialPlan {
            rules: vec![r],
            default: vec!["a".into(), "c".into()],
        };
        assert_eq!(
            accounts_and_targets(&plan.routes("0049")),
            [("b", "+49"), ("a", "+49"), ("c", "0049")]
        );
    }

    #[test]
    fn neo_addresses() {
        let plan = DialPlan {
            rules: vec![
                rule(Match::NeoAddress, &["krypton"]),
                rule(Match::SipUri, &["sip-acct"]),
                rule(prefix(""), &["pstn"]),
            ],
            default: vec!["fallback".into()],
        };
        assert_eq!(plan.routes(&format!("  {ADDR} "))[0].account, "krypton");
        assert_eq!(plan.routes(&format!("  {ADDR} "))[0].target, ADDR);
        // A typo (bad checksum) is not an address, and no prefix/pattern rule takes it either.
        assert_eq!(plan.routes(ADDR_BAD_CHECKSUM)[0].account, "pstn");
        assert!(!Match::NeoAddress.matches(ADDR_BAD_CHECKSUM));
        assert!(!Match::NeoAddress.matches("AK2nJJpJr6o664CWJKi1QRXjqeic2zRp8y"));
        assert!(!Match::NeoAddress.matches(&ADDR[..33]));
        assert!(!Match::NeoAddress.matches(""));
        // An address never matches a prefix or pattern, even one that fits its characters.
        assert!(!prefix("N").matches(ADDR));
        assert!(!pattern(".").matches(ADDR));
        assert!(Match::Any.matches(ADDR));
    }

    #[test]
    fn sip_uris_pass_unchanged() {
        let plan = DialPlan {
            rules: vec![rule(Match::SipUri, &["s"]), rule(Match::Any, &["x"])],
            default: vec![],
        };
        for uri in [
            "sip:alice@example.com",
            "SIPS:bob@example.com;transport=tls",
        ] {
            assert_eq!(normalize(uri), uri);
            assert_eq!(accounts_and_targets(&plan.routes(uri)), [("s", uri)]);
        }
        assert!(!Match::SipUri.matches("sipx:alice"));
        assert!(!Match::SipUri.matches("si"));
        assert_eq!(plan.routes("123")[0].account, "x");
    }

    #[test]
    fn strip_and_prepend() {
        let mut r = rule(prefix("+31"), &["a"]);
        r.strip = 3;
        r.prepend = "0".into();
        let plan = DialPlan {
            rules: vec![r],
            default: vec!["d".into()],
        };
        assert_eq!(plan.routes("+31 6 1234 5678")[0].target, "0612345678");
        // Stripping everything: the rule does not apply, the default does.
        assert_eq!(accounts_and_targets(&plan.routes("+31")), [("d", "+31")]);
        // Strip on an address is refused by validate() and never changes it.
        let mut r = rule(Match::NeoAddress, &["k"]);
        r.strip = 1;
        let plan = DialPlan {
            rules: vec![r],
            default: vec![],
        };
        assert_eq!(plan.routes(ADDR)[0].target, ADDR);
        assert_eq!(
            plan.validate(&["k"]),
            Err(DialPlanError::RewriteOnNonNumber { rule: 0 })
        );
    }

    #[test]
    fn patterns() {
        let m = |p: &str, s: &str| pattern(p).matches(s);
        assert!(m("0NXXXXXXXX", "0201234567"));
        assert!(!m("0NXXXXXXXX", "0101234567")); // N is 2-9
        assert!(!m("0NXXXXXXXX", "020123456")); // too short: anchored
        assert!(!m("0NXXXXXXXX", "02012345678")); // too long
        assert!(m("_06[1-5]X", "0631"));
        assert!(!m("06[1-5]X", "0661"));
        assert!(m("[137]", "3") && !m("[137]", "2"));
        assert!(m("[0-35-9]", "9") && !m("[0-35-9]", "4"));
        assert!(m("ZX", "10") && !m("ZX", "01"));
        assert!(m("x", "7") && !m("x", "a"));
        assert!(m("+31.", "+3120") && !m("+31.", "+31")); // '.' is one or more
        assert!(m("00.", "0049301234"));
        assert!(m("1.9", "1239") && m("1.9", "199") && !m("1.9", "19"));
        assert!(m("*21#", "*21#"));
        assert!(!m("123", "") && !m("1", "é"));
        // Invalid patterns match nothing and validate() explains.
        for (p, want) in [
            ("", "empty pattern"),
            ("_", "empty pattern"),
            ("06[1-5", "'[' without ']'"),
            ("[]", "empty [] set"),
            ("[5-1]", "a range goes from low to high, e.g. [1-5]"),
            ("[1-]", "a range needs a digit on both sides of '-'"),
            ("[a]", "only digits and ranges may appear inside [...]"),
            ("0A", "allowed: digits, + * #, X Z N, [sets], and '.'"),
            ("é", "allowed: digits, + * #, X Z N, [sets], and '.'"),
        ] {
            assert_eq!(compile(p), Err(want), "{p:?}");
            assert!(!m(p, "0A"));
            let plan = DialPlan {
                rules: vec![rule(pattern(p), &["a"])],
                default: vec![],
            };
            assert_eq!(
                plan.validate(&["a"]),
                Err(DialPlanError::BadPattern {
                    rule: 0,
                    pattern: p.into(),
                    reason: want
                })
            );
        }
        // Many dots on a long input: correct, and linear rather than exponential.
        assert!(!m("1.2.3.4.5.6.7", &"1".repeat(60)));
        assert!(!m("..........9", &"1".repeat(2_000)));
        assert!(m("..........9", &format!("{}9", "1".repeat(2_000))));
        assert!(!m("....", "123"));
        assert!(m("....", "1234"));
    }

    #[test]
    fn normalize_cases() {
        assert_eq!(normalize(" +31 (0)20-123.45.67 "), "+31201234567");
        assert_eq!(normalize("(020) 123 4567"), "0201234567");
        assert_eq!(normalize("*21#"), "*21#");
        assert_eq!(normalize("john.doe"), "john.doe");
        assert_eq!(normalize(" sip:a.b@c.d "), "sip:a.b@c.d");
        assert_eq!(normalize(ADDR), ADDR);
        assert_eq!(normalize("--"), "--");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn validate_catches_mistakes() {
        let known = ["a", "b"];
        let plan = DialPlan {
            rules: vec![rule(prefix("1"), &["a", "nope"])],
            default: vec![],
        };
        assert_eq!(
            plan.validate(&known),
            Err(DialPlanError::UnknownAccount {
                rule: Some(0),
                account: "nope".into()
            })
        );
        let plan = DialPlan {
            rules: vec![],
            default: vec!["b".into(), "gone".into()],
        };
        let err = plan.validate(&known).unwrap_err();
        assert_eq!(
            err,
            DialPlanError::UnknownAccount {
                rule: None,
                account: "gone".into()
            }
        );
        assert!(err.to_string().contains("default route list"), "{err}");
        let plan = DialPlan {
            rules: vec![rule(Match::Any, &[])],
            default: vec![],
        };
        assert_eq!(
            plan.validate(&known),
            Err(DialPlanError::NoAccounts { rule: 0 })
        );
        let plan = DialPlan {
            rules: vec![rule(Match::Any, &["a"]), rule(Match::NeoAddress, &["b"])],
            default: vec![],
        };
        assert_eq!(
            plan.validate(&known),
            Err(DialPlanError::Unreachable {
                rule: 1,
                shadowed_by: 0
            })
        );
        let mut r = rule(prefix("0"), &["a"]);
        r.prepend = "0x".into();
        let plan = DialPlan {
            rules: vec![r],
            default: vec![],
        };
        assert!(matches!(
            plan.validate(&known),
            Err(DialPlanError::BadPrepend { rule: 0, .. })
        ));
        // Unknown config keys are refused, so typos do not silently do nothing.
        assert!(serde_json::from_str::<DialPlan>(r#"{"rules": [], "defualt": ["a"]}"#).is_err());
        assert!(
            serde_json::from_str::<DialPlan>(r#"{"rules": [{"match": "neo", "accounts": ["a"]}]}"#)
                .is_err()
        );
    }

    #[test]
    fn should_fail_over_table() {
        for (status, want) in [
            (100, false),
            (180, false),
            (200, false),
            (302, false),
            (400, false),
            (401, true),
            (402, true),
            (403, true),
            (404, false),
            (407, true),
            (408, true),
            (410, false),
            (480, false),
            (484, false),
            (486, false),
            (487, false),
            (488, true),
            (491, false),
            (500, true),
            (502, true),
            (503, true),
            (504, true),
            (599, true),
            (600, false),
            (603, false),
            (606, false),
            (0, false),
            (u16::MAX, false),
        ] {
            assert_eq!(should_fail_over(status), want, "{status}");
        }
    }
}
