//! AIP-158 pagination: `page_size` (0 → default, capped at max) and opaque page tokens that
//! carry a keyset cursor chosen by the service (e.g. the last row's sort key).

use base64::Engine;

use crate::error::{AppError, Violations};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows to return; fetch one more to know whether a next page exists.
    pub size: i64,
    /// The cursor of the last row of the previous page.
    pub after: Option<String>,
}

impl PageRequest {
    pub fn parse(page_size: i32, page_token: &str) -> Result<Self, AppError> {
        let mut v = Violations::new();
        v.check(page_size >= 0, "page_size", "must not be negative");
        let after = if page_token.is_empty() {
            None
        } else {
            match decode(page_token) {
                Some(c) => Some(c),
                None => {
                    v.add("page_token", "is not a token this service issued");
                    None
                }
            }
        };
        v.into_result()?;
        let size = if page_size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            i64::from(page_size).min(MAX_PAGE_SIZE)
        };
        Ok(PageRequest { size, after })
    }

    /// Given `size + 1` fetched rows, trims to `size` and returns the next page token.
    pub fn finish<T>(&self, mut rows: Vec<T>, cursor: impl Fn(&T) -> String) -> (Vec<T>, String) {
        if rows.len() as i64 > self.size {
            rows.truncate(self.size as usize);
            let token = rows.last().map(|r| encode(&cursor(r))).unwrap_or_default();
            (rows, token)
        } else {
            (rows, String::new())
        }
    }
}

const PREFIX: &str = "xn1:";

/// The page token for a cursor (for services that page by something else than a row key).
pub fn token_for(cursor: &str) -> String {
    encode(cursor)
}

fn encode(cursor: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{PREFIX}{cursor}"))
}

fn decode(token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let s = String::from_utf8(bytes).ok()?;
    s.strip_prefix(PREFIX).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let p = PageRequest::parse(2, "").unwrap();
        let (rows, token) = p.finish(vec![1, 2, 3], |r| r.to_string());
        assert_eq!(rows, [1, 2]);
        let next = PageRequest::parse(2, &token).unwrap();
        assert_eq!(next.after.as_deref(), Some("2"));
        let (rows, token) = next.finish(vec![3], |r| r.to_string());
        assert_eq!((rows, token.as_str()), (vec![3], ""));
        assert_eq!(PageRequest::parse(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(PageRequest::parse(5000, "").unwrap().size, MAX_PAGE_SIZE);
        assert!(PageRequest::parse(-1, "").is_err());
        assert!(PageRequest::parse(10, "garbage!").is_err());
    }
}
