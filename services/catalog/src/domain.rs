//! Pure rules of the catalog: what a valid department is.

use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{AppResult, Violations};

/// A department as a caller asked to create it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDepartment {
    pub region: RegionCode,
    pub code: String,
    pub display_name: String,
}

impl NewDepartment {
    /// Validates every field at once; `prefix` is the request field path (`department.`).
    pub fn parse(region_code: &str, code: &str, display_name: &str, prefix: &str) -> AppResult<Self> {
        let mut v = Violations::new();
        let region = RegionCode::parse_field(region_code, &format!("{prefix}region_code"), &mut v);
        let code = code.trim();
        v.text(code, &format!("{prefix}code"), 64);
        v.check(
            code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            &format!("{prefix}code"),
            "may hold only letters, digits, - and _",
        );
        v.text(display_name, &format!("{prefix}display_name"), 100);
        v.into_result()?;
        Ok(NewDepartment {
            region: region.expect("checked by the violations above"),
            code: code.to_string(),
            display_name: display_name.trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xiaoneng_kit::AppError;

    #[test]
    fn valid_department() {
        let d = NewDepartment::parse("410702", "SCJGJ", " 县市场监督管理局 ", "department.").unwrap();
        assert_eq!(d.display_name, "县市场监督管理局");
        assert_eq!(d.region.as_str(), "410702");
    }

    #[test]
    fn every_bad_field_is_reported() {
        let err = NewDepartment::parse("41", "bad code!", "", "department.").unwrap_err();
        let AppError::InvalidArgument(v) = err else { panic!("expected invalid argument") };
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["department.region_code", "department.code", "department.display_name"]);
    }
}
