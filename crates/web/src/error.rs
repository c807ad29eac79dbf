//! The one place where domain errors become HTTP statuses: RFC 9457 problem documents
//! for the REST API, an HTML error page for the portal. Internal and database errors
//! answer 500 with the code and a request id; their details go only to the log.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use certdesk_core::error::{DomainError, ErrorCode};

/// The HTTP status of an error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadInput => StatusCode::BAD_REQUEST,
        ErrorCode::Refused => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyRevoked | ErrorCode::Conflict | ErrorCode::Contention => StatusCode::CONFLICT,
        // A wrong code keeps 401 (clients of the API saw it before code 1014 existed);
        // the problem document's `code` tells it from an ended session (1010).
        ErrorCode::Unauthenticated | ErrorCode::WrongCode => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The request's id (see `access_log`), or a fresh one outside a request.
fn request_id() -> String {
    crate::access_log::current_request_id().unwrap_or_else(crate::access_log::new_id)
}

/// The message shown to the client: the error's own sentence, except for internal
/// failures, which are logged with a request id and answered generically.
pub fn public_message(error: &DomainError) -> (String, Option<String>) {
    if status_of(error.code()) == StatusCode::INTERNAL_SERVER_ERROR {
        let id = request_id();
        tracing::error!(request_id = %id, code = error.code().number(), "request failed: {error}");
        (format!("an internal error occurred (request {id}); the administrators can find it in the log"), Some(id))
    } else {
        (shortened(error.to_string()), None)
    }
}

/// Longest error sentence answered: a refusal that quotes the input (a name, an
/// address) must not send a large body back.
pub const MAX_MESSAGE_CHARS: usize = 300;

fn shortened(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// An RFC 9457 problem document for the REST API.
pub struct Problem(pub DomainError);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = status_of(self.0.code());
        let (detail, request_id) = public_message(&self.0);
        let mut body = json!({
            "type": format!("https://certdesk.invalid/errors/{}", self.0.code().number()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "code": self.0.code().number(),
        });
        if let (Some(id), Some(map)) = (request_id.or_else(crate::access_log::current_request_id), body.as_object_mut())
        {
            map.insert("request_id".into(), json!(id));
        }
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        Problem(e)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_the_client() {
        let (message, id) = public_message(&DomainError::new(ErrorCode::Database, "password=hunter2 at db"));
        assert!(!message.contains("hunter2") && id.is_some());
        let (message, id) = public_message(&DomainError::new(ErrorCode::NotFound, "no such application"));
        assert_eq!((message.as_str(), id), ("no such application", None));
        assert_eq!(status_of(ErrorCode::Forbidden), StatusCode::FORBIDDEN);
    }

    #[test]
    fn a_refusal_that_quotes_a_large_input_is_cut_short() {
        let input = "ä".repeat(60_000);
        let error = DomainError::new(ErrorCode::Refused, format!("the given name {input:?} is not acceptable"));
        let (message, _) = public_message(&error);
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1, "{message}");
        assert!(message.starts_with("the given name \"ää") && message.ends_with('…'));
        assert_eq!(status_of(ErrorCode::TooLarge), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status_of(ErrorCode::RequestTimeout), StatusCode::REQUEST_TIMEOUT);
    }
}
