//! Rancher v3 API test server (placeholder).
