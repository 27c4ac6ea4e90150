//! Callers and their tokens. Every call carries `authorization: Bearer <JWT>` (HS256) with the
//! subject, roles, region code and department; [`GrpcLayer`](crate::server::GrpcLayer)
//! verifies it and puts the [`Caller`] into the request's extensions. Public methods (health,
//! reflection, reads of published data) may be called without a token; a token that is
//! present must still be valid.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthSettings;
use crate::error::AppError;
use crate::region::RegionCode;

/// Roles the services check. A token may carry several.
/// A service's authorization: each gRPC method (its short name) and the roles that may call
/// it. Whose records are then in scope is the caller's [`Audience`] and region.
pub type Authorization = &'static [(&'static str, &'static [&'static str])];

pub mod roles {
    /// Maintains the catalog of matters, departments, posts and staff.
    pub const CATALOG_ADMIN: &str = "catalog_admin";
    /// Window clerk (窗口工作人员).
    pub const CLERK: &str = "clerk";
    /// Reviewer / department head (审批人员).
    pub const REVIEWER: &str = "reviewer";
    /// Hall manager (中心管理).
    pub const HALL_MANAGER: &str = "hall_manager";
    /// Efficiency office / supervisor (效能办).
    pub const SUPERVISOR: &str = "supervisor";
    /// Discipline inspector (纪检监察): the only role that sees reporter identities.
    pub const INSPECTOR: &str = "inspector";
    /// Department system integrating over gRPC.
    pub const SYSTEM: &str = "system";
    /// Citizen or enterprise (群众, 企业).
    pub const CITIZEN: &str = "citizen";
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Region code of the caller's office (6 digits).
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept: Option<String>,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub roles: Vec<String>,
    pub region: RegionCode,
    pub department: Option<String>,
}

impl Caller {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn require_role(&self, role: &str) -> Result<(), AppError> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(AppError::PermissionDenied(format!(
                "the `{role}` role is required"
            )))
        }
    }

    /// Requires one of `roles`.
    pub fn require_any_role(&self, roles: &[&str]) -> Result<(), AppError> {
        if roles.iter().any(|r| self.has_role(r)) {
            Ok(())
        } else {
            Err(AppError::PermissionDenied(format!(
                "one of the roles {roles:?} is required"
            )))
        }
    }

    /// Requires one of the roles `table` lists for `method` (a method missing from the table
    /// is denied to everyone).
    pub fn authorize(&self, table: Authorization, method: &str) -> Result<(), AppError> {
        let roles = table
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, r)| *r)
            .unwrap_or(&[]);
        self.require_any_role(roles)
    }

    /// Requires that `region` lies inside the caller's region.
    pub fn require_region(&self, region: &RegionCode) -> Result<(), AppError> {
        if self.region.contains(region) {
            Ok(())
        } else {
            Err(AppError::PermissionDenied(format!(
                "region {region} is outside the caller's region {}",
                self.region
            )))
        }
    }

    /// A citizen acting for themself: the citizen role and no staff role. Staff tokens that
    /// also carry the citizen role act as staff.
    pub fn acts_as_citizen(&self) -> bool {
        self.has_role(roles::CITIZEN)
            && !self.roles.iter().any(|r| STAFF_ROLES.contains(&r.as_str()))
    }

    /// Whose records this caller may read or act on (least privilege).
    pub fn audience(&self) -> Audience {
        if self.acts_as_citizen() {
            Audience::Own {
                subject: self.subject.clone(),
                region: self.region.clone(),
            }
        } else {
            Audience::Region(self.region.clone())
        }
    }

    /// Requires the role and that `region` lies inside the caller's region.
    pub fn require_role_in(&self, role: &str, region: &RegionCode) -> Result<(), AppError> {
        self.require_role(role)?;
        self.require_region(region)
    }
}

/// Every role a token may carry.
pub const ALL_ROLES: &[&str] = &[
    roles::CATALOG_ADMIN,
    roles::CLERK,
    roles::REVIEWER,
    roles::HALL_MANAGER,
    roles::SUPERVISOR,
    roles::INSPECTOR,
    roles::SYSTEM,
    roles::CITIZEN,
];

/// Whether `role` is one of [`ALL_ROLES`].
pub fn is_role(role: &str) -> bool {
    ALL_ROLES.contains(&role)
}

/// Roles that act for an office rather than for themselves.
pub const STAFF_ROLES: &[&str] = &[
    roles::CATALOG_ADMIN,
    roles::CLERK,
    roles::REVIEWER,
    roles::HALL_MANAGER,
    roles::SUPERVISOR,
    roles::INSPECTOR,
    roles::SYSTEM,
];

/// Whose records a caller may see: a citizen only their own (inside their region); staff
/// everything inside their region (a county its own, a city all its counties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Own { subject: String, region: RegionCode },
    Region(RegionCode),
}

impl Audience {
    /// The region part of the scope.
    pub fn region(&self) -> &RegionCode {
        match self {
            Audience::Own { region, .. } | Audience::Region(region) => region,
        }
    }

    /// Whether a record of `region` owned by `owner` (a citizen id, possibly empty) is in scope.
    pub fn admits(&self, region: &RegionCode, owner: &str) -> bool {
        match self {
            Audience::Own { subject, region: r } => {
                r.contains(region) && !owner.is_empty() && owner == subject
            }
            Audience::Region(r) => r.contains(region),
        }
    }

    /// Checks a record against the scope. A record outside the caller's region does not exist
    /// for them (NOT_FOUND); another citizen's record in their region is PERMISSION_DENIED.
    pub fn check(
        &self,
        what: &'static str,
        id: &str,
        region: &RegionCode,
        owner: &str,
    ) -> Result<(), AppError> {
        if !self.region().contains(region) {
            return Err(AppError::not_found(what, id.to_string()));
        }
        if !self.admits(region, owner) {
            return Err(AppError::PermissionDenied(format!(
                "a citizen reads and acts only on their own {what}"
            )));
        }
        Ok(())
    }
}

/// Reads the verified caller a [`GrpcLayer`](crate::server::GrpcLayer) attached to a request.
pub fn caller<T>(req: &tonic::Request<T>) -> Result<Caller, AppError> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| AppError::Unauthenticated("a bearer token is required".into()))
}

/// The caller if the request carried a token (public methods).
pub fn maybe_caller<T>(req: &tonic::Request<T>) -> Option<Caller> {
    req.extensions().get::<Caller>().cloned()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Verifies tokens against the shared key, issuer and audience.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(s: &AuthSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&s.issuer]);
        validation.set_audience(&[&s.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        TokenVerifier {
            key: DecodingKey::from_secret(s.jwt_secret.expose().as_bytes()),
            validation,
        }
    }

    pub fn verify(&self, token: &str) -> Result<Caller, AppError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| AppError::Unauthenticated(format!("invalid token: {e}")))?;
        let c = data.claims;
        let region = RegionCode::parse(&c.region)
            .map_err(|e| AppError::Unauthenticated(format!("invalid token: region {e}")))?;
        if c.sub.is_empty() {
            return Err(AppError::Unauthenticated(
                "invalid token: empty subject".into(),
            ));
        }
        Ok(Caller {
            subject: c.sub,
            roles: c.roles,
            region,
            department: c.dept,
        })
    }

    /// Verifies an `authorization` header value (`Bearer <token>`).
    pub fn verify_header(&self, value: &str) -> Result<Caller, AppError> {
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| {
                AppError::Unauthenticated("authorization must be `Bearer <token>`".into())
            })?;
        self.verify(token.trim())
    }
}

/// Mints tokens with the shared key: for development, tests and the `xiaoneng-admin` tool.
pub struct TokenMinter {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl TokenMinter {
    pub fn new(s: &AuthSettings) -> Self {
        TokenMinter {
            key: EncodingKey::from_secret(s.jwt_secret.expose().as_bytes()),
            issuer: s.issuer.clone(),
            audience: s.audience.clone(),
        }
    }

    pub fn mint(
        &self,
        subject: &str,
        roles: &[&str],
        region: &str,
        dept: Option<&str>,
        ttl_secs: u64,
    ) -> String {
        let now = now_secs();
        let claims = Claims {
            sub: subject.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: region.to_string(),
            dept: dept.map(str::to_string),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl_secs,
        };
        // HS256 encoding of a plain struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secret: &str) -> AuthSettings {
        AuthSettings {
            jwt_secret: crate::config::Secret::new(secret),
            issuer: "xiaoneng".into(),
            audience: "xiaoneng".into(),
        }
    }

    #[test]
    fn mint_and_verify() {
        let s = settings("0123456789abcdef0123");
        let t = TokenMinter::new(&s).mint("clerk-1", &[roles::CLERK], "410702", Some("dept-1"), 60);
        let c = TokenVerifier::new(&s)
            .verify_header(&format!("Bearer {t}"))
            .unwrap();
        assert_eq!(c.subject, "clerk-1");
        assert_eq!(c.region.as_str(), "410702");
        assert!(c.has_role(roles::CLERK) && !c.has_role(roles::SUPERVISOR));
        assert_eq!(c.department.as_deref(), Some("dept-1"));
    }

    #[test]
    fn wrong_key_expired_and_malformed_are_unauthenticated() {
        let s = settings("0123456789abcdef0123");
        let v = TokenVerifier::new(&s);
        let other = TokenMinter::new(&settings("another-key-another-key")).mint(
            "x",
            &[],
            "410702",
            None,
            60,
        );
        assert!(matches!(
            v.verify(&other),
            Err(AppError::Unauthenticated(_))
        ));
        let m = TokenMinter::new(&s);
        let claims = Claims {
            sub: "x".into(),
            roles: vec![],
            region: "410702".into(),
            dept: None,
            iss: "xiaoneng".into(),
            aud: "xiaoneng".into(),
            iat: 1,
            exp: 2,
        };
        let expired =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &m.key).unwrap();
        assert!(matches!(
            v.verify(&expired),
            Err(AppError::Unauthenticated(_))
        ));
        assert!(matches!(
            v.verify_header("Basic abc"),
            Err(AppError::Unauthenticated(_))
        ));
        let bad_region = m.mint("x", &[], "41", None, 60);
        assert!(matches!(
            v.verify(&bad_region),
            Err(AppError::Unauthenticated(_))
        ));
    }

    #[test]
    fn role_in_region() {
        let c = Caller {
            subject: "a".into(),
            roles: vec![roles::CATALOG_ADMIN.into()],
            region: RegionCode::parse("410700").unwrap(),
            department: None,
        };
        assert!(c
            .require_role_in(roles::CATALOG_ADMIN, &RegionCode::parse("410702").unwrap())
            .is_ok());
        assert!(c
            .require_role_in(roles::CATALOG_ADMIN, &RegionCode::parse("410802").unwrap())
            .is_err());
        assert!(c
            .require_role_in(roles::SUPERVISOR, &RegionCode::parse("410702").unwrap())
            .is_err());
    }

    fn caller(sub: &str, roles: &[&str], region: &str) -> Caller {
        Caller {
            subject: sub.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: RegionCode::parse(region).unwrap(),
            department: None,
        }
    }

    #[test]
    fn a_citizen_sees_only_their_own_records_staff_their_region() {
        let county = RegionCode::parse("410702").unwrap();
        let other_county = RegionCode::parse("410703").unwrap();
        let citizen = caller("c-1", &[roles::CITIZEN], "410702").audience();
        assert!(citizen.admits(&county, "c-1"));
        assert!(!citizen.admits(&county, "c-2"));
        assert!(
            !citizen.admits(&county, ""),
            "an unowned record is not a citizen's"
        );
        assert!(!citizen.admits(&other_county, "c-1"));
        assert!(matches!(
            citizen.check("case", "x", &county, "c-2"),
            Err(AppError::PermissionDenied(_))
        ));
        assert!(matches!(
            citizen.check("case", "x", &other_county, "c-1"),
            Err(AppError::NotFound { .. })
        ));
        // A clerk who also holds the citizen role acts as staff.
        let clerk = caller("k", &[roles::CITIZEN, roles::CLERK], "410702").audience();
        assert!(clerk.admits(&county, "c-2") && !clerk.admits(&other_county, "c-2"));
        let city = caller("s", &[roles::SUPERVISOR], "410700").audience();
        assert!(city.admits(&county, "") && city.admits(&other_county, "anyone"));
    }
}
