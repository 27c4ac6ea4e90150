//! The business clock: the time deadlines, timers and hall days run on. It is the real time,
//! optionally started at another moment (`business_time`) for drills, demos and tests that
//! must play out a given date — it then runs on at real speed from there.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

use crate::AppError;

/// China Standard Time (UTC+8, no daylight saving).
pub fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessClock {
    offset: chrono::Duration,
}

impl BusinessClock {
    /// The real time.
    pub fn real() -> Self {
        BusinessClock {
            offset: chrono::Duration::zero(),
        }
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
            offset: at.with_timezone(&Utc) - Utc::now(),
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
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
}
