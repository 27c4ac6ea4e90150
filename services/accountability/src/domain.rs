//! The ledger's record, and the supervision rules as data: a region's versioned rule set,
//! each rule matching facts (what an event says) and producing a record at a level, once.
//! Pure: no I/O.

pub mod bulletin;
pub mod scoring;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One event as the supervision ledger recorded it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerRow {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub source: String,
    pub subject: String,
    pub region_code: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// A supervision record as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordRow {
    pub id: Uuid,
    pub rule_id: String,
    pub rule_version: String,
    pub region_code: String,
    pub level: Level,
    pub title: String,
    pub unit: String,
    pub person: String,
    pub subject: String,
    pub evidence: Vec<Uuid>,
    pub on_date: chrono::NaiveDate,
    pub created_at: DateTime<Utc>,
    pub exemption_reason: Option<String>,
    pub exemption_approver: Option<String>,
    pub exemption_date: Option<chrono::NaiveDate>,
}

impl RecordRow {
    /// 容错纠错: exempts the record once, with its reason and approver; the record stays.
    pub fn exempt(
        &mut self,
        reason: &str,
        approver: &str,
        on: chrono::NaiveDate,
    ) -> xiaoneng_kit::AppResult<()> {
        let mut v = xiaoneng_kit::Violations::new();
        v.text(reason, "reason", 1000);
        v.text(approver, "approver", 100);
        v.into_result()?;
        if self.exemption_reason.is_some() {
            return Err(xiaoneng_kit::AppError::precondition(
                "EXEMPTED_ONCE",
                "the record was exempted already",
            ));
        }
        self.exemption_reason = Some(reason.trim().to_string());
        self.exemption_approver = Some(approver.trim().to_string());
        self.exemption_date = Some(on);
        Ok(())
    }
}

xiaoneng_kit::named_enum! {
    /// 明查暗访, 模拟办事, 随机抽查.
    pub enum InspectionKind {
        OpenVisit = "open_visit",
        CovertVisit = "covert_visit",
        Simulated = "simulated",
        RandomCheck = "random_check",
    }
}

/// One finding of an inspection: a record against a unit or a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub unit: String,
    pub person: String,
    pub level: Level,
    pub title: String,
}

impl Finding {
    /// Checks a finding (index `i`): a title, a unit or person, a level.
    pub fn parse(
        i: usize,
        unit: &str,
        person: &str,
        level: &str,
        title: &str,
        v: &mut xiaoneng_kit::Violations,
    ) -> Option<Finding> {
        let lvl = Level::from_name(level);
        v.check(
            lvl.is_some(),
            &format!("findings[{i}].level"),
            "must be a level",
        );
        v.text(title, &format!("findings[{i}].title"), 200);
        v.check(
            !unit.trim().is_empty() || !person.trim().is_empty(),
            &format!("findings[{i}].unit"),
            "a finding names a unit or a person",
        );
        Some(Finding {
            unit: unit.trim().to_string(),
            person: person.trim().to_string(),
            level: lvl?,
            title: title.trim().to_string(),
        })
    }
}

/// A record a rule set would make from a fact (what-if: never written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposed {
    pub rule_id: String,
    pub level: Level,
    pub unit: String,
    pub person: String,
    pub subject: String,
    pub on: chrono::NaiveDate,
}

/// Replays `facts` (in date order) through `set`: the records it would make, once per dedupe
/// key, counting rules counted over the facts themselves.
pub fn replay(set: &RuleSet, facts: &[Fact]) -> Vec<Proposed> {
    let mut facts: Vec<&Fact> = facts.iter().collect();
    facts.sort_by_key(|f| (f.on, f.event_id));
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, f) in facts.iter().enumerate() {
        for rule in set.rules.iter().filter(|r| r.matches(f)) {
            if rule.count > 0 {
                if f.person.is_empty() {
                    continue;
                }
                let since = f.on - chrono::Duration::days(rule.within_days as i64 - 1);
                let n = facts[..=i]
                    .iter()
                    .filter(|g| g.kind == f.kind && g.person == f.person && g.on >= since)
                    .count();
                if n < rule.count as usize {
                    continue;
                }
            }
            if seen.insert(rule.dedupe_key(f)) {
                out.push(Proposed {
                    rule_id: rule.id.clone(),
                    level: rule.level(),
                    unit: f.unit.clone(),
                    person: f.person.clone(),
                    subject: f.subject.clone(),
                    on: f.on,
                });
            }
        }
    }
    out
}

xiaoneng_kit::named_enum! {
    /// The levels of a supervision record, mildest first.
    pub enum Level {
        /// 提醒
        Reminder = "reminder",
        /// 预警
        Warning = "warning",
        /// 黄牌
        YellowCard = "yellow_card",
        /// 红牌
        RedCard = "red_card",
        /// 通报批评
        Circulated = "circulated",
        /// 问责
        Accountability = "accountability",
    }
}

/// What a consumed event says that the rules look at: its kind, where, who is responsible,
/// the business date, and the attributes a rule may test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub event_id: Uuid,
    pub kind: String,
    pub region_code: String,
    pub subject: String,
    pub unit: String,
    pub person: String,
    pub on: chrono::NaiveDate,
    pub attrs: std::collections::BTreeMap<String, String>,
}

/// A rule's test of one attribute: a value, or any of several.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum Test {
    One(String),
    Any(Vec<String>),
}

impl Test {
    fn admits(&self, v: &str) -> bool {
        match self {
            Test::One(x) => x == v,
            Test::Any(xs) => xs.iter().any(|x| x == v),
        }
    }
}

/// One rule of a region's rule set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub title: String,
    /// The fact kind it matches (`case_escalated`, `bad_rating`, …).
    pub fact: String,
    #[serde(default)]
    pub when: std::collections::BTreeMap<String, Test>,
    pub level: String,
    /// Set: the rule fires when this many matching facts of one person fall within
    /// `within_days` (one record per person and calendar month).
    #[serde(default)]
    pub count: u32,
    #[serde(default)]
    pub within_days: u32,
    /// One record per subject (a case) however many facts match.
    #[serde(default)]
    pub once_per_subject: bool,
}

/// A region's rule set, as loaded from its file or over gRPC.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    pub region: String,
    pub version: String,
    pub effective_from: chrono::NaiveDate,
    pub rules: Vec<Rule>,
    /// Weights and thresholds of the scores and the ranking (defaults when absent).
    #[serde(default)]
    pub scoring: scoring::Weights,
    /// The criteria of a demonstration unit (示范点) (defaults when absent).
    #[serde(default)]
    pub demonstration: scoring::Criteria,
}

/// The fact kinds the service extracts from events (`rating` and `case_completed` feed the
/// scores).
pub const FACT_KINDS: &[&str] = &[
    "rating",
    "case_completed",
    "visit",
    "excess_visit",
    "case_escalated",
    "one_time_notice_violated",
    "bad_rating",
    "bad_rating_overdue",
    "complaint_filed",
    "complaint_concluded",
    "uncertified_enforcement",
];

impl RuleSet {
    /// Parses and checks a rule set: every bad rule named (its index and id).
    pub fn parse(text: &str) -> Result<RuleSet, Vec<String>> {
        let set: RuleSet = toml::from_str(text).map_err(|e| vec![e.message().to_string()])?;
        let mut bad = Vec::new();
        if xiaoneng_kit::region::RegionCode::parse(&set.region).is_err() {
            bad.push(format!(
                "region {:?} is not a six-digit region code",
                set.region
            ));
        }
        if set.version.trim().is_empty() {
            bad.push("version is required".into());
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, r) in set.rules.iter().enumerate() {
            let at = format!("rules[{i}] ({})", r.id);
            if r.id.trim().is_empty() || !ids.insert(r.id.clone()) {
                bad.push(format!("{at}: the id must be present and unique"));
            }
            if !FACT_KINDS.contains(&r.fact.as_str()) {
                bad.push(format!(
                    "{at}: fact must be one of {}",
                    FACT_KINDS.join(", ")
                ));
            }
            if Level::from_name(&r.level).is_none() {
                bad.push(format!("{at}: level {:?} is not a level", r.level));
            }
            if (r.count > 0) != (r.within_days > 0) {
                bad.push(format!("{at}: count and within_days go together"));
            }
        }
        if bad.is_empty() {
            Ok(set)
        } else {
            Err(bad)
        }
    }
}

impl Rule {
    pub fn level(&self) -> Level {
        Level::from_name(&self.level).unwrap_or(Level::Reminder)
    }

    /// Whether the fact matches the rule's kind and every attribute test.
    pub fn matches(&self, f: &Fact) -> bool {
        self.fact == f.kind
            && self
                .when
                .iter()
                .all(|(k, t)| f.attrs.get(k).is_some_and(|v| t.admits(v)))
    }

    /// The key that makes a record once: per event for a plain rule; per person and month
    /// for a counting rule (the month of the fact that completed the count).
    pub fn dedupe_key(&self, f: &Fact) -> String {
        if self.count > 0 {
            format!("{}|{}|{}", self.id, f.person, f.on.format("%Y-%m"))
        } else if self.once_per_subject {
            format!("{}|subject|{}", self.id, f.subject)
        } else {
            format!("{}|{}", self.id, f.event_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STARTER: &str = include_str!("../rules/410700.toml");

    fn fact(kind: &str, attrs: &[(&str, &str)]) -> Fact {
        Fact {
            event_id: Uuid::nil(),
            kind: kind.into(),
            region_code: "410702".into(),
            subject: "x".into(),
            unit: "行政审批局".into(),
            person: "s1".into(),
            on: chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_starter_rules_parse_and_match_what_they_name_only() {
        let set = RuleSet::parse(STARTER).unwrap();
        let fired = |f: &Fact| -> Vec<&str> {
            set.rules
                .iter()
                .filter(|r| r.matches(f))
                .map(|r| r.id.as_str())
                .collect()
        };
        assert_eq!(
            fired(&fact("case_escalated", &[("level", "yellow_card")])),
            ["case-yellow-card"]
        );
        assert_eq!(
            fired(&fact(
                "complaint_concluded",
                &[("finding", "substantiated"), ("retaliation", "false")]
            )),
            ["complaint-substantiated"]
        );
        assert_eq!(
            fired(&fact(
                "complaint_concluded",
                &[("finding", "not_substantiated"), ("retaliation", "false")]
            )),
            Vec::<&str>::new()
        );
        assert_eq!(
            fired(&fact("complaint_filed", &[("kind", "retaliation")])),
            ["retaliation-report"]
        );
        assert_eq!(
            fired(&fact("complaint_filed", &[("kind", "complaint")])),
            Vec::<&str>::new()
        );
        assert_eq!(fired(&fact("bad_rating", &[])), ["repeated-bad-ratings"]);
        let lapsed = fact("uncertified_enforcement", &[("cause", "revoked")]);
        assert_eq!(fired(&lapsed), ["uncertified-enforcement"]);
        let excess = fact("excess_visit", &[("visits", "2")]);
        assert_eq!(fired(&excess), ["visits-above-promise"]);
        let rule = set
            .rules
            .iter()
            .find(|r| r.id == "visits-above-promise")
            .unwrap();
        assert_eq!(
            rule.dedupe_key(&excess),
            "visits-above-promise|subject|x",
            "once per case"
        );
    }

    /// Three 差评 of s1 on 2, 10 and 20 Nov (within 30 days) make one yellow card on the third;
    /// s2's two make none; a proposed count of 2 makes one for each.
    #[test]
    fn a_replay_counts_like_the_live_rules_and_a_proposal_changes_the_outcome() {
        let set = RuleSet::parse(STARTER).unwrap();
        let bad = |person: &str, day: u32, n: u128| Fact {
            event_id: Uuid::from_u128(n),
            person: person.into(),
            on: chrono::NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            ..fact("bad_rating", &[])
        };
        let facts = vec![
            bad("s1", 2, 1),
            bad("s2", 3, 2),
            bad("s1", 10, 3),
            bad("s2", 11, 4),
            bad("s1", 20, 5),
        ];
        let now = replay(&set, &facts);
        assert_eq!(now.len(), 1);
        assert_eq!(
            (now[0].person.as_str(), now[0].on.to_string().as_str()),
            ("s1", "2026-11-20")
        );
        let proposal = STARTER.replace("count = 3", "count = 2");
        let proposed = replay(&RuleSet::parse(&proposal).unwrap(), &facts);
        let who: Vec<_> = proposed
            .iter()
            .map(|p| (p.person.as_str(), chrono::Datelike::day(&p.on)))
            .collect();
        assert_eq!(who, [("s1", 10), ("s2", 11)]);
    }

    #[test]
    fn a_record_is_exempted_once_with_reason_and_approver() {
        let mut r = RecordRow {
            id: Uuid::nil(),
            rule_id: "x".into(),
            rule_version: "1".into(),
            region_code: "410702".into(),
            level: Level::YellowCard,
            title: "t".into(),
            unit: "u".into(),
            person: "p".into(),
            subject: "s".into(),
            evidence: vec![],
            on_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            created_at: Utc::now(),
            exemption_reason: None,
            exemption_approver: None,
            exemption_date: None,
        };
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 5).unwrap();
        assert!(
            matches!(r.exempt(" ", "", day), Err(xiaoneng_kit::AppError::InvalidArgument(v)) if v.len() == 2)
        );
        r.exempt("系统故障导致超期, 非主观过错", "效能办主任", day)
            .unwrap();
        assert!(matches!(
            r.exempt("再次", "x", day),
            Err(xiaoneng_kit::AppError::FailedPrecondition {
                reason: "EXEMPTED_ONCE",
                ..
            })
        ));
    }

    #[test]
    fn a_bad_rule_set_names_every_bad_rule() {
        let text = "region = \"41\"\nversion = \"\"\neffective_from = \"2026-01-01\"\n\
                    [[rules]]\nid = \"a\"\ntitle = \"t\"\nfact = \"weather\"\nlevel = \"purple\"\ncount = 3\n\
                    [[rules]]\nid = \"a\"\ntitle = \"t\"\nfact = \"bad_rating\"\nlevel = \"warning\"\n";
        let bad = RuleSet::parse(text).unwrap_err();
        assert_eq!(bad.len(), 6, "{bad:?}");
        assert!(bad[0].starts_with("region"));
        assert!(bad.iter().any(|b| b.starts_with("rules[1] (a): the id")));
    }

    #[test]
    fn a_plain_rule_records_once_per_event_a_counting_rule_once_per_person_and_month() {
        let set = RuleSet::parse(STARTER).unwrap();
        let plain = set.rules.iter().find(|r| r.id == "case-red-card").unwrap();
        let counting = set
            .rules
            .iter()
            .find(|r| r.id == "repeated-bad-ratings")
            .unwrap();
        let f = fact("case_escalated", &[("level", "red_card")]);
        assert_eq!(
            plain.dedupe_key(&f),
            format!("case-red-card|{}", Uuid::nil())
        );
        assert_eq!(counting.dedupe_key(&f), "repeated-bad-ratings|s1|2026-11");
        assert_eq!(plain.level(), Level::RedCard);
    }
}
