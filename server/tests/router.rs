//! Router tests: the real router on a real host (root, btrfs, runc), called
//! without a socket.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sprites_server::{app, AppState};
use tower::ServiceExt;

async fn state() -> AppState {
    common::start("t-server", common::Backend::Sqlite)
        .await
        .state
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_host_summary() {
    let public = std::env::temp_dir();
    let router = app(state().await, public);
    let res = router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = router
        .oneshot(Request::get("/v1/host").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["runtime"], "crun");
    assert!(v["pool_used_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_json_with_stable_codes_and_no_internals() {
    use axum::response::IntoResponse;
    use sprites_server::error::ApiError;
    let res = ApiError::from(vmhost::Error::NotFound("x".into())).into_response();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], "not_found");
    let internal = vmhost::Error::Runtime("runc said /secret/path".into());
    let res = ApiError::from(internal).into_response();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(!String::from_utf8_lossy(&body).contains("secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_of_the_web_app_get_its_index_and_unknown_api_paths_a_json_404() {
    let public = tempfile::tempdir().unwrap();
    std::fs::write(public.path().join("index.html"), "<!doctype html>the app").unwrap();
    std::fs::write(public.path().join("app.js"), "export {}").unwrap();
    let router = app(state().await, public.path().to_path_buf());
    let get = |path: &str| {
        let router = router.clone();
        let req = Request::get(path).body(Body::empty()).unwrap();
        async move {
            let res = router.oneshot(req).await.unwrap();
            let status = res.status();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    for page in ["/", "/s/blog", "/signin?next=%2Fv1%2Furl-auth", "/tokens"] {
        let (st, body) = get(page).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        assert!(body.contains("the app"), "{page}: {body}");
    }
    assert_eq!(get("/app.js").await.1, "export {}");
    let (st, body) = get("/v1/no-such-thing").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "not_found", "{body}");
}
