//! Whether an incoming MESSAGE (RFC 3428) carries a body we can show, as a pure decision.
//!
//! We take plain text only. Anything else — linphone's deflate-compressed
//! `message/imdn+xml` delivery notifications (RFC 5438), `application/im-iscomposing+xml`
//! (RFC 3994) — gets 415 Unsupported Media Type with `Accept` listing what we take, and with
//! `Accept-Encoding: identity` when a content-coding was the problem (RFC 3261 §8.2.3), so the
//! sender learns it was not delivered instead of reading a 200.

/// The media types an incoming MESSAGE may carry (the `Accept` of a 415).
pub(crate) const ACCEPT: &str = "text/plain";

/// Why an incoming MESSAGE is refused with 415.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unsupported {
    /// The body is content-coded (`Content-Encoding` other than `identity`).
    Encoding(String),
    /// The media type is not one of [`ACCEPT`].
    MediaType(String),
}

impl Unsupported {
    /// The headers that go with the 415: `Accept`, and `Accept-Encoding` for a content-coding.
    pub(crate) fn headers(&self) -> Vec<(&'static str, &'static str)> {
        let mut h = vec![("Accept", ACCEPT)];
        if matches!(self, Unsupported::Encoding(_)) {
            h.push(("Accept-Encoding", "identity"));
        }
        h
    }
}

/// Check an incoming MESSAGE's `Content-Type` and `Content-Encoding` values (each may be
/// absent; a missing type counts as text, as we have always taken it).
pub(crate) fn check_incoming(
    content_type: Option<&str>,
    content_encoding: &[String],
) -> Result<(), Unsupported> {
    let coded = content_encoding
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"));
    if let Some(coding) = coded {
        return Err(Unsupported::Encoding(coding.to_string()));
    }
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if media.is_empty() || media.eq_ignore_ascii_case("text/plain") {
        Ok(())
    } else {
        Err(Unsupported::MediaType(media.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_taken_and_the_rest_refused_with_what_we_accept() {
        assert_eq!(check_incoming(Some("text/plain"), &[]), Ok(()));
        assert_eq!(
            check_incoming(Some("Text/Plain ; charset=UTF-8"), &["identity".into()]),
            Ok(())
        );
        assert_eq!(check_incoming(None, &[]), Ok(()));

        // linphone's delivery notification.
        let imdn = check_incoming(Some("message/imdn+xml"), &["deflate".into()]).unwrap_err();
        assert_eq!(imdn, Unsupported::Encoding("deflate".into()));
        assert_eq!(
            imdn.headers(),
            [("Accept", "text/plain"), ("Accept-Encoding", "identity")]
        );
        // Even plain text is refused when it is compressed.
        assert_eq!(
            check_incoming(Some("text/plain"), &["identity, gzip".into()]),
            Err(Unsupported::Encoding("gzip".into()))
        );

        let composing = check_incoming(Some("application/im-iscomposing+xml"), &[]).unwrap_err();
        assert_eq!(
            composing,
            Unsupported::MediaType("application/im-iscomposing+xml".into())
        );
        assert_eq!(composing.headers(), [("Accept", "text/plain")]);
    }
}
