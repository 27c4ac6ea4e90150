//! Signed values: the session cookie (who signed in, their roles and region, the CSRF token)
//! and the rating links (one invitation each). HMAC-SHA256 under `domain.session_key`; a value
//! whose signature does not match is ignored, as if absent.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const COOKIE: &str = "xn_session";

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The staff member's id in the catalog: the subject of their tokens.
    pub sub: String,
    /// Their name, as the desk greets them.
    #[serde(default)]
    pub name: String,
    pub roles: Vec<String>,
    pub region: String,
    #[serde(default)]
    pub dept: Option<String>,
    /// Every form that changes something carries it back.
    pub csrf: String,
    /// Unix seconds.
    pub exp: i64,
}

impl Session {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

fn mac(key: &[u8], what: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(what);
    m.finalize().into_bytes().to_vec()
}

/// `payload.signature`, both base64url.
pub fn sign(key: &[u8], purpose: &str, payload: &[u8]) -> String {
    let body = B64.encode(payload);
    let sig = mac(key, format!("{purpose}:{body}").as_bytes());
    format!("{body}.{}", B64.encode(sig))
}

/// The payload of a value [`sign`] made for `purpose`, if its signature holds.
pub fn verify(key: &[u8], purpose: &str, value: &str) -> Option<Vec<u8>> {
    let (body, sig) = value.split_once('.')?;
    let sig = B64.decode(sig).ok()?;
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    m.update(format!("{purpose}:{body}").as_bytes());
    m.verify_slice(&sig).ok()?;
    B64.decode(body).ok()
}

pub fn encode(key: &[u8], s: &Session) -> String {
    sign(key, "session", &serde_json::to_vec(s).unwrap_or_default())
}

/// The session a cookie header carries, if signed by us and not expired.
pub fn from_cookies(key: &[u8], cookies: Option<&str>, now: i64) -> Option<Session> {
    let value = cookie(cookies, COOKIE)?;
    let s: Session = serde_json::from_slice(&verify(key, "session", &value)?).ok()?;
    (s.exp > now).then_some(s)
}

/// One cookie's value from a `Cookie` header.
pub fn cookie(header: Option<&str>, name: &str) -> Option<String> {
    header?
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A fresh random token (CSRF, nonces): 128 bits from the OS.
pub fn random_token() -> String {
    B64.encode(uuid::Uuid::new_v4().as_bytes())
}

/// The rating link's token for one invitation.
pub fn rating_token(key: &[u8], invitation: &str) -> String {
    sign(key, "rate", invitation.as_bytes())
}

/// The invitation a rating token names, if the token is ours.
pub fn rated_invitation(key: &[u8], token: &str) -> Option<String> {
    String::from_utf8(verify(key, "rate", token)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_session_round_trips_and_a_forged_one_does_not() {
        let s = Session {
            sub: "s1".into(),
            name: "张敏".into(),
            roles: vec!["clerk".into()],
            region: "410702".into(),
            dept: None,
            csrf: random_token(),
            exp: 2_000,
        };
        let v = encode(KEY, &s);
        let header = format!("a=b; {COOKIE}={v}; c=d");
        assert_eq!(from_cookies(KEY, Some(&header), 1_000), Some(s.clone()));
        assert_eq!(from_cookies(KEY, Some(&header), 3_000), None, "expired");
        assert_eq!(
            from_cookies(b"another key of thirty-two bytes!", Some(&header), 1_000),
            None
        );
        let mut forged = s;
        forged.roles = vec!["supervisor".into()];
        let body = B64.encode(serde_json::to_vec(&forged).unwrap());
        let tampered = format!("{COOKIE}={body}.{}", v.split_once('.').unwrap().1);
        assert_eq!(
            from_cookies(KEY, Some(&tampered), 1_000),
            None,
            "a changed role breaks the seal"
        );
    }

    #[test]
    fn a_rating_token_names_its_invitation_only() {
        let t = rating_token(KEY, "inv-1");
        assert_eq!(rated_invitation(KEY, &t).as_deref(), Some("inv-1"));
        assert_eq!(rated_invitation(KEY, &t.replace('.', "x")), None);
        let other = rating_token(KEY, "inv-2");
        let spliced = format!(
            "{}.{}",
            t.split_once('.').unwrap().0,
            other.split_once('.').unwrap().1
        );
        assert_eq!(rated_invitation(KEY, &spliced), None);
        // A session value is no rating token, and the other way round.
        assert_eq!(rated_invitation(KEY, &sign(KEY, "session", b"inv-1")), None);
    }
}
