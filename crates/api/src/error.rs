//! Errors as the Docker API returns them: `{"message": "..."}` with Docker's status codes.

use serde::{Deserialize, Serialize};

/// An error response: HTTP status plus Docker's JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

/// The JSON body of an error response.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    /// 400: a parameter is malformed or not allowed.
    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(400, m)
    }
    /// 404: no such container, image, network, volume or path.
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(404, m)
    }
    /// 409: the object exists or is in a state that forbids the operation.
    pub fn conflict(m: impl Into<String>) -> ApiError {
        ApiError::new(409, m)
    }
    /// 500: a real server fault.
    pub fn internal(m: impl Into<String>) -> ApiError {
        ApiError::new(500, m)
    }

    /// The response body.
    pub fn body(&self) -> String {
        serde_json::to_string(&ErrorBody {
            message: self.message.clone(),
        })
        .unwrap_or_else(|_| "{\"message\":\"internal error\"}".into())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}
