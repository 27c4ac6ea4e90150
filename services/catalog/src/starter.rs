//! The starter catalog a county can begin from (`data/starter/<region>.toml`): departments,
//! posts, staff, certificates and matters. Loading writes through the same store functions as
//! the API (so every publish and certificate emits its event) and skips what already exists,
//! so loading twice changes nothing.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{AppError, AppResult};
use xiaoneng_proto::catalog::v1::{Channel, Material, MaterialForm, MatterTerms, MatterType, Step};

use crate::domain::NewDepartment;
use crate::service;
use crate::store::{matters, staff};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StarterFile {
    pub region_code: String,
    pub effective_date: NaiveDate,
    pub departments: Vec<DepartmentEntry>,
    pub matters: Vec<MatterEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentEntry {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub posts: Vec<PostEntry>,
    #[serde(default)]
    pub staff: Vec<StaffEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostEntry {
    pub name: String,
    pub duties: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffEntry {
    pub name: String,
    pub badge: String,
    pub post: String,
    pub title: String,
    pub business: String,
    pub trained: bool,
    /// The platform roles the person signs in with (default: clerk).
    #[serde(default = "clerk")]
    pub roles: Vec<String>,
    pub cert: Option<CertEntry>,
}

fn clerk() -> Vec<String> {
    vec![xiaoneng_kit::auth::roles::CLERK.to_string()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertEntry {
    pub number: String,
    pub scope: String,
    pub issue: NaiveDate,
    pub expiry: NaiveDate,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatterEntry {
    pub dept: String,
    pub code: String,
    #[serde(default)]
    pub basic: String,
    pub name: String,
    #[serde(rename = "type")]
    pub matter_type: String,
    pub statutory: i32,
    pub promised: i32,
    #[serde(default = "one")]
    pub visits: i32,
    pub channels: Option<Vec<String>>,
    pub windows: Option<Vec<String>>,
    #[serde(default)]
    pub cross_region: bool,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub result: String,
    pub delivery: Option<Vec<String>>,
    pub basis: String,
    pub conditions: Option<String>,
    pub materials: Vec<String>,
    #[serde(default)]
    pub steps: Vec<(String, i32)>,
    pub fee: Option<String>,
}

fn one() -> i32 {
    1
}

fn matter_type(s: &str) -> Option<MatterType> {
    Some(match s {
        "license" => MatterType::License,
        "confirmation" => MatterType::Confirmation,
        "payment" => MatterType::Payment,
        "levy" => MatterType::Levy,
        "ruling" => MatterType::Ruling,
        "reward" => MatterType::Reward,
        "penalty" => MatterType::Penalty,
        "inspection" => MatterType::Inspection,
        "coercion" => MatterType::Coercion,
        "public_service" => MatterType::PublicService,
        "other" => MatterType::Other,
        _ => return None,
    })
}

fn channel(s: &str) -> Option<Channel> {
    Some(match s {
        "window" => Channel::Window,
        "online" => Channel::Online,
        "mobile" => Channel::Mobile,
        _ => return None,
    })
}

/// `*name` key, `?name` optional, `name` required; `…复印件` a copy.
fn material(spec: &str) -> Material {
    let (key, required, name) = match spec.chars().next() {
        Some('*') => (true, true, &spec[1..]),
        Some('?') => (false, false, &spec[1..]),
        _ => (false, true, spec),
    };
    let form = if name.ends_with("复印件") {
        MaterialForm::Copy
    } else {
        MaterialForm::Original
    };
    Material {
        name: name.to_string(),
        required,
        key,
        form: form as i32,
        copies: 1,
        ..Default::default()
    }
}

impl MatterEntry {
    pub fn terms(&self, department_id: Uuid) -> Result<MatterTerms, String> {
        let t = matter_type(&self.matter_type)
            .ok_or_else(|| format!("{}: unknown type {:?}", self.code, self.matter_type))?;
        let channels = match &self.channels {
            Some(cs) => cs
                .iter()
                .map(|c| {
                    channel(c)
                        .map(|c| c as i32)
                        .ok_or_else(|| format!("{}: unknown channel {c:?}", self.code))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![Channel::Window as i32, Channel::Online as i32],
        };
        Ok(MatterTerms {
            basic_code: self.basic.clone(),
            implementation_code: self.code.clone(),
            name: self.name.clone(),
            matter_type: t as i32,
            department_id: department_id.to_string(),
            legal_basis: self.basis.clone(),
            acceptance_conditions: self
                .conditions
                .clone()
                .unwrap_or_else(|| "符合法定条件、材料齐全、符合法定形式".into()),
            materials: self.materials.iter().map(|m| material(m)).collect(),
            statutory_limit_days: self.statutory,
            promised_limit_days: self.promised,
            free: self.fee.is_none(),
            fee_description: self.fee.clone().unwrap_or_default(),
            steps: self
                .steps
                .iter()
                .map(|(name, days)| Step {
                    name: name.clone(),
                    limit_days: *days,
                    ..Default::default()
                })
                .collect(),
            channels,
            max_visits: self.visits,
            result_name: self.result.clone(),
            delivery_methods: self
                .delivery
                .clone()
                .unwrap_or_else(|| vec!["窗口领取".into(), "邮寄送达".into()]),
            window_codes: self.windows.clone().unwrap_or_else(|| vec!["ZH01".into()]),
            cross_region: self.cross_region,
            keywords: self.keywords.clone(),
        })
    }
}

/// What a load did: counts of records created (0 everywhere on a second load).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub departments: usize,
    pub posts: usize,
    pub staff: usize,
    pub certificates: usize,
    pub matters: usize,
    pub skipped: usize,
}

pub fn parse(text: &str) -> Result<StarterFile, String> {
    let f: StarterFile = toml::from_str(text).map_err(|e| e.to_string())?;
    RegionCode::parse(&f.region_code)?;
    Ok(f)
}

pub async fn load(pool: &PgPool, f: &StarterFile) -> AppResult<Report> {
    let region =
        RegionCode::parse(&f.region_code).map_err(|e| AppError::invalid("region_code", e))?;
    let mut report = Report::default();
    let mut dept_ids = HashMap::new();
    for d in &f.departments {
        let existing: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM departments WHERE region_code = $1 AND code = $2")
                .bind(region.as_str())
                .bind(&d.code)
                .fetch_optional(pool)
                .await?;
        let id = match existing {
            Some(id) => {
                report.skipped += 1;
                id
            }
            None => {
                let new = NewDepartment::parse(region.as_str(), &d.code, &d.name, "department.")?;
                report.departments += 1;
                service::create_department(pool, &new, None).await?.id
            }
        };
        dept_ids.insert(d.code.clone(), id);
        let mut post_ids = HashMap::new();
        for p in &d.posts {
            let existing: Option<Uuid> =
                sqlx::query_scalar("SELECT id FROM posts WHERE department_id = $1 AND name = $2")
                    .bind(id)
                    .bind(&p.name)
                    .fetch_optional(pool)
                    .await?;
            let pid = match existing {
                Some(pid) => pid,
                None => {
                    report.posts += 1;
                    staff::create_post(pool, &region, id, &p.name, &p.duties)
                        .await?
                        .id
                }
            };
            post_ids.insert(p.name.clone(), pid);
        }
        let mut by_post: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for s in &d.staff {
            let post = *post_ids.get(&s.post).ok_or_else(|| {
                AppError::invalid("staff.post", format!("{}: no post {:?}", s.badge, s.post))
            })?;
            if let Some(bad) = s.roles.iter().find(|r| !crate::domain::grantable_role(r)) {
                return Err(AppError::invalid(
                    "staff.roles",
                    format!("{}: {bad:?} is no role a staff member holds", s.badge),
                ));
            }
            let existing: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM staff WHERE region_code = $1 AND badge_number = $2",
            )
            .bind(region.as_str())
            .bind(&s.badge)
            .fetch_optional(pool)
            .await?;
            let sid = match existing {
                Some(sid) => sid,
                None => {
                    report.staff += 1;
                    let new = staff::NewStaff {
                        department_id: id,
                        post_id: Some(post),
                        name: s.name.clone(),
                        badge_number: s.badge.clone(),
                        title: s.title.clone(),
                        main_business: s.business.clone(),
                        trained: s.trained,
                        roles: s.roles.clone(),
                    };
                    staff::create_staff(pool, &region, &new).await?.id
                }
            };
            by_post.entry(post).or_default().push(sid);
            if let Some(c) = &s.cert {
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM certificates WHERE number = $1)",
                )
                .bind(&c.number)
                .fetch_one(pool)
                .await?;
                if !exists {
                    report.certificates += 1;
                    let new = staff::NewCertificate {
                        staff_id: sid,
                        number: c.number.clone(),
                        scope: c.scope.clone(),
                        issue_date: c.issue,
                        expiry_date: c.expiry,
                    };
                    service::issue_certificate(pool, &region, &new).await?;
                }
            }
        }
        // 岗位AB角: the first two people of a post, when the post has none yet.
        for (post, people) in by_post {
            let unset: bool =
                sqlx::query_scalar("SELECT a_staff_id IS NULL FROM posts WHERE id = $1")
                    .bind(post)
                    .fetch_one(pool)
                    .await?;
            if unset {
                staff::set_post_staff(
                    pool,
                    &region,
                    post,
                    people.first().copied(),
                    people.get(1).copied(),
                )
                .await?;
            }
        }
    }
    for m in &f.matters {
        let dept = *dept_ids.get(&m.dept).ok_or_else(|| {
            AppError::invalid(
                "matters.dept",
                format!("{}: no department {:?}", m.code, m.dept),
            )
        })?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM matters WHERE region_code = $1 AND implementation_code = $2)",
        )
        .bind(region.as_str())
        .bind(&m.code)
        .fetch_one(pool)
        .await?;
        if exists {
            report.skipped += 1;
            continue;
        }
        let terms = m.terms(dept).map_err(|e| AppError::invalid("matters", e))?;
        let draft = matters::create_draft(pool, &region, &terms, None).await?;
        service::publish(
            pool,
            &region,
            draft.matter_id,
            draft.version,
            f.effective_date,
        )
        .await?;
        report.matters += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_starter_catalog_is_complete_and_valid() {
        let f = parse(include_str!("../data/starter/410702.toml")).unwrap();
        assert!(
            f.departments.len() >= 12,
            "{} departments",
            f.departments.len()
        );
        assert!(f.matters.len() >= 60, "{} matters", f.matters.len());
        let depts: std::collections::HashSet<_> =
            f.departments.iter().map(|d| d.code.as_str()).collect();
        let mut codes = std::collections::HashSet::new();
        for m in &f.matters {
            assert!(
                depts.contains(m.dept.as_str()),
                "{}: unknown department {}",
                m.code,
                m.dept
            );
            assert!(codes.insert(m.code.clone()), "{} twice", m.code);
            let terms = m.terms(Uuid::nil()).unwrap();
            crate::domain::matter::validate(&terms).unwrap_or_else(|e| panic!("{}: {e}", m.code));
        }
        let with_matters: std::collections::HashSet<_> =
            f.matters.iter().map(|m| m.dept.as_str()).collect();
        assert!(with_matters.len() >= 12);
        assert!(
            f.departments
                .iter()
                .flat_map(|d| &d.staff)
                .filter(|s| s.cert.is_some())
                .count()
                >= 3
        );
    }

    #[test]
    fn material_markers() {
        let m = material("*营业执照复印件");
        assert!(m.key && m.required && m.form == MaterialForm::Copy as i32);
        assert_eq!(m.name, "营业执照复印件");
        let m = material("?委托书");
        assert!(!m.key && !m.required && m.form == MaterialForm::Original as i32);
    }
}
