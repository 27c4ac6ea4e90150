//! Calendar notices loaded at run time: a new year's State Council notice (国务院办公厅关于
//! 部分节假日安排的通知) or a region's overlay (a local closure, a typhoon day). A notice is
//! parsed and validated as a whole: every bad line is named, and a notice with one bad line is
//! refused entirely, so nothing half-loaded ever reaches a deadline.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Deserialize;

/// What a notice is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The national holidays and make-up workdays of one year.
    National { year: i32 },
    /// Closures and extra workdays of one region (and the regions under it).
    Region { code: String },
}

impl Scope {
    /// The stored name: `national:2027` or `region:410702`.
    pub fn key(&self) -> String {
        match self {
            Scope::National { year } => format!("national:{year}"),
            Scope::Region { code } => format!("region:{code}"),
        }
    }
}

/// A validated notice: the days it takes off and puts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub scope: Scope,
    /// The version the office gives it (`2027-1`); a later load of the same scope replaces it.
    pub version: String,
    /// The document it comes from.
    pub source: String,
    /// Marked when the data is not an official notice (test and drill data).
    pub fabricated: bool,
    /// Days that are not working days although they fall Monday–Friday.
    pub off: BTreeSet<NaiveDate>,
    /// Days that are working days although they fall on a weekend.
    pub on: BTreeSet<NaiveDate>,
}

/// Every problem of a refused notice, one line each (`line 7: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("calendar notice refused: {}", .0.join("; "))]
pub struct NoticeErrors(pub Vec<String>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotice {
    year: Option<i32>,
    region_code: Option<String>,
    #[serde(default)]
    version: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    fabricated: bool,
    #[serde(default)]
    holidays: Vec<RawRange>,
    #[serde(default)]
    closures: Vec<RawRange>,
    #[serde(default)]
    workdays: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    #[serde(default)]
    name: String,
    from: String,
    to: String,
}

/// The 1-based line of the first line of `text` containing `needle` (quoted), or 0.
fn line_of(text: &str, needle: &str) -> usize {
    let quoted = format!("\"{needle}\"");
    text.lines()
        .position(|l| l.contains(&quoted))
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// The 1-based line holding a range: the first line with both dates (quoted), or 0.
fn line_of_range(text: &str, from: &str, to: &str) -> usize {
    let (a, b) = (format!("\"{from}\""), format!("\"{to}\""));
    let both = text.lines().position(|l| l.contains(&a) && l.contains(&b));
    both.map(|i| i + 1).unwrap_or_else(|| line_of(text, from))
}

/// The line of `key = ...`, or 0.
fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            l.trim_start().starts_with(key)
                && l[l.find(key).unwrap_or(0) + key.len()..]
                    .trim_start()
                    .starts_with('=')
        })
        .map(|i| i + 1)
        .unwrap_or(0)
}

struct Check<'a> {
    text: &'a str,
    errors: Vec<(usize, String)>,
}

impl Check<'_> {
    fn at(&mut self, line: usize, message: String) {
        self.errors.push((line, message));
    }

    fn date(&mut self, what: &str, value: &str) -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                let line = line_of(self.text, value);
                self.at(line, format!("{what} {value:?} is not a date (YYYY-MM-DD)"));
                None
            }
        }
    }
}

impl Notice {
    /// Parses a notice: national (`year`, `holidays`, `workdays`) or regional (`region_code`,
    /// `closures`, `workdays`), with `version` and `source`. Refuses it with every bad line.
    pub fn parse(text: &str) -> Result<Notice, NoticeErrors> {
        let raw: RawNotice = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            NoticeErrors(vec![format!("line {line}: {}", e.message())])
        })?;
        let mut c = Check {
            text,
            errors: Vec::new(),
        };
        if raw.version.trim().is_empty() {
            c.at(
                line_of_key(text, "version"),
                "`version` is required (the notice's version, e.g. \"2027-1\")".into(),
            );
        }
        if raw.source.trim().is_empty() {
            c.at(
                line_of_key(text, "source"),
                "`source` is required (the document the notice comes from)".into(),
            );
        }
        let scope = match (raw.year, &raw.region_code) {
            (Some(year), None) => {
                if !(2000..=2100).contains(&year) {
                    c.at(
                        line_of_key(text, "year"),
                        format!("year {year} is out of range"),
                    );
                }
                if !raw.closures.is_empty() {
                    c.at(
                        line_of_key(text, "closures"),
                        "a national notice has `holidays`, not `closures`".into(),
                    );
                }
                Some(Scope::National { year })
            }
            (None, Some(code)) => {
                if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                    c.at(
                        line_of(text, code),
                        format!("region_code {code:?} must be 6 digits"),
                    );
                }
                if !raw.holidays.is_empty() {
                    c.at(
                        line_of_key(text, "holidays"),
                        "a region's overlay has `closures`, not `holidays`".into(),
                    );
                }
                Some(Scope::Region { code: code.clone() })
            }
            _ => {
                c.at(
                    0,
                    "a notice names either `year` (national) or `region_code` (a region's overlay)"
                        .into(),
                );
                None
            }
        };
        let year = match &scope {
            Some(Scope::National { year }) => Some(*year),
            _ => None,
        };
        let in_year = |c: &mut Check, d: NaiveDate, value: &str| {
            if let Some(y) = year {
                if d.year() != y {
                    let line = line_of(c.text, value);
                    c.at(line, format!("{value} is not in {y}"));
                }
            }
        };
        let mut off = BTreeSet::new();
        let mut ranges: Vec<(NaiveDate, NaiveDate, String, usize)> = Vec::new();
        for r in raw.holidays.iter().chain(&raw.closures) {
            let (from, to) = (c.date("from", &r.from), c.date("to", &r.to));
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            let line = line_of_range(text, &r.from, &r.to);
            in_year(&mut c, from, &r.from);
            if to != from {
                in_year(&mut c, to, &r.to);
            }
            if to < from {
                c.at(
                    line,
                    format!("{} {from} .. {to} ends before it starts", r.name),
                );
                continue;
            }
            if (to - from).num_days() > 31 {
                c.at(
                    line,
                    format!("{} {from} .. {to} is longer than a month", r.name),
                );
                continue;
            }
            if let Some((_, _, other, _)) =
                ranges.iter().find(|(f, t, _, _)| from <= *t && *f <= to)
            {
                c.at(line, format!("{} {from} .. {to} overlaps {other}", r.name));
            }
            ranges.push((from, to, r.name.clone(), line));
            let mut d = from;
            while d <= to {
                off.insert(d);
                d += Duration::days(1);
            }
        }
        let mut on = BTreeSet::new();
        for w in &raw.workdays {
            let Some(d) = c.date("workday", w) else {
                continue;
            };
            in_year(&mut c, d, w);
            let line = line_of(text, w);
            if year.is_some() && !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                c.at(
                    line,
                    format!(
                        "make-up workday {w} is a {:?}, not a weekend day",
                        d.weekday()
                    ),
                );
            }
            if let Some((_, _, name, _)) = ranges.iter().find(|(f, t, _, _)| *f <= d && d <= *t) {
                c.at(
                    line,
                    format!("workday {w} falls inside {name}: a day is either off or on"),
                );
            }
            if !on.insert(d) {
                c.at(line, format!("workday {w} is listed twice"));
            }
        }
        if !c.errors.is_empty() {
            c.errors.sort();
            return Err(NoticeErrors(
                c.errors
                    .into_iter()
                    .map(|(l, m)| format!("line {l}: {m}"))
                    .collect(),
            ));
        }
        Ok(Notice {
            scope: scope.expect("no error means a scope"),
            version: raw.version.trim().to_string(),
            source: raw.source.trim().to_string(),
            fabricated: raw.fabricated,
            off,
            on,
        })
    }

    /// Every day this notice decides (off or on): what a change of it can move.
    pub fn days(&self) -> BTreeSet<NaiveDate> {
        self.off.union(&self.on).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_national_notice_parses_with_its_days() {
        let text = "year = 2027\nversion = \"2027-1\"\nsource = \"test\"\nfabricated = true\n\
                    holidays = [\n  { name = \"元旦\", from = \"2027-01-01\", to = \"2027-01-03\" },\n]\n\
                    workdays = [\"2027-01-09\"]\n";
        let n = Notice::parse(text).unwrap();
        assert_eq!(n.scope, Scope::National { year: 2027 });
        assert_eq!(n.scope.key(), "national:2027");
        assert_eq!((n.version.as_str(), n.fabricated), ("2027-1", true));
        assert_eq!(
            n.off,
            [d("2027-01-01"), d("2027-01-02"), d("2027-01-03")].into()
        );
        assert_eq!(n.on, [d("2027-01-09")].into());
    }

    #[test]
    fn every_bad_line_is_named() {
        let text = "year = 2027\n\
                    version = \"2027-1\"\n\
                    source = \"x\"\n\
                    holidays = [\n\
                    { name = \"A\", from = \"2027-02-30\", to = \"2027-03-01\" },\n\
                    { name = \"B\", from = \"2028-01-01\", to = \"2028-01-02\" },\n\
                    { name = \"C\", from = \"2027-05-05\", to = \"2027-05-01\" },\n\
                    { name = \"D\", from = \"2027-10-01\", to = \"2027-10-07\" },\n\
                    ]\n\
                    workdays = [\n\
                    \"2027-10-02\",\n\
                    \"2027-06-09\",\n\
                    ]\n";
        let err = Notice::parse(text).unwrap_err().0;
        assert_eq!(
            err,
            vec![
                "line 5: from \"2027-02-30\" is not a date (YYYY-MM-DD)".to_string(),
                "line 6: 2028-01-01 is not in 2027".to_string(),
                "line 6: 2028-01-02 is not in 2027".to_string(),
                "line 7: C 2027-05-05 .. 2027-05-01 ends before it starts".to_string(),
                "line 11: workday 2027-10-02 falls inside D: a day is either off or on".to_string(),
                "line 12: make-up workday 2027-06-09 is a Wed, not a weekend day".to_string(),
            ]
        );
    }

    #[test]
    fn version_source_and_scope_are_required() {
        let err = Notice::parse("holidays = []\n").unwrap_err().0;
        assert_eq!(err.len(), 3, "{err:?}");
        assert!(err.iter().any(|e| e.contains("`version` is required")));
        assert!(err.iter().any(|e| e.contains("`source` is required")));
        assert!(err.iter().any(|e| e.contains("either `year`")));
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let err = Notice::parse("year = 2027\nversion = \"1\"\nsource = \nholidays = []\n")
            .unwrap_err()
            .0;
        assert_eq!(err.len(), 1);
        assert!(err[0].starts_with("line 3:"), "{err:?}");
    }

    #[test]
    fn a_region_overlay_parses_and_overlapping_closures_are_refused() {
        let ok = "region_code = \"410702\"\nversion = \"v2\"\nsource = \"台风停班\"\n\
                  closures = [{ name = \"台风\", from = \"2027-07-20\", to = \"2027-07-21\" }]\n";
        let n = Notice::parse(ok).unwrap();
        assert_eq!(
            n.scope,
            Scope::Region {
                code: "410702".into()
            }
        );
        assert_eq!(n.off, [d("2027-07-20"), d("2027-07-21")].into());
        let bad = "region_code = \"410702\"\nversion = \"v2\"\nsource = \"x\"\nclosures = [\n\
                   { name = \"甲\", from = \"2027-07-20\", to = \"2027-07-22\" },\n\
                   { name = \"乙\", from = \"2027-07-22\", to = \"2027-07-23\" },\n]\n";
        let err = Notice::parse(bad).unwrap_err().0;
        assert_eq!(
            err,
            vec!["line 6: 乙 2027-07-22 .. 2027-07-23 overlaps 甲".to_string()]
        );
    }
}
