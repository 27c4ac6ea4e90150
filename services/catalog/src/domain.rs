//! Pure rules of the catalog: what a valid department is.

use chrono::{DateTime, NaiveDate, Utc};
use prost::Message;
use uuid::Uuid;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::AppError;
use xiaoneng_kit::{AppResult, Violations};
use xiaoneng_proto::catalog::v1::MatterTerms;

xiaoneng_kit::named_enum! {
    /// The reasons a client switches on: `ErrorInfo.reason` of a FAILED_PRECONDITION from this
    /// service (listed in the service's proto comment).
    pub enum Reason {
        /// The certificate is already revoked.
        CertificateRevoked = "CERTIFICATE_REVOKED",
        /// The matter already has a draft version.
        DraftExists = "DRAFT_EXISTS",
        /// The matter is retired.
        MatterRetired = "MATTER_RETIRED",
        /// A matter never published cannot be retired.
        NotPublished = "NOT_PUBLISHED",
        /// An enforcement matter needs a staff member with a valid certificate.
        NoValidCertificate = "NO_VALID_CERTIFICATE",
        /// A published version cannot change.
        VersionPublished = "VERSION_PUBLISHED",
    }
}

/// A department as a caller asked to create it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDepartment {
    pub region: RegionCode,
    pub code: String,
    pub display_name: String,
}

impl NewDepartment {
    /// Validates every field at once; `prefix` is the request field path (`department.`).
    pub fn parse(
        region_code: &str,
        code: &str,
        display_name: &str,
        prefix: &str,
    ) -> AppResult<Self> {
        let mut v = Violations::new();
        let region = RegionCode::parse_field(region_code, &format!("{prefix}region_code"), &mut v);
        let code = code.trim();
        v.text(code, &format!("{prefix}code"), 64);
        v.check(
            code.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            &format!("{prefix}code"),
            "may hold only letters, digits, - and _",
        );
        v.text(display_name, &format!("{prefix}display_name"), 100);
        v.into_result()?;
        Ok(NewDepartment {
            region: region.expect("checked by the violations above"),
            code: code.to_string(),
            display_name: display_name.trim().to_string(),
        })
    }
}

/// A department as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DepartmentRow {
    pub id: Uuid,
    pub region_code: String,
    pub code: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
}

/// A matter newly assigned to a staff member: where, and whether it is an enforcement matter.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub region: xiaoneng_kit::region::RegionCode,
    pub department_id: Uuid,
    pub enforcement: bool,
}

/// A staff member's enforcement certificate as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertificateRow {
    pub id: Uuid,
    pub staff_id: Uuid,
    pub region_code: String,
    pub number: String,
    pub scope: String,
    pub issue_date: NaiveDate,
    pub expiry_date: NaiveDate,
    pub revoked: bool,
    pub revoke_reason: Option<String>,
    pub staff_name: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub matter_id: Uuid,
    pub region_code: String,
    pub version: i32,
    pub state: String,
    pub effective_date: Option<NaiveDate>,
    pub retire_date: Option<NaiveDate>,
    pub terms: Vec<u8>,
    pub department_name: String,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

impl VersionRow {
    pub fn terms(&self) -> AppResult<MatterTerms> {
        MatterTerms::decode(self.terms.as_slice()).map_err(|e| AppError::Internal(e.into()))
    }
}

/// Filters of lists and searches over matters in force on `on`.
pub struct Filter<'a> {
    pub region_like: String,
    pub department_id: Option<Uuid>,
    pub matter_type: Option<i32>,
    pub channel: Option<i32>,
    pub on: NaiveDate,
    pub query: Option<&'a str>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PostRow {
    pub id: Uuid,
    pub department_id: Uuid,
    pub region_code: String,
    pub name: String,
    pub duties: String,
    pub a_staff_id: Option<Uuid>,
    pub b_staff_id: Option<Uuid>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffRow {
    pub id: Uuid,
    pub department_id: Uuid,
    pub region_code: String,
    pub post_id: Option<Uuid>,
    pub name: String,
    pub badge_number: String,
    pub title: String,
    pub main_business: String,
    pub trained: bool,
    /// The platform roles the staff member signs in with.
    pub roles: Vec<String>,
}

/// A staff member's sign-in account: the record and their department's code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffAccountRow {
    #[sqlx(flatten)]
    pub staff: StaffRow,
    pub department_code: String,
}

/// The roles a staff record may grant: every staff role but `system` (a machine's, never a
/// person's).
pub fn grantable_role(role: &str) -> bool {
    role != xiaoneng_kit::auth::roles::SYSTEM && xiaoneng_kit::auth::STAFF_ROLES.contains(&role)
}

pub struct NewStaff {
    pub department_id: Uuid,
    pub post_id: Option<Uuid>,
    pub name: String,
    pub badge_number: String,
    pub title: String,
    pub main_business: String,
    pub trained: bool,
    pub roles: Vec<String>,
}

pub struct NewCertificate {
    pub staff_id: Uuid,
    pub number: String,
    pub scope: String,
    pub issue_date: NaiveDate,
    pub expiry_date: NaiveDate,
}

/// A matter version as the API and the cache show it.
pub fn version_to_pb(
    r: VersionRow,
) -> Result<xiaoneng_proto::catalog::v1::MatterVersion, AppError> {
    let terms = r.terms()?;
    Ok(xiaoneng_proto::catalog::v1::MatterVersion {
        matter_id: r.matter_id.to_string(),
        region_code: r.region_code,
        version: r.version,
        state: match r.state.as_str() {
            "draft" => xiaoneng_proto::catalog::v1::VersionState::Draft,
            _ if r.retire_date.is_some() => xiaoneng_proto::catalog::v1::VersionState::Retired,
            _ => xiaoneng_proto::catalog::v1::VersionState::Published,
        } as i32,
        effective_date: r.effective_date.map(|d| d.to_string()).unwrap_or_default(),
        retire_date: r.retire_date.map(|d| d.to_string()).unwrap_or_default(),
        terms: Some(terms),
        department_name: r.department_name,
        create_time: Some(xiaoneng_kit::timestamp(r.created_at)),
        publish_time: r.published_at.map(xiaoneng_kit::timestamp),
    })
}

pub fn versions_to_pb(
    rows: Vec<VersionRow>,
) -> Result<Vec<xiaoneng_proto::catalog::v1::MatterVersion>, AppError> {
    rows.into_iter().map(version_to_pb).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use xiaoneng_kit::AppError;

    #[test]
    fn valid_department() {
        let d =
            NewDepartment::parse("410702", "SCJGJ", " 县市场监督管理局 ", "department.").unwrap();
        assert_eq!(d.display_name, "县市场监督管理局");
        assert_eq!(d.region.as_str(), "410702");
    }

    #[test]
    fn every_bad_field_is_reported() {
        let err = NewDepartment::parse("41", "bad code!", "", "department.").unwrap_err();
        let AppError::InvalidArgument(v) = err else {
            panic!("expected invalid argument")
        };
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "department.region_code",
                "department.code",
                "department.display_name"
            ]
        );
    }
}

pub mod matter {
    //! What makes a matter's terms acceptable to a citizen (统一服务标准).

    use std::collections::HashSet;

    use xiaoneng_kit::{AppResult, Violations};
    use xiaoneng_proto::catalog::v1::{Channel, MaterialForm, MatterTerms, MatterType};

    /// Matter types whose handling is law enforcement: staff need a valid certificate.
    pub fn is_enforcement(t: i32) -> bool {
        matches!(
            MatterType::try_from(t),
            Ok(MatterType::Penalty) | Ok(MatterType::Inspection) | Ok(MatterType::Coercion)
        )
    }

    fn code_ok(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }

    /// Checks every field and reports every problem at once (`terms.` field paths).
    pub fn validate(t: &MatterTerms) -> AppResult<()> {
        let mut v = Violations::new();
        v.check(
            code_ok(&t.implementation_code),
            "terms.implementation_code",
            "is required: 1-64 letters, digits, - or _",
        );
        v.check(
            t.basic_code.is_empty() || code_ok(&t.basic_code),
            "terms.basic_code",
            "may hold only letters, digits, - and _",
        );
        v.text(&t.name, "terms.name", 200);
        v.check(
            MatterType::try_from(t.matter_type).is_ok_and(|m| m != MatterType::Unspecified),
            "terms.matter_type",
            "is required",
        );
        v.check(
            uuid::Uuid::parse_str(&t.department_id).is_ok(),
            "terms.department_id",
            "must be a department id",
        );
        v.check(
            (0..=365).contains(&t.statutory_limit_days),
            "terms.statutory_limit_days",
            "must be 0-365 working days",
        );
        v.check(
            t.promised_limit_days >= 0,
            "terms.promised_limit_days",
            "must not be negative",
        );
        v.check(
            t.promised_limit_days <= t.statutory_limit_days,
            "terms.promised_limit_days",
            "cannot exceed the statutory limit",
        );
        v.check(
            (0..=10).contains(&t.max_visits),
            "terms.max_visits",
            "must be 0-10",
        );
        let mut names = HashSet::new();
        for (i, m) in t.materials.iter().enumerate() {
            let f = format!("terms.materials[{i}]");
            v.text(&m.name, &format!("{f}.name"), 200);
            v.check(
                names.insert(m.name.trim()),
                &format!("{f}.name"),
                "duplicates another material's name",
            );
            v.check(
                MaterialForm::try_from(m.form).is_ok_and(|x| x != MaterialForm::Unspecified),
                &format!("{f}.form"),
                "is required",
            );
            v.check(
                (0..=20).contains(&m.copies),
                &format!("{f}.copies"),
                "must be 0-20",
            );
            v.check(
                !m.key || m.required,
                &format!("{f}.key"),
                "a key material must be required",
            );
        }
        for (i, s) in t.steps.iter().enumerate() {
            v.text(&s.name, &format!("terms.steps[{i}].name"), 100);
            v.check(
                s.limit_days >= 0 && s.limit_days <= t.statutory_limit_days.max(0),
                &format!("terms.steps[{i}].limit_days"),
                "must be between 0 and the statutory limit",
            );
        }
        let mut channels = HashSet::new();
        for (i, c) in t.channels.iter().enumerate() {
            v.check(
                Channel::try_from(*c).is_ok_and(|c| c != Channel::Unspecified),
                &format!("terms.channels[{i}]"),
                "is not a channel",
            );
            v.check(
                channels.insert(*c),
                &format!("terms.channels[{i}]"),
                "is listed twice",
            );
        }
        let window = channels.contains(&(Channel::Window as i32));
        let online = channels.contains(&(Channel::Online as i32))
            || channels.contains(&(Channel::Mobile as i32));
        v.check(
            (window && !t.window_codes.is_empty()) || online,
            "terms.channels",
            "needs an online channel or the window channel with at least one accepting window",
        );
        v.check(
            !window || !t.window_codes.is_empty(),
            "terms.window_codes",
            "the window channel needs an accepting window",
        );
        v.check(
            t.free || !t.fee_description.trim().is_empty(),
            "terms.fee_description",
            "is required when not free",
        );
        for (i, k) in t.keywords.iter().enumerate() {
            v.text(k, &format!("terms.keywords[{i}]"), 50);
        }
        v.into_result()
    }

    /// The text search looks in: name, keywords, result, department name.
    pub fn search_text(t: &MatterTerms, department_name: &str) -> String {
        let mut s = t.name.clone();
        for k in &t.keywords {
            s.push(' ');
            s.push_str(k);
        }
        s.push(' ');
        s.push_str(&t.result_name);
        s.push(' ');
        s.push_str(department_name);
        s
    }

    /// Overlapping character pairs of a query (Chinese has no spaces to split on):
    /// 营业执照 → 营业, 业执, 执照. Latin words stay whole.
    pub fn bigrams(query: &str) -> Vec<String> {
        let mut out = Vec::new();
        for part in query.split_whitespace() {
            let chars: Vec<char> = part.chars().collect();
            if chars.iter().all(|c| c.is_ascii()) || chars.len() < 2 {
                out.push(part.to_lowercase());
            } else {
                for w in chars.windows(2) {
                    out.push(w.iter().collect());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use xiaoneng_kit::AppError;
        use xiaoneng_proto::catalog::v1::Material;

        pub fn valid() -> MatterTerms {
            MatterTerms {
                implementation_code: "410702-SCJ-001".into(),
                name: "企业设立登记".into(),
                matter_type: MatterType::License as i32,
                department_id: uuid::Uuid::nil().to_string(),
                statutory_limit_days: 15,
                promised_limit_days: 1,
                free: true,
                channels: vec![Channel::Window as i32, Channel::Online as i32],
                window_codes: vec!["A01".into()],
                max_visits: 1,
                materials: vec![
                    Material {
                        name: "公司登记（备案）申请书".into(),
                        required: true,
                        key: true,
                        form: MaterialForm::Original as i32,
                        copies: 1,
                        ..Default::default()
                    },
                    Material {
                        name: "住所使用证明".into(),
                        required: true,
                        form: MaterialForm::Copy as i32,
                        copies: 1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }
        }

        fn fields(t: &MatterTerms) -> Vec<String> {
            match validate(t) {
                Ok(()) => vec![],
                Err(AppError::InvalidArgument(v)) => v.into_iter().map(|f| f.field).collect(),
                Err(e) => panic!("{e}"),
            }
        }

        #[test]
        fn a_valid_matter_passes() {
            assert_eq!(fields(&valid()), Vec::<String>::new());
        }

        #[test]
        fn promised_above_statutory_is_refused() {
            let mut t = valid();
            t.promised_limit_days = 20;
            assert_eq!(fields(&t), ["terms.promised_limit_days"]);
        }

        #[test]
        fn no_channel_or_window_is_refused() {
            let mut t = valid();
            t.channels = vec![Channel::Window as i32];
            t.window_codes.clear();
            assert_eq!(fields(&t), ["terms.channels", "terms.window_codes"]);
            t.channels.clear();
            assert_eq!(fields(&t), ["terms.channels"]);
        }

        #[test]
        fn duplicate_materials_and_optional_key_are_refused() {
            let mut t = valid();
            t.materials[1].name = t.materials[0].name.clone();
            t.materials[1].key = true;
            t.materials[1].required = false;
            assert_eq!(
                fields(&t),
                ["terms.materials[1].name", "terms.materials[1].key"]
            );
        }

        #[test]
        fn bigrams_of_chinese_and_latin() {
            assert_eq!(bigrams("营业执照"), ["业执", "执照", "营业"]);
            assert_eq!(bigrams("ID 身份证"), ["id", "份证", "身份"]);
            assert_eq!(bigrams("证"), ["证"]);
        }

        #[test]
        fn enforcement_types() {
            assert!(is_enforcement(MatterType::Penalty as i32));
            assert!(!is_enforcement(MatterType::License as i32));
        }
    }
}
