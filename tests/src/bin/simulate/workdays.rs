//! An independent working-day count, for checking the services' deadlines: written from the
//! State Council's notice for 2026 (国办发明电〔2025〕号, 2025-11-04) by hand, not read from the
//! calendar crate the services use. Outside 2026 only weekends are off (a provisional count).

use chrono::{Datelike, Duration, NaiveDate, Weekday};

const OFF_2026: [(&str, &str); 7] = [
    ("2026-01-01", "2026-01-03"),
    ("2026-02-15", "2026-02-23"),
    ("2026-04-04", "2026-04-06"),
    ("2026-05-01", "2026-05-05"),
    ("2026-06-19", "2026-06-21"),
    ("2026-09-25", "2026-09-27"),
    ("2026-10-01", "2026-10-07"),
];
const ON_2026: [&str; 6] = ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"];

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

pub fn is_working_day(day: NaiveDate) -> bool {
    if ON_2026.iter().any(|s| d(s) == day) {
        return true;
    }
    if OFF_2026.iter().any(|(a, b)| d(a) <= day && day <= d(b)) {
        return false;
    }
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The `n`-th working day after `from` (`from` itself does not count).
pub fn after(from: NaiveDate, n: u32) -> NaiveDate {
    let (mut day, mut left) = (from, n);
    while left > 0 {
        day += Duration::days(1);
        if is_working_day(day) {
            left -= 1;
        }
    }
    day
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_across_the_mid_autumn_and_national_day_holidays() {
        // Thu 24 Sep 2026 + 1: Fri 25 is 中秋节, the weekend too → Mon 28 Sep.
        assert_eq!(after(d("2026-09-24"), 1), d("2026-09-28"));
        // + 3: 28, 29, 30 → Wed 30 Sep; + 4: 1–7 Oct off → Thu 8 Oct.
        assert_eq!(after(d("2026-09-24"), 3), d("2026-09-30"));
        assert_eq!(after(d("2026-09-24"), 4), d("2026-10-08"));
        // Sun 20 Sep is a make-up working day.
        assert_eq!(after(d("2026-09-18"), 1), d("2026-09-20"));
        assert!(is_working_day(d("2026-10-10")));
    }
}
