//! A small driver for the case tests: one macro sends a transition for a case at its current
//! version and, on success, replaces the case with the answer; connections by role.
#![allow(unused_macros, unused_imports, dead_code)]

use xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient;
use xiaoneng_e2e::{channel, token, ServiceProc};

use super::Cases;

/// `act!(client, k, method, Request { field: value, .. })` sends `method` for case `k` (a
/// `mut` binding) at `k.version` with the fields given; on success `k` is the answer.
/// Evaluates to `Result<(), tonic::Status>`.
macro_rules! act {
    ($c:expr, $k:ident, $method:ident, $req:ident { $($f:ident : $v:expr),* $(,)? }) => {{
        #[allow(clippy::needless_update)]
        let req = xiaoneng_e2e::proto::case::v1::$req {
            id: $k.id.clone(),
            expected_version: $k.version,
            $($f: $v,)*
            ..Default::default()
        };
        $c.$method(req).await.map(|r| {
            $k = r.into_inner().case.expect("case");
        })
    }};
}
pub(crate) use act;

/// A client of `case` for `who` with `roles` in 410702.
pub async fn as_(case: &ServiceProc, who: &str, roles: &[&str]) -> Cases {
    as_in(case, who, roles, "410702").await
}

pub async fn as_in(case: &ServiceProc, who: &str, roles: &[&str], region: &str) -> Cases {
    CaseServiceClient::new(channel(&case.addr(), Some(&token(who, roles, region))).await)
}

/// Names as strings, for material lists.
pub fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
