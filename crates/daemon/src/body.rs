//! Request bodies read whole.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;

/// Reads a JSON request body of at most `max` bytes; an empty body is `null`.
pub async fn json_body(
    req: Request<Incoming>,
    max: usize,
) -> Result<serde_json::Value, api::ApiError> {
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| api::ApiError::bad_request(format!("reading the body: {e}")))?
        .to_bytes();
    if body.len() > max {
        return Err(api::ApiError::bad_request("request body too large"));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&body)
        .map_err(|e| api::ApiError::bad_request(format!("invalid JSON: {e}")))
}
