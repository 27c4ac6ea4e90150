//! The legal clock: a limit in working days, paused and extended under the rules of
//! 行政许可法 art. 42 (+10 days once, with approval), art. 45 (time for hearings, testing,
//! expert review and corrections does not count).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::Calendar;

/// One stop of the clock: from `from` until it resumed on `until` (still stopped when `None`).
/// The working days in (`from`, `until`] do not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub from: NaiveDate,
    pub until: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("the clock is already paused since {0}")]
    AlreadyPaused(NaiveDate),
    #[error("the clock is not paused")]
    NotPaused,
    #[error("{on} is before {earliest}, the earliest date this change can take")]
    BeforeEarliest { on: NaiveDate, earliest: NaiveDate },
    #[error("the limit was already extended by {0} working days; an extension happens once")]
    AlreadyExtended(u32),
    #[error("an extension must add at least one working day")]
    EmptyExtension,
}

/// A limit counted in working days from `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub start: NaiveDate,
    pub limit: u32,
    pub extension: u32,
    pub pauses: Vec<Pause>,
}

impl Clock {
    pub fn new(start: NaiveDate, limit: u32) -> Self {
        Clock {
            start,
            limit,
            extension: 0,
            pauses: Vec::new(),
        }
    }

    pub fn is_paused(&self) -> bool {
        self.pauses.last().is_some_and(|p| p.until.is_none())
    }

    /// The earliest date a pause or resume may carry: the clock never runs backwards.
    fn earliest(&self) -> NaiveDate {
        match self.pauses.last() {
            Some(Pause { until: Some(u), .. }) => *u,
            Some(Pause { from, until: None }) => *from,
            None => self.start,
        }
    }

    pub fn pause(&mut self, on: NaiveDate) -> Result<(), ClockError> {
        if let Some(Pause { from, until: None }) = self.pauses.last() {
            return Err(ClockError::AlreadyPaused(*from));
        }
        let earliest = self.earliest();
        if on < earliest {
            return Err(ClockError::BeforeEarliest { on, earliest });
        }
        self.pauses.push(Pause {
            from: on,
            until: None,
        });
        Ok(())
    }

    pub fn resume(&mut self, on: NaiveDate) -> Result<(), ClockError> {
        let earliest = self.earliest();
        match self.pauses.last_mut() {
            Some(p) if p.until.is_none() => {
                if on < earliest {
                    return Err(ClockError::BeforeEarliest { on, earliest });
                }
                p.until = Some(on);
                Ok(())
            }
            _ => Err(ClockError::NotPaused),
        }
    }

    /// Extends the limit once (art. 42: +10 working days; joint handling +15).
    pub fn extend(&mut self, days: u32) -> Result<(), ClockError> {
        if self.extension > 0 {
            return Err(ClockError::AlreadyExtended(self.extension));
        }
        if days == 0 {
            return Err(ClockError::EmptyExtension);
        }
        self.extension = days;
        Ok(())
    }

    /// Working days the clock stood still up to `as_of` (an open pause counts until `as_of`).
    pub fn paused_working_days(&self, cal: &Calendar, as_of: NaiveDate) -> u32 {
        self.pauses
            .iter()
            .map(|p| {
                let end = p.until.map_or(as_of, |u| u.min(as_of));
                cal.working_days_between(p.from, end)
            })
            .sum()
    }

    /// The last day of the limit as known on `as_of`. While a pause is open the deadline
    /// moves on with every working day that passes.
    pub fn deadline(&self, cal: &Calendar, as_of: NaiveDate) -> NaiveDate {
        cal.add_working_days(
            self.start,
            self.limit + self.extension + self.paused_working_days(cal, as_of),
        )
    }

    /// Working days of the limit used up by `as_of`.
    pub fn elapsed(&self, cal: &Calendar, as_of: NaiveDate) -> u32 {
        cal.working_days_between(self.start, as_of)
            .saturating_sub(self.paused_working_days(cal, as_of))
    }

    /// Working days left on `as_of`; negative once overdue.
    pub fn remaining(&self, cal: &Calendar, as_of: NaiveDate) -> i64 {
        i64::from(self.limit + self.extension) - i64::from(self.elapsed(cal, as_of))
    }

    pub fn is_overdue(&self, cal: &Calendar, as_of: NaiveDate) -> bool {
        as_of > self.deadline(cal, as_of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn day_in_2025_2026() -> impl Strategy<Value = NaiveDate> {
        (0i64..700).prop_map(|o| d("2025-01-01") + Duration::days(o))
    }

    #[test]
    fn pause_of_three_working_days_moves_deadline_by_three() {
        let cal = Calendar::national();
        let mut c = Clock::new(d("2026-09-18"), 5);
        assert_eq!(c.deadline(&cal, d("2026-09-18")), d("2026-09-24"));
        // Paused Monday 21st, resumed Thursday 24th: 22, 23, 24 do not count.
        c.pause(d("2026-09-21")).unwrap();
        c.resume(d("2026-09-24")).unwrap();
        assert_eq!(c.paused_working_days(&cal, d("2026-09-30")), 3);
        assert_eq!(
            c.deadline(&cal, d("2026-09-30")),
            cal.add_working_days(d("2026-09-24"), 3)
        );
        assert_eq!(c.deadline(&cal, d("2026-09-30")), d("2026-09-30"));
    }

    #[test]
    fn open_pause_keeps_moving_the_deadline() {
        let cal = Calendar::national();
        let mut c = Clock::new(d("2026-03-02"), 2);
        c.pause(d("2026-03-03")).unwrap();
        assert!(c.is_paused());
        assert!(!c.is_overdue(&cal, d("2026-03-20")));
        assert_eq!(c.elapsed(&cal, d("2026-03-20")), 1);
    }

    #[test]
    fn illegal_clock_changes_are_refused() {
        let mut c = Clock::new(d("2026-03-02"), 20);
        assert_eq!(c.resume(d("2026-03-03")), Err(ClockError::NotPaused));
        assert!(matches!(
            c.pause(d("2026-03-01")),
            Err(ClockError::BeforeEarliest { .. })
        ));
        c.pause(d("2026-03-03")).unwrap();
        assert!(matches!(
            c.pause(d("2026-03-04")),
            Err(ClockError::AlreadyPaused(_))
        ));
        assert!(matches!(
            c.resume(d("2026-03-02")),
            Err(ClockError::BeforeEarliest { .. })
        ));
        c.extend(10).unwrap();
        assert_eq!(c.extend(10), Err(ClockError::AlreadyExtended(10)));
    }

    #[test]
    fn extension_adds_working_days() {
        let cal = Calendar::national();
        let mut c = Clock::new(d("2026-09-18"), 5);
        c.extend(10).unwrap();
        assert_eq!(
            c.deadline(&cal, d("2026-09-18")),
            cal.add_working_days(d("2026-09-24"), 10)
        );
    }

    proptest! {
        #[test]
        fn adding_then_measuring_round_trips(start in day_in_2025_2026(), n in 0u32..80) {
            let cal = Calendar::national();
            let end = cal.add_working_days(start, n);
            prop_assert_eq!(cal.working_days_between(start, end), n);
            if n > 0 {
                prop_assert!(cal.is_working_day(end));
            }
        }

        #[test]
        fn pauses_never_shorten_and_move_by_their_working_days(
            start in day_in_2025_2026(), limit in 1u32..40, at in 0i64..60, len in 0i64..30
        ) {
            let cal = Calendar::national();
            let plain = Clock::new(start, limit);
            let mut paused = plain.clone();
            let p = start + Duration::days(at);
            let r = p + Duration::days(len);
            paused.pause(p).unwrap();
            paused.resume(r).unwrap();
            let as_of = r + Duration::days(400);
            let before = plain.deadline(&cal, as_of);
            let after = paused.deadline(&cal, as_of);
            prop_assert!(after >= before);
            let k = cal.working_days_between(p, r);
            prop_assert_eq!(after, cal.add_working_days(before, k));
            // Same as "the remaining days resume from r" when the pause began in time.
            let used = cal.working_days_between(start, p);
            if used < limit {
                prop_assert_eq!(after, cal.add_working_days(r, limit - used));
            }
        }

        #[test]
        fn elapsed_plus_remaining_is_the_limit(start in day_in_2025_2026(), limit in 1u32..40, at in 0i64..90) {
            let cal = Calendar::national();
            let c = Clock::new(start, limit);
            let as_of = start + Duration::days(at);
            prop_assert_eq!(i64::from(c.elapsed(&cal, as_of)) + c.remaining(&cal, as_of), i64::from(limit));
            // A weekend after the last day is overdue with nothing left; a working day past it is -1.
            if c.remaining(&cal, as_of) < 0 {
                prop_assert!(c.is_overdue(&cal, as_of));
            }
            if c.is_overdue(&cal, as_of) {
                prop_assert!(c.remaining(&cal, as_of) <= 0);
            }
        }
    }
}
