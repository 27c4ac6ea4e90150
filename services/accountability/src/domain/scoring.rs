//! Scoring and a fair ranking, pure: each unit (or staff member) is scored from the period's
//! facts on satisfaction (the Wilson lower bound of its good ratings, so three ratings do not
//! outrank three hundred), on-time completion against what is expected of its matter mix (the
//! region's on-time rate of each matter it handled: a unit that handles hard matters is not
//! punished for them), and its non-exempt records by level. A unit with fewer observations
//! than the region's minimum is shown and not ranked. Every row carries its why.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Weights and thresholds, per region and versioned with its rule set (`[scoring]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub satisfaction: f64,
    pub on_time: f64,
    /// Ratings plus completed cases a unit needs to be ranked.
    pub min_observations: u32,
    /// Points taken per non-exempt record, by level name.
    pub penalties: BTreeMap<String, f64>,
    /// How many of the bottom get their actions recorded (末位), and of the top a commendation.
    pub bottom: u32,
    pub top: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            satisfaction: 0.5,
            on_time: 0.5,
            min_observations: 20,
            penalties: [
                ("reminder", 0.0),
                ("warning", 1.0),
                ("yellow_card", 3.0),
                ("red_card", 6.0),
                ("circulated", 5.0),
                ("accountability", 10.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            bottom: 1,
            top: 1,
        }
    }
}

/// One completed case of the period: who handled it, its matter, whether on time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub key: String,
    pub matter: String,
    pub on_time: bool,
}

/// What a unit's score rests on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub ratings: u32,
    pub good: u32,
    pub cases: u32,
    pub on_time: u32,
    /// The on-time completions expected of its matter mix.
    pub expected_on_time: f64,
    /// Non-exempt records by level.
    pub records: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub key: String,
    pub observed: Observed,
    /// Satisfaction: the observed rate and its 95 % Wilson interval.
    pub satisfaction: Option<(f64, f64, f64)>,
    /// On-time completions over those expected of the matter mix (1.0: as expected).
    pub on_time_index: Option<f64>,
    pub penalty: f64,
    pub score: f64,
    /// 1-based; None when the unit has too few observations to be ranked.
    pub rank: Option<u32>,
    pub bottom: bool,
    pub top: bool,
}

/// The 95 % Wilson score interval of `k` successes in `n` trials: (rate, lower, upper).
pub fn wilson(k: u32, n: u32) -> Option<(f64, f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n, z) = (k as f64, n as f64, 1.96_f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n) + z * z / (4.0 * n * n)).sqrt() / denom;
    Some((p, (centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The expected on-time completions of each key: for every case it completed, the region's
/// on-time rate of that case's matter in the period (indirect standardisation).
pub fn expected_on_time(cases: &[Completion]) -> BTreeMap<String, f64> {
    let mut by_matter: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for c in cases {
        let e = by_matter.entry(c.matter.as_str()).or_default();
        e.0 += 1;
        e.1 += c.on_time as u32;
    }
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for c in cases {
        let (n, ok) = by_matter[c.matter.as_str()];
        *out.entry(c.key.clone()).or_default() += ok as f64 / n as f64;
    }
    out
}

/// Scores and ranks the observed keys by the weights.
/// Counts each record against its unit or person (`key`) by level — an exempted one
/// (容错纠错) not at all: it stays on record and costs no points.
pub fn count_records(
    observed: &mut BTreeMap<String, Observed>,
    records: &[super::RecordRow],
    key: impl Fn(&super::RecordRow) -> String,
) {
    for r in records.iter().filter(|r| r.exemption_reason.is_none()) {
        let o = observed.entry(key(r)).or_default();
        *o.records.entry(r.level.name().to_string()).or_default() += 1;
    }
}

pub fn rank(observed: BTreeMap<String, Observed>, w: &Weights) -> Vec<Ranked> {
    let mut rows: Vec<Ranked> = observed
        .into_iter()
        .map(|(key, o)| {
            let satisfaction = wilson(o.good, o.ratings);
            let on_time_index = (o.cases > 0 && o.expected_on_time > 0.0)
                .then(|| (o.on_time as f64 / o.expected_on_time).min(1.5))
                .or_else(|| (o.cases > 0).then_some(if o.on_time > 0 { 1.5 } else { 1.0 }));
            let mut parts = Vec::new();
            if let Some((_, lower, _)) = satisfaction {
                parts.push((w.satisfaction, lower));
            }
            if let Some(i) = on_time_index {
                parts.push((w.on_time, i.min(1.0)));
            }
            let weight: f64 = parts.iter().map(|p| p.0).sum();
            let base = if weight > 0.0 {
                100.0 * parts.iter().map(|(w, v)| w * v).sum::<f64>() / weight
            } else {
                0.0
            };
            let penalty: f64 = o
                .records
                .iter()
                .map(|(level, n)| w.penalties.get(level).copied().unwrap_or(0.0) * *n as f64)
                .sum();
            Ranked {
                key,
                observed: o,
                satisfaction,
                on_time_index,
                penalty,
                score: base - penalty,
                rank: None,
                bottom: false,
                top: false,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.key.cmp(&b.key)));
    let eligible: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.observed.ratings + r.observed.cases >= w.min_observations)
        .map(|(i, _)| i)
        .collect();
    let n = eligible.len();
    for (pos, &i) in eligible.iter().enumerate() {
        rows[i].rank = Some(pos as u32 + 1);
        rows[i].top = pos < w.top as usize;
        rows[i].bottom = n > (w.top as usize) && pos >= n.saturating_sub(w.bottom as usize);
    }
    // The ranked in rank order, then those with too few observations (by score).
    rows.sort_by_key(|r| (r.rank.is_none(), r.rank));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(ratings: u32, good: u32, cases: u32, on_time: u32, expected: f64) -> Observed {
        Observed {
            ratings,
            good,
            cases,
            on_time,
            expected_on_time: expected,
            records: BTreeMap::new(),
        }
    }

    fn red_card(unit: &str, exempt: bool) -> crate::domain::RecordRow {
        crate::domain::RecordRow {
            id: uuid::Uuid::nil(),
            rule_id: "case-overdue-red".into(),
            rule_version: "starter-2".into(),
            region_code: "410702".into(),
            level: crate::domain::Level::RedCard,
            title: "超期".into(),
            unit: unit.into(),
            person: String::new(),
            subject: "c1".into(),
            evidence: vec![],
            on_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            exemption_reason: exempt.then(|| "系统故障".to_string()),
            exemption_approver: exempt.then(|| "效能办".to_string()),
            exemption_date: None,
        }
    }

    /// Three units alike (25 ratings, 20 good): A with an exempted red card scores as C with
    /// none; B with the same red card not exempted loses the red card's 6 points.
    #[test]
    fn an_exempted_record_costs_no_points() {
        let mut observed: BTreeMap<String, Observed> = ["A", "B", "C"]
            .iter()
            .map(|k| (k.to_string(), obs(25, 20, 0, 0, 0.0)))
            .collect();
        count_records(
            &mut observed,
            &[red_card("A", true), red_card("B", false)],
            |r| r.unit.clone(),
        );
        let ranked = rank(observed, &Weights::default());
        let score = |k: &str| {
            ranked
                .iter()
                .find(|r| r.key == k)
                .map(|r| (r.score, r.penalty))
                .unwrap_or_default()
        };
        assert_eq!(score("A"), score("C"));
        assert_eq!(score("B").1, 6.0);
        assert!(
            (score("C").0 - score("B").0 - 6.0).abs() < 1e-9,
            "{:?} {:?}",
            score("C"),
            score("B")
        );
    }

    /// Wilson by hand: 8 of 10 → 0.8, [0.4902, 0.9433]; 0 of 0 → none.
    #[test]
    fn the_wilson_interval_is_the_textbook_one() {
        let (p, lo, hi) = wilson(8, 10).unwrap();
        assert_eq!(p, 0.8);
        assert!(
            (lo - 0.4902).abs() < 1e-4 && (hi - 0.9433).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), None);
    }

    /// Unit A handles only a hard matter (on time 2 of 4 region-wide, all A's); B an easy one
    /// (4 of 4). A's expected on-time is 2.0 and it made 2: index 1.0, as good as B's.
    #[test]
    fn a_unit_is_scored_against_its_matter_mix() {
        let cases: Vec<Completion> = [
            ("A", "hard", true),
            ("A", "hard", true),
            ("A", "hard", false),
            ("A", "hard", false),
        ]
        .iter()
        .chain(
            [
                ("B", "easy", true),
                ("B", "easy", true),
                ("B", "easy", true),
                ("B", "easy", true),
            ]
            .iter(),
        )
        .map(|(k, m, t)| Completion {
            key: k.to_string(),
            matter: m.to_string(),
            on_time: *t,
        })
        .collect();
        let e = expected_on_time(&cases);
        assert_eq!((e["A"], e["B"]), (2.0, 4.0));
        let w = Weights {
            min_observations: 1,
            ..Weights::default()
        };
        let rows = rank(
            [
                ("A".to_string(), obs(0, 0, 4, 2, 2.0)),
                ("B".to_string(), obs(0, 0, 4, 4, 4.0)),
            ]
            .into(),
            &w,
        );
        assert_eq!(rows[0].on_time_index, Some(1.0));
        assert_eq!(rows[1].on_time_index, Some(1.0));
        assert_eq!(
            rows[0].score, rows[1].score,
            "the hard matter costs A nothing"
        );
    }

    /// Three perfect ratings do not outrank 300 ratings at 95 %; a unit under the minimum is
    /// scored, shown, and not ranked; the bottom and the top are marked; records cost points.
    #[test]
    fn small_units_are_not_ranked_and_records_cost_points() {
        let w = Weights {
            min_observations: 20,
            ..Weights::default()
        };
        let mut carded = obs(300, 285, 0, 0, 0.0);
        carded.records.insert("yellow_card".into(), 1);
        let rows = rank(
            [
                ("big".to_string(), obs(300, 285, 0, 0, 0.0)),
                ("tiny".to_string(), obs(3, 3, 0, 0, 0.0)),
                ("carded".to_string(), carded),
            ]
            .into(),
            &w,
        );
        let by: BTreeMap<&str, &Ranked> = rows.iter().map(|r| (r.key.as_str(), r)).collect();
        assert!(
            by["big"].score > by["tiny"].score,
            "a bound, not a raw rate"
        );
        assert_eq!(by["tiny"].rank, None);
        assert_eq!((by["big"].rank, by["big"].top), (Some(1), true));
        assert_eq!((by["carded"].rank, by["carded"].bottom), (Some(2), true));
        assert_eq!(
            by["big"].score - by["carded"].score,
            3.0,
            "a yellow card costs 3 points"
        );
    }
}

/// A period: `2026-11` (a month), `2026-Q4` (a quarter) or `2026` (a year); its first and
/// last day.
pub fn period(s: &str) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    use chrono::NaiveDate;
    let s = s.trim();
    let (year, from_month, months) = if let Some((y, q)) = s.split_once("-Q") {
        let q: u32 = q.parse().ok().filter(|q| (1..=4).contains(q))?;
        (y.parse::<i32>().ok()?, (q - 1) * 3 + 1, 3)
    } else if let Some((y, m)) = s.split_once('-') {
        let m: u32 = m.parse().ok().filter(|m| (1..=12).contains(m))?;
        (y.parse::<i32>().ok()?, m, 1)
    } else {
        (s.parse::<i32>().ok()?, 1, 12)
    };
    if !(2000..=2100).contains(&year) {
        return None;
    }
    let from = NaiveDate::from_ymd_opt(year, from_month, 1)?;
    let next = from_month + months;
    let to = if next > 12 {
        NaiveDate::from_ymd_opt(year + 1, next - 12, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, next, 1)?
    }
    .pred_opt()?;
    Some((from, to))
}

#[cfg(test)]
mod period_tests {
    use super::period;

    #[test]
    fn months_quarters_and_years() {
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(period("2026-11"), Some((d("2026-11-01"), d("2026-11-30"))));
        assert_eq!(period("2026-Q4"), Some((d("2026-10-01"), d("2026-12-31"))));
        assert_eq!(period("2028-02"), Some((d("2028-02-01"), d("2028-02-29"))));
        assert_eq!(period("2026"), Some((d("2026-01-01"), d("2026-12-31"))));
        assert_eq!(period("2026-13"), None);
        assert_eq!(period("2026-Q5"), None);
        assert_eq!(period("soon"), None);
    }
}

/// The criteria of a demonstration unit (示范点), per region with its rule set
/// (`[demonstration]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Criteria {
    /// The year's satisfaction (good ratings over ratings) at least this.
    pub min_satisfaction: f64,
    /// Ratings the year needs for the satisfaction to count.
    pub min_ratings: u32,
    /// Categories whose substantiated complaint is misconduct (吃拿卡要 …).
    pub misconduct: Vec<String>,
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            min_satisfaction: 0.8,
            min_ratings: 20,
            misconduct: vec!["bribery".into(), "retaliation".into()],
        }
    }
}

/// What a unit's year shows against the criteria.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Year {
    pub ratings: u32,
    pub good: u32,
    pub red_cards: u32,
    pub misconduct: u32,
}

/// Keeps the title (Ok) or names every criterion the year missed.
pub fn assess(y: &Year, c: &Criteria) -> Result<(), Vec<String>> {
    let mut why = Vec::new();
    if y.ratings < c.min_ratings {
        why.push(format!(
            "only {} ratings in the year (at least {} needed)",
            y.ratings, c.min_ratings
        ));
    } else if y.ratings > 0 {
        let rate = y.good as f64 / y.ratings as f64;
        if rate < c.min_satisfaction {
            why.push(format!(
                "satisfaction {:.1}% below {:.0}%",
                rate * 100.0,
                c.min_satisfaction * 100.0
            ));
        }
    }
    if y.red_cards > 0 {
        why.push(format!("{} red card(s)", y.red_cards));
    }
    if y.misconduct > 0 {
        why.push(format!(
            "{} substantiated misconduct complaint(s)",
            y.misconduct
        ));
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why)
    }
}

#[cfg(test)]
mod demonstration_tests {
    use super::*;

    #[test]
    fn a_title_is_kept_only_when_every_criterion_holds() {
        let c = Criteria::default();
        let good = Year {
            ratings: 100,
            good: 85,
            red_cards: 0,
            misconduct: 0,
        };
        assert_eq!(assess(&good, &c), Ok(()));
        let bad = Year {
            ratings: 100,
            good: 70,
            red_cards: 1,
            misconduct: 1,
        };
        assert_eq!(
            assess(&bad, &c).unwrap_err(),
            [
                "satisfaction 70.0% below 80%",
                "1 red card(s)",
                "1 substantiated misconduct complaint(s)"
            ]
        );
        let few = Year {
            ratings: 5,
            good: 5,
            ..Default::default()
        };
        assert_eq!(assess(&few, &c).unwrap_err().len(), 1);
    }
}
