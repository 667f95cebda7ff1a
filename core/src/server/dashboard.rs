//! The dashboard at `/`: a page and its bundle (dashboard/src, built into dashboard/dist by
//! `npm run build:dashboard`), compiled into the node. The page logs in and talks to the
//! API like any client, so serving it needs no credentials.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

macro_rules! asset {
    ($file:literal, $mime:literal) => {
        get(|| async {
            let body: &'static [u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboard/dist/", $file));
            ([(header::CONTENT_TYPE, $mime), (header::CACHE_CONTROL, "no-cache")], body).into_response()
        })
    };
}

/// `/`, `/index.html`, `/app.js`, `/app.css`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", asset!("index.html", "text/html; charset=utf-8"))
        .route("/index.html", asset!("index.html", "text/html; charset=utf-8"))
        .route("/app.js", asset!("app.js", "text/javascript; charset=utf-8"))
        .route("/app.css", asset!("app.css", "text/css; charset=utf-8"))
}
