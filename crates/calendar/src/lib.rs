//! The working-day calendar (工作日历) and the legal clock (法定时限).
//!
//! Layout: [`Calendar`] knows which dates are working days — Monday to Friday, minus
//! statutory holidays and local closures, plus make-up workdays (调休上班) — from year files
//! under `data/national/` (embedded) and optional regional overlays (`data/regions/`).
//! [`Clock`] measures a limit in working days from a start date, with pauses (the clock
//! stops for corrections, hearings, testing, expert review, public notice) and extensions.
//!
//! Counting rule: a limit of N working days started on day S ends on the N-th working day
//! strictly after S (the start day itself does not count, as in 行政许可法 practice). A pause
//! from P to R (resumed on R) stops the clock for the working days in (P, R].
//!
//! Years with no data file fall back to the plain Monday–Friday rule; [`Calendar::covers`]
//! tells whether a year is backed by an official notice, and a deadline computed over an
//! uncovered year is *provisional* ([`Calendar::covers_span`]). New years' notices and
//! regional overlays also arrive at run time as [`Notice`]s ([`Calendars::with_notices`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Deserialize;

mod clock;
mod notice;
pub use clock::{Clock, ClockError, Pause};
pub use notice::{Notice, NoticeErrors, Scope};

/// Embedded national year files: the official notices of the State Council General Office.
const NATIONAL_YEARS: &[&str] = &[
    include_str!("../data/national/2025.toml"),
    include_str!("../data/national/2026.toml"),
];

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar file {file}: {message}")]
    Parse { file: String, message: String },
    #[error("calendar file {file}: `{field}` {value:?} is not a date (YYYY-MM-DD)")]
    BadDate {
        file: String,
        field: &'static str,
        value: String,
    },
    #[error("calendar file {file}: range {from} .. {to} ends before it starts")]
    BadRange {
        file: String,
        from: NaiveDate,
        to: NaiveDate,
    },
    #[error("calendar directory {dir}: {message}")]
    Io { dir: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    /// The notice's version: a shipped year file is a notice like one loaded at run time.
    #[allow(dead_code)]
    version: String,
    #[allow(dead_code)]
    source: String,
    holidays: Vec<RangeEntry>,
    #[serde(default)]
    workdays: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlayFile {
    region_code: String,
    #[allow(dead_code)]
    source: String,
    #[serde(default)]
    closures: Vec<RangeEntry>,
    #[serde(default)]
    workdays: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeEntry {
    #[allow(dead_code)]
    name: String,
    from: String,
    to: String,
}

fn parse_date(file: &str, field: &'static str, value: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| CalendarError::BadDate {
        file: file.to_string(),
        field,
        value: value.to_string(),
    })
}

fn expand(
    file: &str,
    ranges: &[RangeEntry],
    into: &mut BTreeSet<NaiveDate>,
) -> Result<(), CalendarError> {
    for r in ranges {
        let from = parse_date(file, "from", &r.from)?;
        let to = parse_date(file, "to", &r.to)?;
        if to < from {
            return Err(CalendarError::BadRange {
                file: file.to_string(),
                from,
                to,
            });
        }
        let mut d = from;
        while d <= to {
            into.insert(d);
            d += Duration::days(1);
        }
    }
    Ok(())
}

/// Which dates are working days for one region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Dates that are not working days although they fall Monday–Friday (holidays, closures).
    off: BTreeSet<NaiveDate>,
    /// Weekend dates that are working days (调休上班).
    on: BTreeSet<NaiveDate>,
    covered: BTreeSet<i32>,
}

impl Calendar {
    /// The national calendar from the embedded official notices.
    pub fn national() -> Self {
        let mut cal = Calendar::default();
        for (i, text) in NATIONAL_YEARS.iter().enumerate() {
            // The embedded files are checked by the unit tests; a failure here is a build defect.
            cal.add_year_toml(&format!("national[{i}]"), text)
                .unwrap_or_else(|e| panic!("embedded national calendar is invalid: {e}"));
        }
        cal
    }

    /// The national calendar from the embedded notices of the years up to `last` only (None:
    /// all of them): a drill or a test plays a time when the later notices were not yet
    /// published, whichever years this build carries.
    pub fn national_through(last: Option<i32>) -> Self {
        let mut cal = Calendar::default();
        for (i, text) in NATIONAL_YEARS.iter().enumerate() {
            let mut one = Calendar::default();
            one.add_year_toml(&format!("national[{i}]"), text)
                .unwrap_or_else(|e| panic!("embedded national calendar is invalid: {e}"));
            if last.is_none_or(|l| one.covered.iter().all(|y| *y <= l)) {
                cal.off.extend(one.off);
                cal.on.extend(one.on);
                cal.covered.extend(one.covered);
            }
        }
        cal
    }

    /// Adds one year file (the national format) to this calendar.
    pub fn add_year_toml(&mut self, file: &str, text: &str) -> Result<(), CalendarError> {
        let y: YearFile = toml::from_str(text).map_err(|e| CalendarError::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        let mut off = BTreeSet::new();
        expand(file, &y.holidays, &mut off)?;
        for w in &y.workdays {
            self.on.insert(parse_date(file, "workdays", w)?);
        }
        self.off.extend(off);
        self.covered.insert(y.year);
        Ok(())
    }

    /// A statutory holiday or a local closure (not merely a weekend).
    pub fn is_holiday(&self, d: NaiveDate) -> bool {
        self.off.contains(&d)
    }

    /// Applies a regional overlay (local closures, extra workdays).
    fn apply_overlay(&mut self, overlay: &Overlay) {
        for d in &overlay.off {
            self.on.remove(d);
            self.off.insert(*d);
        }
        for d in &overlay.on {
            self.off.remove(d);
            self.on.insert(*d);
        }
    }

    /// Replaces everything known about `year` with a national notice of that year.
    fn replace_year(&mut self, year: i32, notice: &Notice) {
        self.off.retain(|d| d.year() != year);
        self.on.retain(|d| d.year() != year);
        self.off.extend(notice.off.iter().copied());
        self.on.extend(notice.on.iter().copied());
        self.covered.insert(year);
    }

    /// Whether the year is backed by an official notice (otherwise Monday–Friday is assumed).
    pub fn covers(&self, year: i32) -> bool {
        self.covered.contains(&year)
    }

    /// Whether every day from `from` to `to` lies in covered years: a deadline computed over an
    /// uncovered year used the Monday–Friday fallback and is provisional.
    pub fn covers_span(&self, from: NaiveDate, to: NaiveDate) -> bool {
        let (a, b) = (from.min(to).year(), from.max(to).year());
        (a..=b).all(|y| self.covers(y))
    }

    /// The last day of the covered years that run on without a gap from the earliest one
    /// through `today`'s year; None when `today`'s year itself is not covered.
    pub fn covered_through(&self, today: NaiveDate) -> Option<NaiveDate> {
        let mut year = today.year();
        if !self.covers(year) {
            return None;
        }
        while self.covers(year + 1) {
            year += 1;
        }
        NaiveDate::from_ymd_opt(year, 12, 31)
    }

    /// Days of coverage left after `today` (0 when today's year is not covered).
    pub fn coverage_days_left(&self, today: NaiveDate) -> i64 {
        self.covered_through(today)
            .map(|end| (end - today).num_days())
            .unwrap_or(0)
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.off.contains(&d) {
            return false;
        }
        if self.on.contains(&d) {
            return true;
        }
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The N-th working day strictly after `start`; `start` itself when N is 0.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> NaiveDate {
        let mut d = start;
        let mut left = n;
        while left > 0 {
            d += Duration::days(1);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Number of working days in the half-open interval (`from`, `to`]; 0 when `to <= from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0;
        let mut d = from;
        while d < to {
            d += Duration::days(1);
            if self.is_working_day(d) {
                n += 1;
            }
        }
        n
    }

    /// The first working day on or after `d`.
    pub fn next_working_day_from(&self, d: NaiveDate) -> NaiveDate {
        let mut d = d;
        while !self.is_working_day(d) {
            d += Duration::days(1);
        }
        d
    }
}

/// Calendars for every region: the national one with provincial, city and county overlays.
#[derive(Debug, Clone)]
pub struct Calendars {
    national: Calendar,
    /// Region code → its overlay (closures and extra workdays).
    overlays: BTreeMap<String, Overlay>,
    /// The notices loaded at run time over the embedded data, in load order.
    notices: Vec<Notice>,
}

/// A region's closures and extra workdays, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Overlay {
    off: BTreeSet<NaiveDate>,
    on: BTreeSet<NaiveDate>,
}

impl Calendars {
    /// The national calendar with no regional overlay.
    pub fn national_only() -> Self {
        Self::national_through(None)
    }

    /// As [`Calendars::national_only`], with the embedded notices up to `last` only.
    pub fn national_through(last: Option<i32>) -> Self {
        Calendars {
            national: Calendar::national_through(last),
            overlays: BTreeMap::new(),
            notices: Vec::new(),
        }
    }

    /// These calendars with `notices` applied in order over them: a national notice replaces
    /// its year, a region's notice replaces that region's overlay.
    pub fn with_notices(&self, notices: &[Notice]) -> Self {
        let mut me = self.clone();
        for n in notices {
            match &n.scope {
                Scope::National { year } => me.national.replace_year(*year, n),
                Scope::Region { code } => {
                    me.overlays.insert(
                        code.clone(),
                        Overlay {
                            off: n.off.clone(),
                            on: n.on.clone(),
                        },
                    );
                }
            }
            me.notices.push(n.clone());
        }
        me
    }

    /// The notices loaded at run time, in load order.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// The region codes that have an overlay.
    pub fn regions(&self) -> impl Iterator<Item = &str> {
        self.overlays.keys().map(String::as_str)
    }

    /// The national calendar plus every `<region code>.toml` overlay found in `dir`.
    pub fn load(dir: &Path) -> Result<Self, CalendarError> {
        let mut me = Self::national_only();
        let io = |e: std::io::Error| CalendarError::Io {
            dir: dir.display().to_string(),
            message: e.to_string(),
        };
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(io)?;
            let overlay: OverlayFile = toml::from_str(&text).map_err(|e| CalendarError::Parse {
                file: file.clone(),
                message: e.to_string(),
            })?;
            if overlay.region_code != stem || !is_region_code(stem) {
                return Err(CalendarError::Parse {
                    file,
                    message: format!(
                        "region_code {:?} must be 6 digits and match the file name",
                        overlay.region_code
                    ),
                });
            }
            // Validate now so a bad file fails at start, not at the first deadline.
            let mut o = Overlay::default();
            expand(&file, &overlay.closures, &mut o.off)?;
            for w in &overlay.workdays {
                o.on.insert(parse_date(&file, "workdays", w)?);
            }
            me.overlays.insert(stem.to_string(), o);
        }
        Ok(me)
    }

    /// The calendar in force in `region`: national, then province, city and county overlays.
    pub fn for_region(&self, region: &str) -> Calendar {
        let mut cal = self.national.clone();
        if !is_region_code(region) {
            return cal;
        }
        let chain = [
            format!("{}0000", &region[..2]),
            format!("{}00", &region[..4]),
            region.to_string(),
        ];
        let mut seen = BTreeSet::new();
        for code in chain {
            if !seen.insert(code.clone()) {
                continue;
            }
            if let Some(o) = self.overlays.get(&code) {
                cal.apply_overlay(o);
            }
        }
        cal
    }
}

fn is_region_code(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped year files are valid notices (version and source), like one loaded at run
    /// time; the next year's drill template is one, and marked fabricated; the regions README's
    /// example overlay is one.
    #[test]
    fn shipped_calendar_files_are_valid_notices() {
        for text in NATIONAL_YEARS {
            let n = Notice::parse(text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
            assert!(!n.fabricated && !n.version.is_empty());
        }
        let drill = Notice::parse(include_str!("../data/drill/2027.toml")).unwrap();
        assert_eq!(
            (drill.scope.key(), drill.fabricated),
            ("national:2027".to_string(), true)
        );
        let readme = include_str!("../data/regions/README.md");
        let example = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|t| t.split("```").next())
            .unwrap();
        let overlay = Notice::parse(example).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(overlay.scope.key(), "region:410702");
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn national_covers_2025_and_2026() {
        let cal = Calendar::national();
        assert!(cal.covers(2025) && cal.covers(2026));
        assert!(!cal.covers(2027));
    }

    #[test]
    fn make_up_workday_and_holidays_2026() {
        let cal = Calendar::national();
        assert!(
            cal.is_working_day(d("2026-09-20")),
            "Sunday 20 Sep 2026 is a make-up workday"
        );
        assert!(
            cal.is_working_day(d("2026-10-10")),
            "Saturday 10 Oct 2026 is a make-up workday"
        );
        assert!(!cal.is_working_day(d("2026-09-25")), "Mid-Autumn");
        assert!(!cal.is_working_day(d("2026-10-07")), "National Day");
        assert!(!cal.is_working_day(d("2026-02-16")), "Spring Festival");
        assert!(cal.is_working_day(d("2026-02-14")));
        assert!(
            !cal.is_working_day(d("2025-10-08")),
            "2025 National Day runs to the 8th"
        );
        assert!(cal.is_working_day(d("2025-09-28")));
    }

    /// Every 2026 holiday day and make-up workday of 国务院办公厅 2025-11-04, written out.
    #[test]
    fn every_2026_holiday_range_and_make_up_workday_is_pinned() {
        let cal = Calendar::national();
        let ranges = [
            ("2026-01-01", 3),
            ("2026-02-15", 9),
            ("2026-04-04", 3),
            ("2026-05-01", 5),
            ("2026-06-19", 3),
            ("2026-09-25", 3),
            ("2026-10-01", 7),
        ];
        let mut off = 0;
        for (from, days) in ranges {
            let from = d(from);
            for i in 0..days {
                let day = from + Duration::days(i);
                assert!(
                    cal.is_holiday(day) && !cal.is_working_day(day),
                    "{day} is a holiday"
                );
                off += 1;
            }
            assert!(
                !cal.is_holiday(from - Duration::days(1)),
                "the day before {from}"
            );
            assert!(
                !cal.is_holiday(from + Duration::days(days)),
                "the day after {from}+{days}"
            );
        }
        assert_eq!(off, 33);
        let holidays_in_2026 = (0..365)
            .map(|i| d("2026-01-01") + Duration::days(i))
            .filter(|&x| cal.is_holiday(x))
            .count();
        assert_eq!(holidays_in_2026, 33, "no holiday outside the seven ranges");
        for w in [
            "2026-01-04",
            "2026-02-14",
            "2026-02-28",
            "2026-05-09",
            "2026-09-20",
            "2026-10-10",
        ] {
            assert!(cal.is_working_day(d(w)), "{w} is a make-up workday");
        }
        let weekend_workdays = (0..365)
            .map(|i| d("2026-01-01") + Duration::days(i))
            .filter(|x| {
                matches!(x.weekday(), Weekday::Sat | Weekday::Sun) && cal.is_working_day(*x)
            })
            .count();
        assert_eq!(weekend_workdays, 6, "no make-up workday beyond the six");
        // 2026: 365 days, 104 weekend days, 33 holiday days of which 14 fall on a weekend
        // (1-3 Jan: Sat; 15-23 Feb: 15, 21, 22; 4-5 Apr; 2-3 May; 20-21 Jun; 26-27 Sep; 3-4 Oct),
        // 6 make-up days: 365 - 104 - (33 - 14) + 6 = 248 working days.
        assert_eq!(
            cal.working_days_between(d("2025-12-31"), d("2026-12-31")),
            248
        );
    }

    /// Through 2025: the 2026 notice left out (1 Oct 2026 a Thursday like any), 2025's kept.
    #[test]
    fn a_calendar_through_a_year_leaves_the_later_notices_out() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let through = Calendar::national_through(Some(2025));
        assert!(through.covers(2025) && !through.covers(2026));
        assert!(
            through.is_working_day(d("2026-10-01")),
            "the 2026 notice is not published here"
        );
        assert!(
            !through.is_working_day(d("2025-10-01")),
            "2025's National Day holds"
        );
        assert!(!Calendar::national().is_working_day(d("2026-10-01")));
        assert_eq!(Calendar::national_through(None), Calendar::national());
    }

    #[test]
    fn coverage_ends_with_the_last_covered_year() {
        let cal = Calendar::national();
        assert_eq!(cal.covered_through(d("2026-12-01")), Some(d("2026-12-31")));
        assert_eq!(cal.coverage_days_left(d("2026-12-01")), 30);
        assert_eq!(cal.covered_through(d("2027-01-04")), None);
        assert_eq!(cal.coverage_days_left(d("2027-01-04")), 0);
        assert!(cal.covers_span(d("2025-03-01"), d("2026-12-31")));
        assert!(!cal.covers_span(d("2026-12-01"), d("2027-02-05")));
    }

    /// A fabricated 2027 notice (test data, not the State Council's): 元旦 1-3 Jan, 春节 6-14 Feb
    /// with a make-up Saturday on 20 Feb.
    const FABRICATED_2027: &str = "year = 2027\nversion = \"2027-test\"\nsource = \"fabricated for tests\"\n\
        fabricated = true\nholidays = [\n  { name = \"元旦\", from = \"2027-01-01\", to = \"2027-01-03\" },\n\
        { name = \"春节\", from = \"2027-02-06\", to = \"2027-02-14\" },\n]\nworkdays = [\"2027-02-20\"]\n";

    #[test]
    fn a_loaded_year_moves_a_deadline_and_ends_the_fallback() {
        let base = Calendars::national_only();
        let before = base.for_region("410702");
        // Mon–Fri fallback: from Tue 1 Dec 2026, 45 working days. December after the 1st has
        // 22 (2-4, 7-11, 14-18, 21-25, 28-31); January 2027 then gives 23 more by Mon 1 Feb
        // (1, 4-8, 11-15, 18-22, 25-29 = 21; 1 Feb = 22; 2 Feb = 23).
        assert_eq!(
            before.add_working_days(d("2026-12-01"), 45),
            d("2027-02-02")
        );
        let notice = Notice::parse(FABRICATED_2027).unwrap();
        let after = base.with_notices(&[notice]).for_region("410702");
        assert!(after.covers(2027));
        // 1 Jan off: one day later, Wed 3 Feb.
        assert_eq!(after.add_working_days(d("2026-12-01"), 45), d("2027-02-03"));
        assert!(after.covers_span(d("2026-12-01"), d("2027-02-03")));
        assert!(!after.is_working_day(d("2027-02-08")) && after.is_working_day(d("2027-02-20")));
        assert_eq!(
            after.covered_through(d("2026-12-01")),
            Some(d("2027-12-31"))
        );
    }

    #[test]
    fn a_region_notice_replaces_that_regions_overlay_only() {
        let typhoon = "region_code = \"410702\"\nversion = \"1\"\nsource = \"台风停班\"\n\
            closures = [{ name = \"台风\", from = \"2026-12-03\", to = \"2026-12-03\" }]\n";
        let cals = Calendars::national_only().with_notices(&[Notice::parse(typhoon).unwrap()]);
        assert!(!cals.for_region("410702").is_working_day(d("2026-12-03")));
        assert!(cals.for_region("410703").is_working_day(d("2026-12-03")));
        let lifted = typhoon
            .replace("version = \"1\"", "version = \"2\"")
            .replace(
                "2026-12-03\", to = \"2026-12-03",
                "2026-12-04\", to = \"2026-12-04",
            );
        let cals = cals.with_notices(&[Notice::parse(&lifted).unwrap()]);
        assert!(cals.for_region("410702").is_working_day(d("2026-12-03")));
        assert!(!cals.for_region("410702").is_working_day(d("2026-12-04")));
        assert_eq!(cals.notices().len(), 2);
    }

    #[test]
    fn deadlines_of_the_issue() {
        let cal = Calendar::national();
        // Friday 18 Sep 2026 + 5 working days: 20 (Sun, make-up), 21, 22, 23, 24.
        assert_eq!(cal.add_working_days(d("2026-09-18"), 5), d("2026-09-24"));
        // Thursday 24 Sep + 5: 28, 29, 30, 8 Oct, 9 Oct.
        assert_eq!(cal.add_working_days(d("2026-09-24"), 5), d("2026-10-09"));
        assert_eq!(
            cal.working_days_between(d("2026-09-24"), d("2026-10-09")),
            5
        );
    }

    #[test]
    fn twenty_day_limit_over_spring_festival() {
        let cal = Calendar::national();
        // From Mon 9 Feb 2026: 10,11,12,13,14(Sat make-up) = 5; 15-23 off; 24,25,26,27,28(Sat) = 10;
        // Mar 2..6 = 15; Mar 9..13 = 20.
        assert_eq!(cal.add_working_days(d("2026-02-09"), 20), d("2026-03-13"));
    }

    #[test]
    fn overlay_closures_apply_to_county_and_inherit_city() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("410700.toml"),
            "region_code = \"410700\"\nsource = \"city\"\nclosures = [{ name = \"闭厅\", from = \"2026-07-20\", to = \"2026-07-20\" }]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("410702.toml"),
            "region_code = \"410702\"\nsource = \"county\"\nclosures = [{ name = \"防汛\", from = \"2026-07-21\", to = \"2026-07-21\" }]\nworkdays = [\"2026-07-25\"]\n",
        )
        .unwrap();
        let cals = Calendars::load(dir.path()).unwrap();
        let county = cals.for_region("410702");
        assert!(!county.is_working_day(d("2026-07-20")));
        assert!(!county.is_working_day(d("2026-07-21")));
        assert!(county.is_working_day(d("2026-07-25")));
        let other = cals.for_region("410703");
        assert!(!other.is_working_day(d("2026-07-20")));
        assert!(other.is_working_day(d("2026-07-21")));
        let elsewhere = cals.for_region("110101");
        assert!(elsewhere.is_working_day(d("2026-07-20")));
    }

    #[test]
    fn bad_overlay_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("410702.toml"),
            "region_code = \"410702\"\nsource = \"x\"\nclosures = [{ name = \"x\", from = \"2026-07-22\", to = \"2026-07-21\" }]\n",
        )
        .unwrap();
        let err = Calendars::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("410702.toml") && err.contains("ends before"),
            "{err}"
        );

        std::fs::write(
            dir.path().join("410702.toml"),
            "region_code = \"410702\"\nsource = \"x\"\nunknown = 1\n",
        )
        .unwrap();
        let err = Calendars::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}
