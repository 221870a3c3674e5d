//! Routing: the API version prefix is checked and stripped, then (method, path) picks a
//! handler. Every error leaves here as Docker's `{"message": ...}` with its status.

use std::convert::Infallible;
use std::sync::Arc;

use api::ApiError;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use crate::handlers;
use crate::server::{full, Body};

/// Headers dockerd puts on every response; clients read the API version from them.
fn common_headers(resp: &mut Response<Body>) {
    let h = resp.headers_mut();
    h.insert(
        "Api-Version",
        api::version::CURRENT
            .to_string()
            .parse()
            .expect("valid header"),
    );
    h.insert(
        "Docker-Experimental",
        "false".parse().expect("valid header"),
    );
    h.insert("Ostype", "linux".parse().expect("valid header"));
    let server = format!("Docker/{} (linux)", engine::system::VERSION);
    h.insert("Server", server.parse().expect("valid header"));
}

/// The JSON error response.
pub fn error_response(e: &ApiError) -> Response<Body> {
    Response::builder()
        .status(e.status)
        .header("Content-Type", "application/json")
        .body(full(e.body()))
        .expect("valid response")
}

/// A JSON response with status 200.
pub fn json<T: serde::Serialize>(value: &T) -> Result<Response<Body>, ApiError> {
    json_status(200, value)
}

/// A JSON response with `status` (201 for what a request created).
pub fn json_status<T: serde::Serialize>(
    status: u16,
    value: &T,
) -> Result<Response<Body>, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(full(body))
        .expect("valid response"))
}

pub async fn handle(
    engine: Arc<engine::Engine>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let result = match api::version::split_path(&path) {
        Err(e) => Err(e),
        Ok((_version, p)) => route(&engine, req.method().clone(), p, req).await,
    };
    let mut resp = result.unwrap_or_else(|e| error_response(&e));
    common_headers(&mut resp);
    Ok(resp)
}

async fn route(
    engine: &Arc<engine::Engine>,
    method: Method,
    path: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    match (&method, path) {
        (&Method::GET | &Method::HEAD, "/_ping") => {
            Ok(handlers::system::ping(method == Method::HEAD))
        }
        (&Method::GET, "/version") => handlers::system::version(engine),
        (&Method::GET, "/info") => handlers::system::info(engine),
        (&Method::GET, "/system/check") => handlers::system::check(engine.clone()).await,
        (&Method::GET, "/system/df") => handlers::system::df(engine.clone(), &req).await,
        (&Method::GET, "/events") => handlers::events::events(engine, req).await,
        (&Method::POST, "/auth") => handlers::images::auth(engine, req).await,
        (&Method::POST, "/commit") => handlers::archive::commit(engine, req).await,
        (_, p) if p.starts_with("/images/") => {
            handlers::images::route(engine, &method, p, req).await
        }
        (_, p) if p.starts_with("/exec/") => handlers::exec::route(engine, &method, p, req).await,
        (_, p) if p.starts_with("/containers/") => {
            handlers::containers::route(engine, &method, p, req).await
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}
