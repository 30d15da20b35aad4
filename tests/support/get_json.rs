//! GET a URL and parse its JSON body: the status reads of the controller,
//! HA and preview tests. Shared with `#[path]`, as `copy_dir.rs` is.

/// The JSON body of `GET url` (keelson's HTTP client, TLS verified);
/// panics, failing the test, when the request or the parse fails.
pub async fn get_json(url: &str) -> serde_json::Value {
    keelson::http::client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
