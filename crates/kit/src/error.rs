//! One mapping from domain errors to gRPC: each [`AppError`] becomes a `tonic::Status` with
//! `google.rpc.ErrorInfo` (a stable reason) and, for bad input, `google.rpc.BadRequest`
//! field violations (AIP-193). Database errors are mapped by SQLSTATE.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every Xiaoneng error.
pub const ERROR_DOMAIN: &str = "xiaoneng.gov";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{resource} {id:?} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// An illegal transition or a rule the current state forbids; `reason` is stable.
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A concurrent change won; the caller may retry.
    #[error("aborted: {0}")]
    Aborted(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn describe(v: &[FieldViolation]) -> String {
    v.iter()
        .map(|f| format!("{}: {}", f.field, f.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl AppError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        AppError::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        AppError::NotFound {
            resource,
            id: id.into(),
        }
    }

    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        AppError::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }

    fn code_and_reason(&self) -> (Code, &'static str) {
        match self {
            AppError::InvalidArgument(_) => (Code::InvalidArgument, "INVALID_ARGUMENT"),
            AppError::NotFound { .. } => (Code::NotFound, "NOT_FOUND"),
            AppError::AlreadyExists(_) => (Code::AlreadyExists, "ALREADY_EXISTS"),
            AppError::FailedPrecondition { reason, .. } => (Code::FailedPrecondition, reason),
            AppError::PermissionDenied(_) => (Code::PermissionDenied, "PERMISSION_DENIED"),
            AppError::Unauthenticated(_) => (Code::Unauthenticated, "UNAUTHENTICATED"),
            AppError::Aborted(_) => (Code::Aborted, "CONCURRENT_MODIFICATION"),
            AppError::Unavailable(_) => (Code::Unavailable, "UNAVAILABLE"),
            AppError::Internal(_) => (Code::Internal, "INTERNAL"),
        }
    }
}

impl From<AppError> for Status {
    fn from(err: AppError) -> Status {
        let (code, reason) = err.code_and_reason();
        let mut metadata = HashMap::new();
        let message = match &err {
            AppError::Internal(e) => {
                // The cause stays in the log; the caller gets no internals.
                tracing::error!(error = ?e, "internal error");
                "internal error".to_string()
            }
            AppError::NotFound { resource, id } => {
                metadata.insert("resource".to_string(), resource.to_string());
                metadata.insert("id".to_string(), id.clone());
                err.to_string()
            }
            _ => err.to_string(),
        };
        let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
        if let AppError::InvalidArgument(violations) = &err {
            for v in violations {
                details.add_bad_request_violation(v.field.clone(), v.description.clone());
            }
        }
        Status::with_error_details(code, message, details)
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => AppError::not_found("record", ""),
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                AppError::Unavailable("database unavailable".into())
            }
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().unwrap_or("").to_string();
                match db.code().as_deref() {
                    Some("23505") => AppError::AlreadyExists(if constraint.is_empty() {
                        db.message().to_string()
                    } else {
                        format!("a record with the same key exists ({constraint})")
                    }),
                    Some("23503") => AppError::precondition(
                        "REFERENCE_MISSING",
                        format!("a referenced record does not exist ({constraint})"),
                    ),
                    Some("23502") | Some("23514") => AppError::invalid(
                        constraint.clone(),
                        format!("violates {constraint}: {}", db.message()),
                    ),
                    Some("40001") | Some("40P01") | Some("55P03") => {
                        AppError::Aborted("a concurrent change won; retry".into())
                    }
                    Some(c) if c.starts_with("22") => {
                        AppError::invalid("", db.message().to_string())
                    }
                    _ => AppError::Internal(anyhow::Error::new(e)),
                }
            }
            _ => AppError::Internal(anyhow::Error::new(e)),
        }
    }
}

/// Collects field violations so a caller learns every bad field at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records a violation when `ok` is false.
    pub fn check(&mut self, ok: bool, field: &str, description: &str) {
        if !ok {
            self.add(field, description);
        }
    }

    /// Requires a non-blank string of at most `max` characters.
    pub fn text(&mut self, value: &str, field: &str, max: usize) {
        if value.trim().is_empty() {
            self.add(field, "is required");
        } else if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> AppResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::InvalidArgument(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations() {
        let mut v = Violations::new();
        v.text("", "department.display_name", 10);
        v.check(false, "department.code", "must be set");
        let status: Status = v.into_result().unwrap_err().into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let br = details.bad_request().expect("bad request details");
        let fields: Vec<_> = br
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["department.display_name", "department.code"]);
        assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");
        assert_eq!(details.error_info().unwrap().domain, ERROR_DOMAIN);
    }

    #[test]
    fn precondition_keeps_its_reason_and_internal_hides_its_cause() {
        let s: Status =
            AppError::precondition("CASE_NOT_ACCEPTED", "the case is not accepted").into();
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(
            s.get_error_details().error_info().unwrap().reason,
            "CASE_NOT_ACCEPTED"
        );
        let s: Status = AppError::Internal(anyhow::anyhow!("password=hunter2")).into();
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("hunter2"));
    }
}
