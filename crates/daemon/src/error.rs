//! Engine errors to API errors: the one place an error kind gets its HTTP status.

use api::ApiError;

/// Docker's status for each engine error kind; the message passes through unchanged.
pub fn from_engine(e: engine::Error) -> ApiError {
    use engine::Error as E;
    match e {
        E::NotFound(m) => ApiError::not_found(m),
        E::Conflict(m) => ApiError::conflict(m),
        E::InvalidParameter(m) => ApiError::bad_request(m),
        e @ E::Io { .. } => ApiError::internal(e.to_string()),
        E::Internal(m) => ApiError::internal(m),
        E::NotImplemented(m) => ApiError::new(501, m),
    }
}

/// Runs blocking engine work off the async workers, mapping its error.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> engine::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
        .map_err(from_engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_dockers_statuses() {
        let s = |e| from_engine(e).status;
        assert_eq!(s(engine::Error::NotFound("x".into())), 404);
        assert_eq!(s(engine::Error::Conflict("x".into())), 409);
        assert_eq!(s(engine::Error::InvalidParameter("x".into())), 400);
        assert_eq!(s(engine::Error::Internal("x".into())), 500);
        let m = from_engine(engine::Error::NotFound("No such image: a:latest".into()));
        assert_eq!(m.message, "No such image: a:latest");
    }
}
