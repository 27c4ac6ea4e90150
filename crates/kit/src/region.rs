//! Administrative regions (行政区划, GB/T 2260): `41xxxx` province, `4107xx` city,
//! `410702` county. A caller sees the records of its own region and of every region below it.

use std::fmt;

use crate::error::{AppError, Violations};

/// A validated 6-digit region code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionLevel {
    Province,
    City,
    County,
}

impl RegionCode {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is not a 6-digit region code"));
        }
        if &s[..2] == "00" {
            return Err(format!("{s:?} names no province"));
        }
        Ok(RegionCode(s.to_string()))
    }

    /// Parses a request field, recording a field violation when it is bad.
    pub fn parse_field(s: &str, field: &str, v: &mut Violations) -> Option<Self> {
        match Self::parse(s) {
            Ok(r) => Some(r),
            Err(e) => {
                v.add(field, e);
                None
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn level(&self) -> RegionLevel {
        if &self.0[2..] == "0000" {
            RegionLevel::Province
        } else if &self.0[4..] == "00" {
            RegionLevel::City
        } else {
            RegionLevel::County
        }
    }

    /// The prefix every code inside this region starts with.
    pub fn prefix(&self) -> &str {
        match self.level() {
            RegionLevel::Province => &self.0[..2],
            RegionLevel::City => &self.0[..4],
            RegionLevel::County => &self.0,
        }
    }

    /// Whether `other` is this region or lies inside it.
    pub fn contains(&self, other: &RegionCode) -> bool {
        other.0.starts_with(self.prefix())
    }

    /// A SQL `LIKE` pattern matching every code inside this region.
    pub fn like_pattern(&self) -> String {
        format!("{}%", self.prefix())
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The region a query runs over: the caller's own scope, or a narrower one it asked for.
/// Asking for a region outside the caller's scope is `PERMISSION_DENIED`.
pub fn narrow(scope: &RegionCode, requested: &str, field: &str) -> Result<RegionCode, AppError> {
    if requested.is_empty() {
        return Ok(scope.clone());
    }
    let wanted = RegionCode::parse(requested).map_err(|e| AppError::invalid(field, e))?;
    if !scope.contains(&wanted) {
        return Err(AppError::PermissionDenied(format!(
            "region {wanted} is outside the caller's region {scope}"
        )));
    }
    Ok(wanted)
}

/// The region filter of a public read (no caller): the requested region and everything
/// inside it, or every region when none is asked for — as a SQL `LIKE` pattern.
pub fn public_filter(requested: &str, field: &str) -> Result<String, AppError> {
    if requested.is_empty() {
        return Ok("%".to_string());
    }
    Ok(RegionCode::parse(requested)
        .map_err(|e| AppError::invalid(field, e))?
        .like_pattern())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    #[test]
    fn levels_and_containment() {
        assert_eq!(r("410000").level(), RegionLevel::Province);
        assert_eq!(r("410700").level(), RegionLevel::City);
        assert_eq!(r("410702").level(), RegionLevel::County);
        assert!(r("410700").contains(&r("410702")));
        assert!(r("410000").contains(&r("410702")));
        assert!(!r("410702").contains(&r("410703")));
        assert!(!r("410702").contains(&r("410700")));
        assert!(!r("410700").contains(&r("410802")));
        assert_eq!(r("410700").like_pattern(), "4107%");
    }

    #[test]
    fn bad_codes() {
        assert!(RegionCode::parse("4107").is_err());
        assert!(RegionCode::parse("41070a").is_err());
        assert!(RegionCode::parse("000000").is_err());
    }

    #[test]
    fn narrowing() {
        assert_eq!(
            narrow(&r("410700"), "", "region_code").unwrap(),
            r("410700")
        );
        assert_eq!(
            narrow(&r("410700"), "410702", "region_code").unwrap(),
            r("410702")
        );
        assert!(matches!(
            narrow(&r("410702"), "410703", "region_code"),
            Err(AppError::PermissionDenied(_))
        ));
        assert!(matches!(
            narrow(&r("410702"), "x", "region_code"),
            Err(AppError::InvalidArgument(_))
        ));
    }

    #[test]
    fn a_public_read_filters_by_the_asked_region_or_none() {
        assert_eq!(public_filter("", "region_code").unwrap(), "%");
        assert_eq!(public_filter("410700", "region_code").unwrap(), "4107%");
        assert!(public_filter("41x", "region_code").is_err());
    }
}
