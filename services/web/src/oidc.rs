//! Staff sign-in by OpenID Connect: the authorization code flow with PKCE (S256) against the
//! province's identity provider, configured by issuer, client id and a secret file.
//!
//! 1. [`Oidc::begin`] makes a state, a nonce and a PKCE verifier, kept in a signed short-lived
//!    cookie ([`Pending`]), and sends the browser to the provider's authorization endpoint.
//! 2. The provider sends the browser back to `/signin/callback` with a code; [`Oidc::finish`]
//!    checks the state, trades the code (with the verifier and the client's secret) for an ID
//!    token at the token endpoint, and accepts the token only if it is signed by a key of the
//!    provider's JWKS with an asymmetric algorithm, was issued by the configured issuer, names
//!    this client (and no one else) as its audience, has not expired and carries our nonce.
//! 3. The token's badge claim (`sub` by default) is the person's 工号; the web face then reads
//!    their staff account from the catalog, whose roles and region their tokens carry.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, RwLock};

use crate::session;

/// What the sign-in remembers between leaving for the provider and coming back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where to go once signed in (a path of ours).
    pub next: String,
    /// Unix seconds.
    pub exp: i64,
}

pub const PENDING_COOKIE: &str = "xn_oidc";
/// How long a sign-in may take at the provider.
pub const PENDING_SECONDS: i64 = 600;

impl Pending {
    pub fn new(next: &str, now: i64) -> Self {
        Pending {
            state: session::random_token(),
            nonce: session::random_token(),
            // 256 bits, 43 characters of base64url: RFC 7636's recommended verifier.
            verifier: format!("{}{}", session::random_token(), session::random_token()),
            next: next.to_string(),
            exp: now + PENDING_SECONDS,
        }
    }

    /// RFC 7636 S256: base64url(SHA-256(verifier)).
    pub fn challenge(&self) -> String {
        B64.encode(Sha256::digest(self.verifier.as_bytes()))
    }

    pub fn seal(&self, key: &[u8]) -> String {
        session::sign(key, "oidc", &serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn open(key: &[u8], value: &str, now: i64) -> Option<Self> {
        let p: Pending = serde_json::from_slice(&session::verify(key, "oidc", value)?).ok()?;
        (p.exp > now).then_some(p)
    }
}

/// Why a sign-in was refused, in words for the person signing in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No sign-in in progress (no or a forged cookie), it took too long, or the state differs.
    Stale,
    /// The provider said no (the person cancelled, or the provider refused the client).
    Provider(String),
    /// The provider could not be reached or answered nonsense.
    Unreachable(String),
    /// The ID token fails a check: named in the string.
    Token(&'static str),
}

impl Refused {
    pub fn said(&self) -> String {
        match self {
            Refused::Stale => "登录已过期或不是从本系统发起, 请重新登录".into(),
            Refused::Provider(e) => format!("统一身份认证未通过: {e}"),
            Refused::Unreachable(_) => "统一身份认证暂时无法连接, 请稍后再试".into(),
            Refused::Token(why) => format!("身份凭证无效: {why}"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// The client of one identity provider.
pub struct Oidc {
    pub issuer: String,
    pub client_id: String,
    secret: String,
    /// The claim that carries the 工号.
    pub badge_claim: String,
    http: reqwest::Client,
    meta: OnceCell<Metadata>,
    jwks: RwLock<Option<JwkSet>>,
}

/// The algorithms an ID token may be signed with: asymmetric only (never `none`, never an
/// HMAC keyed by our own secret).
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Oidc {
    pub fn new(issuer: &str, client_id: &str, secret: &str, badge_claim: &str) -> Self {
        Oidc {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            secret: secret.trim().to_string(),
            badge_claim: badge_claim.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            meta: OnceCell::new(),
            jwks: RwLock::new(None),
        }
    }

    /// The provider's discovery document, read once (again after a failure).
    async fn metadata(&self) -> Result<&Metadata, Refused> {
        self.meta
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let m: Metadata = self.get_json(&url).await?;
                if m.issuer.trim_end_matches('/') != self.issuer {
                    return Err(Refused::Unreachable(format!(
                        "the provider calls itself {}",
                        m.issuer
                    )));
                }
                Ok(m)
            })
            .await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Refused> {
        let r = self.http.get(url).send().await;
        let r = r.map_err(|e| Refused::Unreachable(e.to_string()))?;
        if !r.status().is_success() {
            return Err(Refused::Unreachable(format!("{url}: {}", r.status())));
        }
        r.json()
            .await
            .map_err(|e| Refused::Unreachable(e.to_string()))
    }

    /// Where to send the browser to sign in.
    pub async fn authorize_url(&self, p: &Pending, redirect_uri: &str) -> Result<String, Refused> {
        let m = self.metadata().await?;
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid"),
            ("state", &p.state),
            ("nonce", &p.nonce),
            ("code_challenge", &p.challenge()),
            ("code_challenge_method", "S256"),
        ])
        .unwrap_or_default();
        let sep = if m.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{query}", m.authorization_endpoint))
    }

    /// The badge number of the person the provider signed in, once every check holds.
    pub async fn finish(
        &self,
        p: &Pending,
        state: &str,
        code: &str,
        redirect_uri: &str,
    ) -> Result<String, Refused> {
        if state.is_empty() || state != p.state || code.is_empty() {
            return Err(Refused::Stale);
        }
        let m = self.metadata().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &p.verifier),
        ];
        let r = self
            .http
            .post(&m.token_endpoint)
            .basic_auth(urlencode(&self.client_id), Some(urlencode(&self.secret)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap_or_default())
            .send()
            .await
            .map_err(|e| Refused::Unreachable(e.to_string()))?;
        if !r.status().is_success() {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            let e = body["error"].as_str().unwrap_or("token request refused");
            return Err(Refused::Provider(e.to_string()));
        }
        let t: TokenResponse = r
            .json()
            .await
            .map_err(|e| Refused::Unreachable(e.to_string()))?;
        let id_token = t.id_token.ok_or(Refused::Token("无 ID 令牌"))?;
        let claims = self.verify(&id_token).await?;
        check_claims(&claims, &self.client_id, &p.nonce, &self.badge_claim)
    }

    /// The signature and the registered claims (issuer, audience, expiry) of an ID token.
    async fn verify(&self, token: &str) -> Result<serde_json::Value, Refused> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refused::Token("格式错误"))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(Refused::Token("签名算法不被接受"));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.client_id]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 60;
        match jsonwebtoken::decode::<serde_json::Value>(token, &key, &v) {
            Ok(d) => Ok(d.claims),
            Err(e) => Err(Refused::Token(match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidAudience => "不是签发给本系统的 (受众不符)",
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => "签发者不符",
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "已过期",
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "签名不符",
                _ => "未通过校验",
            })),
        }
    }

    /// The provider's key `kid` names (the only key when the token names none); the key set
    /// is read again once when the key is unknown (the provider rotated its keys).
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, Refused> {
        for fresh in [false, true] {
            if fresh || self.jwks.read().await.is_none() {
                let m = self.metadata().await?;
                let set: JwkSet = self.get_json(&m.jwks_uri).await?;
                *self.jwks.write().await = Some(set);
            }
            let guard = self.jwks.read().await;
            let Some(set) = guard.as_ref() else { continue };
            let found = match kid {
                Some(k) => set.find(k),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            };
            if let Some(jwk) = found {
                return DecodingKey::from_jwk(jwk).map_err(|_| Refused::Token("签名密钥不可用"));
            }
        }
        Err(Refused::Token("签名密钥未知"))
    }
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded before basic authentication.
fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).unwrap_or_default()[1..].to_string()
}

/// The claims past the signature: the audience is this client alone (OpenID Connect Core
/// §3.1.3.7: a token listing audiences the client does not trust is refused), the nonce is
/// ours, and the badge claim is present. The badge number it gives.
pub fn check_claims(
    claims: &serde_json::Value,
    client_id: &str,
    nonce: &str,
    badge_claim: &str,
) -> Result<String, Refused> {
    let only_us = match &claims["aud"] {
        serde_json::Value::String(a) => a == client_id,
        serde_json::Value::Array(all) => {
            !all.is_empty() && all.iter().all(|a| a.as_str() == Some(client_id))
        }
        _ => false,
    };
    if !only_us {
        return Err(Refused::Token("不是签发给本系统的 (受众不符)"));
    }
    if let Some(azp) = claims.get("azp") {
        if azp.as_str() != Some(client_id) {
            return Err(Refused::Token("不是签发给本系统的 (受众不符)"));
        }
    }
    if claims["nonce"].as_str() != Some(nonce) {
        return Err(Refused::Token("与本次登录不符 (nonce)"));
    }
    match claims[badge_claim].as_str().map(str::trim) {
        Some(b) if !b.is_empty() => Ok(b.to_string()),
        _ => Err(Refused::Token("缺少工号")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn the_challenge_is_rfc_7636s_s256() {
        // RFC 7636 appendix B.
        let p = Pending {
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            ..Pending::new("/desk", 0)
        };
        assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(Pending::new("/", 0).verifier.len() >= 43);
    }

    #[test]
    fn a_pending_sign_in_is_sealed_and_expires() {
        let p = Pending::new("/desk", 1_000);
        let sealed = p.seal(KEY);
        assert_eq!(Pending::open(KEY, &sealed, 1_001), Some(p.clone()));
        assert_eq!(Pending::open(KEY, &sealed, 1_000 + PENDING_SECONDS), None);
        assert_eq!(
            Pending::open(b"another key of thirty-two bytes!", &sealed, 1_001),
            None
        );
        // A session cookie is no pending sign-in.
        assert_eq!(
            Pending::open(KEY, &session::sign(KEY, "session", b"{}"), 1_001),
            None
        );
    }

    #[test]
    fn only_a_token_for_this_client_alone_with_our_nonce_signs_in() {
        let ok = json!({"aud": "web", "nonce": "n1", "sub": "HQ-ZW-001"});
        assert_eq!(
            check_claims(&ok, "web", "n1", "sub"),
            Ok("HQ-ZW-001".into())
        );
        let listed = json!({"aud": ["web"], "nonce": "n1", "sub": "a", "azp": "web"});
        assert_eq!(check_claims(&listed, "web", "n1", "sub"), Ok("a".into()));
        let wrong = Err(Refused::Token("不是签发给本系统的 (受众不符)"));
        for aud in [
            json!("other"),
            json!(["web", "other"]),
            json!([]),
            json!(null),
        ] {
            let c = json!({"aud": aud, "nonce": "n1", "sub": "a"});
            assert_eq!(check_claims(&c, "web", "n1", "sub"), wrong, "{aud}");
        }
        let azp = json!({"aud": "web", "azp": "other", "nonce": "n1", "sub": "a"});
        assert_eq!(check_claims(&azp, "web", "n1", "sub"), wrong);
        let replayed = json!({"aud": "web", "nonce": "n0", "sub": "a"});
        assert_eq!(
            check_claims(&replayed, "web", "n1", "sub"),
            Err(Refused::Token("与本次登录不符 (nonce)"))
        );
        let no_badge = json!({"aud": "web", "nonce": "n1", "sub": " "});
        assert_eq!(
            check_claims(&no_badge, "web", "n1", "sub"),
            Err(Refused::Token("缺少工号"))
        );
        let other_claim = json!({"aud": "web", "nonce": "n1", "sub": "x", "badge": "HQ-1"});
        assert_eq!(
            check_claims(&other_claim, "web", "n1", "badge"),
            Ok("HQ-1".into())
        );
    }

    #[test]
    fn client_credentials_are_form_encoded_for_basic_auth() {
        assert_eq!(urlencode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
        assert_eq!(urlencode("xiaoneng-web"), "xiaoneng-web");
    }
}
