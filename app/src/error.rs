//! The one error type of the console.
//!
//! Every server function returns [`AppError`]. It crosses the wire as JSON, so its
//! variants carry only what a browser may see: a field and a message for bad input, a
//! reference id for internal failures (the detail goes to the log under that id).

use serde::{Deserialize, Serialize};
use server_fn_error::{FromServerFnError, ServerFnErrorErr};

/// Re-exported path so the rest of the crate names server_fn's error types in one place.
mod server_fn_error {
    pub use leptos::server_fn::codec::JsonEncoding;
    pub use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
}

/// What went wrong, in the terms a staff member can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppError {
    /// No valid staff session: sign in again.
    #[error("Sign in to continue.")]
    Unauthenticated,
    /// Sign-in refused: the same message whether the email is unknown or the password wrong.
    #[error("Email or password is incorrect.")]
    InvalidCredentials,
    /// Sign-in refused: the account is locked after repeated failures.
    #[error("This account is locked after repeated failed sign-ins. Try again after {until}.")]
    Locked {
        /// When the lock ends, as shown to the person (UTC).
        until: String,
    },
    /// Too many attempts from this address; try later.
    #[error("Too many attempts from your network. Try again in {retry_after_secs} seconds.")]
    TooManyAttempts {
        /// Seconds until attempts are accepted again.
        retry_after_secs: u64,
    },
    /// Signed in, but the role does not allow this.
    #[error("Your role does not allow this action.")]
    Forbidden,
    /// Signed in with a password someone else chose: nothing else is reachable until the
    /// person chooses their own.
    #[error("Choose a new password before you continue.")]
    PasswordChangeRequired,
    /// The second step of signing in found no first step: the password was checked more
    /// than five minutes ago, in another browser, or the account changed since.
    #[error("Your sign-in expired. Enter your email and password again.")]
    SignInExpired,
    /// Signed in without a second factor where one is required: nothing else is reachable
    /// until the person enrols one.
    #[error("Set up a second factor before you continue.")]
    EnrolmentRequired,
    /// A dangerous action, and no second factor was used in this session recently: the
    /// console asks for one and sends the same request again.
    #[error("Confirm it is you: enter a code from your authenticator app to continue.")]
    StepUpRequired,
    /// A freeze of high-risk operations is on (runbook 001): this operation adds access or
    /// removes a protection, so it waits until an incident commander lifts the freeze.
    #[error("High-risk operations are frozen (since {since}, by {by}: “{reason}”). Protective actions still work; the freeze must be lifted on the Freeze page first.")]
    Frozen {
        /// Why the freeze is on.
        reason: String,
        /// Who turned it on.
        by: String,
        /// Since when (UTC, to the minute).
        since: String,
    },
    /// The thing asked for does not exist (or is not visible to this person).
    #[error("{what} was not found.")]
    NotFound {
        /// A human name for what was missing, such as "Tenant demo".
        what: String,
    },
    /// Bad input, reported next to the field that holds it.
    #[error("{message}")]
    Validation {
        /// The form field's name, so the UI can put the message beside it.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The request is valid but clashes with the current state (already revoked, last admin,
    /// a name that is taken, ...).
    #[error("{message}")]
    Conflict {
        /// The form field whose value clashed (a taken name), so the UI can put the message
        /// beside it; `None` when the clash is with the state as a whole.
        #[serde(default)]
        field: Option<String>,
        /// What clashed.
        message: String,
    },
    /// The request could not be understood (malformed body, missing argument).
    #[error("The request was malformed: {message}")]
    BadRequest {
        /// A short description, never containing internal detail.
        message: String,
    },
    /// The browser could not reach the server or read its answer.
    #[error("Could not reach the server: {message}")]
    Transport {
        /// What the browser saw.
        message: String,
    },
    /// Something failed on our side. The detail is in the server log under `ref_id`.
    #[error("Something went wrong on our side. Quote reference {ref_id} when reporting it.")]
    Internal {
        /// Correlates this message with the server log line holding the detail.
        ref_id: String,
    },
}

impl AppError {
    /// A validation error for `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A conflict about one field's value (a name or email that is taken): 409, shown beside
    /// the field.
    pub fn taken(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A not-found error naming what was missing.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// The message to show for `field`, when this error is about that field.
    pub fn field_message(&self, field: &str) -> Option<&str> {
        match self {
            Self::Validation { field: f, message } if f == field => Some(message),
            Self::Conflict {
                field: Some(f),
                message,
            } if f == field => Some(message),
            _ => None,
        }
    }

    /// Whether this error belongs beside one form field rather than above the form.
    pub fn is_about_a_field(&self) -> bool {
        matches!(
            self,
            Self::Validation { .. } | Self::Conflict { field: Some(_), .. }
        )
    }

    /// The HTTP status a server function answers with for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials | Self::SignInExpired => 401,
            Self::Locked { .. } | Self::Frozen { .. } => 423,
            Self::TooManyAttempts { .. } => 429,
            Self::Forbidden
            | Self::PasswordChangeRequired
            | Self::EnrolmentRequired
            | Self::StepUpRequired => 403,
            Self::NotFound { .. } => 404,
            Self::Validation { .. } => 422,
            Self::Conflict { .. } => 409,
            Self::BadRequest { .. } => 400,
            Self::Transport { .. } => 502,
            Self::Internal { .. } => 500,
        }
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    /// Logs `detail` under a fresh reference id and returns the error the browser sees.
    ///
    /// Use this for every failure whose text must not reach the browser (database errors,
    /// I/O, bugs). The log line carries the request id through the request's span.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        let ref_id = new_ref_id();
        let request_id = crate::request::current_request_id();
        tracing::error!(ref_id = %ref_id, request_id = request_id.as_deref(), error = %detail, "internal error");
        Self::Internal { ref_id }
    }
}

#[cfg(feature = "ssr")]
fn new_ref_id() -> String {
    // 8 bytes of a v4 UUID: short enough to read out loud, unique enough to grep for.
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..16].to_owned()
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    /// Database errors never reach the browser: the text may name tables, constraints or
    /// data. The one exception is a unique violation of a constraint in [`UNIQUE_MEANINGS`]:
    /// the value a person typed is taken (two people adding the same email at once, the
    /// second past the first's look-up), answered as a conflict (409) beside the field. It is
    /// still logged, with the constraint's name, for whoever wonders why.
    fn from(err: sqlx::Error) -> Self {
        let clash = err
            .as_database_error()
            .filter(|e| e.code().as_deref() == Some("23505"))
            .and_then(|e| e.constraint())
            .and_then(|name| UNIQUE_MEANINGS.iter().find(|(n, _, _)| *n == name));
        match clash {
            Some((constraint, field, message)) => {
                tracing::warn!(
                    constraint,
                    field,
                    "unique violation answered as a taken value"
                );
                Self::taken(*field, *message)
            }
            None => Self::internal(&err),
        }
    }
}

/// The unique constraints a person can run into with what they typed, by the name
/// PostgreSQL gives them: the form field and the message. The one place a unique violation
/// becomes a message; a database test checks that each name is a constraint of the schema.
/// A violation of any other constraint (the one-current-pepper index, one active key per
/// client) cannot happen under the locks the changes take, so it is a bug, reported as an
/// internal error with its reference.
#[cfg(feature = "ssr")]
pub const UNIQUE_MEANINGS: &[(&str, &str, &str)] = &[
    (
        "staff_email_key",
        "email",
        "A staff member with this email already exists.",
    ),
    (
        "tenants_slug_key",
        "slug",
        "A tenant with this slug already exists.",
    ),
    (
        "api_clients_tenant_id_name_key",
        "name",
        "This tenant already has a client with this name.",
    ),
    (
        "service_tokens_name_key",
        "name",
        "A service token with this name already exists.",
    ),
];

impl FromServerFnError for AppError {
    type Encoder = server_fn_error::JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(message) => Self::Transport { message },
            ServerFnErrorErr::Response(message) => Self::Transport { message },
            ServerFnErrorErr::Args(message) | ServerFnErrorErr::MissingArg(message) => {
                Self::BadRequest { message }
            }
            ServerFnErrorErr::Deserialization(message) => Self::BadRequest { message },
            other => {
                #[cfg(feature = "ssr")]
                {
                    Self::internal(&other)
                }
                #[cfg(not(feature = "ssr"))]
                {
                    Self::Transport {
                        message: other.to_string(),
                    }
                }
            }
        }
    }

    fn ser(&self) -> leptos::server_fn::Bytes {
        // Serialization happens inside the server function's reactive owner, so the
        // response options are in context: answer with the status that fits the error
        // (403 for a refusal, 422 for bad input) rather than a blanket 500.
        //
        // Not for a plain HTML form post (no WebAssembly yet): server_fn answers those with a
        // 302 back to the form, which an error status would replace with raw JSON.
        #[cfg(feature = "ssr")]
        if let Some(options) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            let plain_form = leptos::prelude::use_context::<http::request::Parts>()
                .and_then(|parts| parts.headers.get(http::header::ACCEPT).cloned())
                .and_then(|accept| accept.to_str().ok().map(|a| a.contains("text/html")))
                .unwrap_or(false);
            if !plain_form {
                if let Ok(status) = http::StatusCode::from_u16(self.status_code()) {
                    options.set_status(status);
                }
            }
        }
        <Self::Encoder as leptos::server_fn::Encodes<Self>>::encode(self).unwrap_or_else(|_| {
            leptos::server_fn::Bytes::from_static(
                br#"{"kind":"internal","ref_id":"serialization"}"#,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_the_wire_format() {
        let cases = [
            AppError::Forbidden,
            AppError::validation("name", "Name is required."),
            AppError::Internal {
                ref_id: "abc123".into(),
            },
            AppError::not_found("Tenant nope"),
        ];
        for err in cases {
            let bytes = err.ser();
            assert_eq!(AppError::de(bytes), err);
        }
    }

    #[test]
    fn internal_error_message_carries_only_the_reference() {
        let err = AppError::Internal {
            ref_id: "0123abcd".into(),
        };
        let shown = err.to_string();
        assert!(shown.contains("0123abcd"));
        assert!(!shown.to_lowercase().contains("sql"));
    }

    #[test]
    fn field_message_only_matches_its_field() {
        let err = AppError::validation("slug", "Use lowercase letters.");
        assert_eq!(err.field_message("slug"), Some("Use lowercase letters."));
        assert_eq!(err.field_message("name"), None);
        assert_eq!(AppError::Forbidden.field_message("slug"), None);
    }

    #[test]
    fn refusals_map_to_their_http_status() {
        assert_eq!(AppError::Unauthenticated.status_code(), 401);
        assert_eq!(AppError::Forbidden.status_code(), 403);
        assert_eq!(AppError::validation("x", "y").status_code(), 422);
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn database_errors_become_a_reference_without_their_text() {
        let err: AppError =
            sqlx::Error::Protocol("relation \"secret_table\" missing".into()).into();
        match err {
            AppError::Internal { ref_id } => assert_eq!(ref_id.len(), 16),
            other => panic!("expected an internal error, got {other:?}"),
        }
    }
}
