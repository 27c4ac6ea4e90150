//! The web face of a service hall (`xiaoneng-web`): an HTTP front that is a gRPC **client** of
//! the services and never touches their databases.
//!
//! - `/halls/{hall}/screen` — the calling screen (public): one `WatchBoard` stream per hall in
//!   this process ([`board`]), fanned out to every browser of the hall as server-sent events
//!   (`/halls/{hall}/events`); a browser that connects gets the current state first.
//! - `/desk` — the window desk (signed-in staff): call next, recall, no-show, hold, resume,
//!   start, finish, each a plain form with a CSRF token, as the signed-in person.
//! - `/pads/{hall}/{window}` — the window pad: after a service finished at the desk, the
//!   rating form and a QR code of the rating link; idle otherwise.
//! - `/rate/{token}` — the QR rating page (no sign-in): the token is good for one invitation.
//!
//! Pages are server-rendered HTML in Chinese ([`html`]), every text escaped; scripts and the
//! stylesheet are served from the binary (no CDN); a strict Content-Security-Policy.

pub mod board;
pub mod desk;
pub mod html;
pub mod oidc;
pub mod pages;
pub mod session;
pub mod signin;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use xiaoneng_kit::auth::TokenMinter;
use xiaoneng_kit::config::{self, ConfigError, DomainSettings};
use xiaoneng_kit::telemetry::{traced_channel, TracedChannel};

/// The web face's settings (`[domain]`, env `XIAONENG__DOMAIN__*`); the signing key of the
/// services' tokens comes from the shared `auth` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Where the HTTP server binds (port 0 picks a free one).
    pub addr: String,
    /// How the pages are reached from outside (the rating links in QR codes).
    pub public_url: String,
    pub catalog_addr: String,
    pub queue_addr: String,
    pub evaluation_addr: String,
    /// The region the web face serves (its own system calls act in it): a city reads its
    /// counties.
    pub region: String,
    /// HMAC key of session cookies and rating links (base64 of 32 bytes).
    pub session_key: String,
    /// A development sign-in (any work id, a role, a region): off unless the local stack
    /// turns it on; the chart refuses it.
    pub dev_signin: bool,
    /// Cookies marked Secure (outside loopback).
    pub secure_cookies: bool,
    /// How long the pad offers the rating of a service that just ended before it goes back
    /// to idle (the citizen can still rate from the QR link).
    pub pad_timeout_seconds: u32,
    /// The OpenID Provider staff sign in at (its issuer URL); empty: no such sign-in.
    pub oidc_issuer: String,
    /// The web face's client id at the provider: the audience its ID tokens must name.
    pub oidc_client_id: String,
    /// A file holding the client secret (a mounted Secret).
    pub oidc_client_secret_file: String,
    /// The ID token claim that carries the person's 工号 (the catalog's badge number).
    pub oidc_badge_claim: String,
}

/// The development key: a start with it logs a warning.
pub const DEV_SESSION_KEY: &str = "ZGV2LW9ubHktd2ViLXNlc3Npb24ta2V5LTMyYnl0ZXM=";

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            addr: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            catalog_addr: "http://127.0.0.1:50051".into(),
            queue_addr: "http://127.0.0.1:50052".into(),
            evaluation_addr: "http://127.0.0.1:50054".into(),
            region: "410700".into(),
            session_key: DEV_SESSION_KEY.into(),
            dev_signin: false,
            secure_cookies: false,
            pad_timeout_seconds: 180,
            oidc_issuer: String::new(),
            oidc_client_id: String::new(),
            oidc_client_secret_file: String::new(),
            oidc_badge_claim: "sub".into(),
        }
    }
}

impl DomainSettings for WebSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        config::service_url("catalog_addr", &self.catalog_addr)?;
        config::service_url("queue_addr", &self.queue_addr)?;
        config::service_url("evaluation_addr", &self.evaluation_addr)?;
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_string(),
            message,
        };
        xiaoneng_kit::region::RegionCode::parse(&self.region)
            .map_err(|e| invalid("domain.region", e))?;
        let key = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &self.session_key,
        )
        .map_err(|_| invalid("domain.session_key", "is not base64".into()))?;
        if !self.oidc_issuer.is_empty() {
            config::service_url("oidc_issuer", &self.oidc_issuer)?;
            for (k, v) in [
                ("domain.oidc_client_id", &self.oidc_client_id),
                (
                    "domain.oidc_client_secret_file",
                    &self.oidc_client_secret_file,
                ),
                ("domain.oidc_badge_claim", &self.oidc_badge_claim),
            ] {
                if v.trim().is_empty() {
                    return Err(invalid(k, "is required with domain.oidc_issuer".into()));
                }
            }
        }
        if key.len() < 32 {
            return Err(invalid(
                "domain.session_key",
                "must be 32 bytes or more".into(),
            ));
        }
        Ok(())
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    pub settings: Arc<WebSettings>,
    pub catalog: TracedChannel,
    /// The identity provider's client, when staff sign in by OpenID Connect.
    pub oidc: Option<Arc<oidc::Oidc>>,
    pub queue: TracedChannel,
    pub evaluation: TracedChannel,
    pub minter: Arc<TokenMinter>,
    pub key: Arc<Vec<u8>>,
    pub boards: board::Boards,
    /// The matters a desk may transfer to, by region, read from the catalog every few minutes.
    pub matters: MatterNames,
}

/// Region → (when read, [(matter id, name)]).
pub type MatterNames =
    Arc<Mutex<HashMap<String, (std::time::Instant, Arc<Vec<(String, String)>>)>>>;

impl App {
    /// A short-lived token of the web face itself (a `system` caller of its region), for the
    /// public pages' reads and the pad's and QR page's ratings.
    pub fn system_token(&self, purpose: &str) -> String {
        self.minter.mint(
            &format!("web:{purpose}"),
            &[xiaoneng_kit::auth::roles::SYSTEM],
            &self.settings.region,
            None,
            300,
        )
    }

    /// A gRPC request carrying `token`.
    pub fn request<T>(&self, msg: T, token: &str) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if !token.is_empty() {
            if let Ok(v) = format!("Bearer {token}").parse() {
                r.metadata_mut().insert("authorization", v);
            }
        }
        r.set_timeout(std::time::Duration::from_secs(5));
        r
    }
}

const STYLE: &str = include_str!("../static/style.css");
const SCREEN_JS: &str = include_str!("../static/screen.js");
const DESK_JS: &str = include_str!("../static/desk.js");
const PAD_JS: &str = include_str!("../static/pad.js");

fn asset(kind: &'static str, body: &'static str) -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}

/// The router of every page, with the security headers.
pub fn router(app: App) -> Router {
    use axum::middleware::map_response;
    Router::new()
        .route("/", get(pages::home))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/static/screen.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCREEN_JS) }),
        )
        .route(
            "/static/desk.js",
            get(|| async { asset("text/javascript; charset=utf-8", DESK_JS) }),
        )
        .route(
            "/static/pad.js",
            get(|| async { asset("text/javascript; charset=utf-8", PAD_JS) }),
        )
        .route("/halls/{hall}/screen", get(pages::screen))
        .route("/halls/{hall}/events", get(pages::events))
        .route("/halls/{hall}/state", get(pages::state))
        .route("/signin", get(signin::signin_page).post(signin::signin))
        .route("/signin/oidc", get(signin::oidc_begin))
        .route("/signin/callback", get(signin::oidc_callback))
        .route("/signout", post(signin::signout))
        .route("/desk", get(desk::desk))
        .route("/desk/act", post(desk::desk_act))
        .route("/pads/{hall}/{window}", get(pages::pad))
        .route("/pads/{hall}/{window}/register", post(pages::register_pad))
        .route("/rate/{token}/follow", post(pages::follow_up))
        .route("/rate/{token}", get(pages::rate_page).post(pages::rate))
        .layer(map_response(security_headers))
        .with_state(app)
}

async fn security_headers(mut r: axum::response::Response) -> axum::response::Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// Loads the settings, connects (lazily) to the services and serves until interrupted.
pub async fn run() -> anyhow::Result<()> {
    let settings = config::load::<WebSettings>(xiaoneng_kit::ServiceKind::Catalog)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let _telemetry = xiaoneng_kit::telemetry::init("xiaoneng-web", &settings.telemetry)?;
    let d = settings.domain.clone();
    if d.session_key == DEV_SESSION_KEY {
        tracing::warn!("domain.session_key is the development key: set a key of your own");
    }
    if d.dev_signin {
        tracing::warn!("the development sign-in is on: never in a deployment");
    }
    let key = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &d.session_key)?;
    let oidc = if d.oidc_issuer.is_empty() {
        None
    } else {
        let secret = std::fs::read_to_string(&d.oidc_client_secret_file).map_err(|e| {
            anyhow::anyhow!(
                "domain.oidc_client_secret_file {}: {e}",
                d.oidc_client_secret_file
            )
        })?;
        Some(Arc::new(oidc::Oidc::new(
            &d.oidc_issuer,
            &d.oidc_client_id,
            &secret,
            &d.oidc_badge_claim,
        )))
    };
    let app = App {
        catalog: traced_channel(&d.catalog_addr, "domain.catalog_addr")?,
        oidc,
        queue: traced_channel(&d.queue_addr, "domain.queue_addr")?,
        evaluation: traced_channel(&d.evaluation_addr, "domain.evaluation_addr")?,
        minter: Arc::new(TokenMinter::new(&settings.auth)),
        key: Arc::new(key),
        boards: board::Boards::default(),
        matters: MatterNames::default(),
        settings: Arc::new(d.clone()),
    };
    let listener = tokio::net::TcpListener::bind(&d.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "xiaoneng-web serving");
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod reference {
    /// The README's configuration reference names every setting of this service (generated
    /// from the settings types' defaults, so a new key cannot go undocumented).
    #[test]
    fn the_readme_names_every_setting() {
        let readme = include_str!("../../../README.md");
        let missing = xiaoneng_kit::config::undocumented::<super::WebSettings>(
            xiaoneng_kit::ServiceKind::Catalog,
            xiaoneng_kit::config::reference_section(readme),
        );
        assert!(
            missing.is_empty(),
            "not in the README's configuration section: {missing:?}"
        );
    }
}
