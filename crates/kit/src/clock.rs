//! The business clock: the time deadlines, timers and hall days run on. It is the real time,
//! optionally started at another moment (`business_time`) for drills, demos and tests that
//! must play out a given date, and optionally faster (`business_clock_rate`: 60 makes a
//! real minute a business hour), so a simulated day's deadlines, reminders and escalations
//! fire during the run, in the order they would in real time.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

use crate::AppError;

/// China Standard Time (UTC+8, no daylight saving).
pub fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// How many times faster than real time the business clock runs (`domain.business_clock_rate`):
/// 1 by default, at least 1 and at most [`MAX_RATE`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ClockRate(pub f64);

impl Default for ClockRate {
    fn default() -> Self {
        ClockRate(1.0)
    }
}

/// The fastest a business clock may run: a year in about six minutes.
pub const MAX_RATE: f64 = 100_000.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BusinessClock {
    /// The real moment the clock was set, and the business moment it read then.
    real_origin: DateTime<Utc>,
    origin: DateTime<Utc>,
    rate: f64,
}

impl BusinessClock {
    /// The real time.
    pub fn real() -> Self {
        let now = Utc::now();
        BusinessClock {
            real_origin: now,
            origin: now,
            rate: 1.0,
        }
    }

    /// A clock that reads `start` now (empty: the real time) and runs `rate` times faster than
    /// real time. `field` names the start's setting in errors; a rate below 1, above
    /// [`MAX_RATE`] or not a number is `domain.business_clock_rate`'s error.
    pub fn new(start: &str, rate: ClockRate, field: &str) -> Result<Self, AppError> {
        let mut c = Self::starting_at(start, field)?;
        let r = rate.0;
        if !(r.is_finite() && (1.0..=MAX_RATE).contains(&r)) {
            return Err(AppError::invalid(
                "domain.business_clock_rate",
                format!("must be a number from 1 (real speed) to {MAX_RATE}, not {r}"),
            ));
        }
        c.rate = r;
        Ok(c)
    }

    /// How many times faster than real time it runs.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The business time at the real moment `real`.
    pub fn at(&self, real: DateTime<Utc>) -> DateTime<Utc> {
        if self.rate == 1.0 {
            return self.origin + (real - self.real_origin);
        }
        let elapsed = (real - self.real_origin)
            .num_microseconds()
            .unwrap_or(i64::MAX) as f64;
        self.origin + chrono::Duration::microseconds((elapsed * self.rate) as i64)
    }

    /// A clock that reads `start` now. Empty: the real time. `field` names the setting in errors.
    pub fn starting_at(start: &str, field: &str) -> Result<Self, AppError> {
        if start.trim().is_empty() {
            return Ok(Self::real());
        }
        let at = DateTime::parse_from_rfc3339(start.trim()).map_err(|e| {
            AppError::invalid(
                field,
                format!("must be an RFC 3339 time such as 2026-09-18T09:00:00+08:00 ({e})"),
            )
        })?;
        Ok(BusinessClock {
            real_origin: Utc::now(),
            origin: at.with_timezone(&Utc),
            rate: 1.0,
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.at(Utc::now())
    }

    /// The business date in China Standard Time.
    pub fn today(&self) -> NaiveDate {
        self.now().with_timezone(&cst()).date_naive()
    }

    /// The first moment of `date` in China Standard Time.
    pub fn start_of(date: NaiveDate) -> DateTime<Utc> {
        date.and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_local_timezone(cst())
            .single()
            .expect("fixed offset")
            .with_timezone(&Utc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_where_told_and_runs_on() {
        // Noon: the date holds however slowly the test runs (at 23:59:59 it would not).
        let c = BusinessClock::starting_at("2026-09-18T12:00:00+08:00", "x").unwrap();
        assert_eq!(c.today().to_string(), "2026-09-18");
        let d = c.now()
            - DateTime::parse_from_rfc3339("2026-09-18T12:00:00+08:00")
                .unwrap()
                .with_timezone(&Utc);
        assert!(d.num_milliseconds().abs() < 1000);
        assert!(BusinessClock::starting_at("18 Sep", "domain.business_time").is_err());
        assert_eq!(
            BusinessClock::start_of("2026-09-22".parse().unwrap()).to_rfc3339(),
            "2026-09-21T16:00:00+00:00"
        );
        let real = BusinessClock::starting_at("", "x").unwrap();
        assert!((real.now() - Utc::now()).num_milliseconds().abs() < 1000);
    }

    /// At 60× a real minute is a business hour, counted from where the clock was started; a
    /// rate below 1, above the maximum or not a number is refused naming the setting.
    #[test]
    fn a_faster_clock_runs_its_rate_times_real_time() {
        let c = BusinessClock::new("2026-09-18T09:00:00+08:00", ClockRate(60.0), "x").unwrap();
        assert_eq!(c.rate(), 60.0);
        let later = c.real_origin + chrono::Duration::minutes(1);
        assert_eq!(c.at(later).to_rfc3339(), "2026-09-18T02:00:00+00:00");
        let day = c.real_origin + chrono::Duration::seconds(24 * 60);
        assert_eq!(
            c.at(day).with_timezone(&cst()).to_rfc3339(),
            "2026-09-19T09:00:00+08:00"
        );
        let default = BusinessClock::new("", ClockRate::default(), "x").unwrap();
        assert!((default.now() - Utc::now()).num_milliseconds().abs() < 1000);
        for bad in [0.0, 0.5, -60.0, f64::NAN, f64::INFINITY, MAX_RATE * 2.0] {
            match BusinessClock::new("", ClockRate(bad), "x").unwrap_err() {
                AppError::InvalidArgument(v) => {
                    assert_eq!(v[0].field, "domain.business_clock_rate")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
