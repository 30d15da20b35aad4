//! Kubernetes API test server (placeholder).
