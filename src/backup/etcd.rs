//! A minimal etcd v3 gRPC client: connect (TLS, auth), status, snapshot,
//! and the few KV calls the restore check and tests need.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status, Streaming};
use tonic_prost::ProstCodec;

use super::EtcdClusterConfig;
use super::proto;

/// Why talking to etcd failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The config lists no endpoint.
    #[error(
        "no etcd endpoints configured; add `etcd.endpoints` for this cluster in the keelson config"
    )]
    NoEndpoints,
    /// An endpoint is not a valid URL.
    #[error(
        "etcd endpoint {endpoint:?} is not a valid URL ({source}); use e.g. https://10.0.0.1:2379"
    )]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// Parser error.
        source: tonic::transport::Error,
    },
    /// A TLS or password file could not be read.
    #[error("cannot read etcd {what} {path}: {source}; check `etcd.{what}` in the keelson config")]
    ReadFile {
        /// Which setting named the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// TLS settings are incomplete or invalid.
    #[error("invalid etcd TLS settings: {0}")]
    Tls(String),
    /// Other settings are inconsistent, or etcd answered something unusable.
    #[error("etcd settings: {0}")]
    Config(String),
    /// No endpoint answered.
    #[error(
        "cannot reach etcd ({details}); check that etcd runs, that the endpoints are right and that the TLS files match the server"
    )]
    Unreachable {
        /// One line per endpoint tried.
        details: String,
    },
    /// etcd refused the credentials or the user lacks permission.
    #[error(
        "etcd refused authentication at {endpoint}: {message}; check `username`/`passwordFile` (snapshots need the root role)"
    )]
    Auth {
        /// Endpoint that refused.
        endpoint: String,
        /// etcd's message.
        message: String,
    },
    /// Any other failed call.
    #[error("etcd {call} at {endpoint} failed: {code:?}: {message}")]
    Rpc {
        /// RPC name.
        call: &'static str,
        /// Endpoint called.
        endpoint: String,
        /// gRPC status code.
        code: Code,
        /// etcd's message.
        message: String,
    },
}

/// TLS and credential material read from the files the config names.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// TLS config for `https` endpoints.
    pub tls: Option<ClientTlsConfig>,
    /// User name and password for `Auth/Authenticate`.
    pub credentials: Option<(String, String)>,
}

impl ConnectOptions {
    /// Reads CA, client certificate, key and password files named by `cfg`.
    pub fn from_config(cfg: &EtcdClusterConfig) -> Result<Self, EtcdError> {
        let mut tls = None;
        if cfg.ca_file.is_some() || cfg.cert_file.is_some() || cfg.key_file.is_some() {
            let mut config = ClientTlsConfig::new();
            if let Some(ca) = &cfg.ca_file {
                config = config.ca_certificate(Certificate::from_pem(read("caFile", ca)?));
            }
            match (&cfg.cert_file, &cfg.key_file) {
                (Some(cert), Some(key)) => {
                    config = config.identity(Identity::from_pem(
                        read("certFile", cert)?,
                        read("keyFile", key)?,
                    ));
                }
                (None, None) => {}
                _ => {
                    return Err(EtcdError::Tls(
                        "certFile and keyFile must be set together".into(),
                    ));
                }
            }
            tls = Some(config);
        }
        let credentials = match (&cfg.username, &cfg.password_file) {
            (Some(user), Some(file)) => {
                let raw = read("passwordFile", file)?;
                let password = String::from_utf8_lossy(&raw)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                Some((user.clone(), password))
            }
            (Some(user), None) => Some((user.clone(), String::new())),
            (None, Some(_)) => {
                return Err(EtcdError::Config(
                    "passwordFile is set but username is not; add `username`".into(),
                ));
            }
            (None, None) => None,
        };
        Ok(ConnectOptions { tls, credentials })
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// A connection to one etcd member.
#[derive(Clone)]
pub struct EtcdClient {
    grpc: Grpc<Channel>,
    token: Option<AsciiMetadataValue>,
    endpoint: String,
}

impl std::fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never print it.
        f.debug_struct("EtcdClient")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl EtcdClient {
    /// Connects to the first endpoint of `cfg` that answers `Status`.
    pub async fn connect(cfg: &EtcdClusterConfig) -> Result<Self, EtcdError> {
        let options = ConnectOptions::from_config(cfg)?;
        Self::connect_any(&cfg.endpoints, &options).await
    }

    /// Connects to the first of `endpoints` that answers `Status`.
    pub async fn connect_any(
        endpoints: &[String],
        options: &ConnectOptions,
    ) -> Result<Self, EtcdError> {
        if endpoints.is_empty() {
            return Err(EtcdError::NoEndpoints);
        }
        let mut details = Vec::new();
        for endpoint in endpoints {
            match Self::connect_one(endpoint, options).await {
                Ok(mut client) => match client.status().await {
                    Ok(_) => return Ok(client),
                    Err(err @ EtcdError::Auth { .. }) => return Err(err),
                    Err(err) => details.push(format!("{endpoint}: {err}")),
                },
                Err(err @ (EtcdError::Auth { .. } | EtcdError::InvalidEndpoint { .. })) => {
                    return Err(err);
                }
                Err(EtcdError::Unreachable { details: d }) => details.push(d),
                Err(err) => details.push(format!("{endpoint}: {err}")),
            }
        }
        Err(EtcdError::Unreachable {
            details: details.join("; "),
        })
    }

    /// Connects to one endpoint and authenticates when credentials are given.
    pub async fn connect_one(endpoint: &str, options: &ConnectOptions) -> Result<Self, EtcdError> {
        let url = if endpoint.contains("://") {
            endpoint.to_string()
        } else if options.tls.is_some() {
            format!("https://{endpoint}")
        } else {
            format!("http://{endpoint}")
        };
        let invalid = |source| EtcdError::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            source,
        };
        let mut ep = Endpoint::from_shared(url.clone())
            .map_err(invalid)?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            // Large windows let a snapshot stream run at disk speed instead of
            // waiting for flow-control updates every 64 KiB.
            .initial_stream_window_size(Some(16 << 20))
            .initial_connection_window_size(Some(32 << 20))
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(20));
        if url.starts_with("https://") {
            let tls = options.tls.clone().unwrap_or_default();
            ep = ep
                .tls_config(tls)
                .map_err(|e| EtcdError::Tls(format!("{endpoint}: {e}")))?;
        }
        let channel = ep.connect().await.map_err(|e| EtcdError::Unreachable {
            details: format!("{endpoint}: {}", error_chain(&e)),
        })?;
        let mut client = EtcdClient {
            grpc: Grpc::new(channel).max_decoding_message_size(64 << 20),
            token: None,
            endpoint: endpoint.to_string(),
        };
        if let Some((user, password)) = &options.credentials {
            let resp: proto::AuthenticateResponse = client
                .unary(
                    "Auth/Authenticate",
                    proto::AUTHENTICATE,
                    proto::AuthenticateRequest {
                        name: user.clone(),
                        password: password.clone(),
                    },
                )
                .await?;
            let token = MetadataValue::try_from(resp.token.as_str())
                .map_err(|_| EtcdError::Config("etcd returned a malformed auth token".into()))?;
            client.token = Some(token);
        }
        Ok(client)
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `Maintenance/Status`: version, revision, database size.
    pub async fn status(&mut self) -> Result<proto::StatusResponse, EtcdError> {
        self.unary("Maintenance/Status", proto::STATUS, proto::StatusRequest {})
            .await
    }

    /// Opens a `Maintenance/Snapshot` stream.
    pub async fn snapshot(&mut self) -> Result<Streaming<proto::SnapshotResponse>, EtcdError> {
        self.ready("Maintenance/Snapshot").await?;
        let path = PathAndQuery::from_static(proto::SNAPSHOT);
        let request = self.request(proto::SnapshotRequest {});
        let codec = ProstCodec::<proto::SnapshotRequest, proto::SnapshotResponse>::default();
        self.grpc
            .server_streaming(request, path, codec)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.rpc_error("Maintenance/Snapshot", s))
    }

    /// Number of keys in the store.
    pub async fn count_keys(&mut self) -> Result<i64, EtcdError> {
        let resp = self
            .range(proto::RangeRequest {
                key: vec![0],
                range_end: vec![0],
                count_only: true,
                ..Default::default()
            })
            .await?;
        Ok(resp.count)
    }

    /// Every key in the store, sorted.
    pub async fn keys(&mut self) -> Result<Vec<Vec<u8>>, EtcdError> {
        let resp = self
            .range(proto::RangeRequest {
                key: vec![0],
                range_end: vec![0],
                keys_only: true,
                ..Default::default()
            })
            .await?;
        Ok(resp.kvs.into_iter().map(|kv| kv.key).collect())
    }

    /// The first key of the store and its value, if the store has any key.
    pub async fn first(&mut self) -> Result<Option<proto::KeyValue>, EtcdError> {
        let resp = self
            .range(proto::RangeRequest {
                key: vec![0],
                range_end: vec![0],
                limit: 1,
                ..Default::default()
            })
            .await?;
        Ok(resp.kvs.into_iter().next())
    }

    /// Value of `key`, if present.
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, EtcdError> {
        let resp = self
            .range(proto::RangeRequest {
                key: key.to_vec(),
                ..Default::default()
            })
            .await?;
        Ok(resp.kvs.into_iter().next().map(|kv| kv.value))
    }

    /// Writes `key` = `value`; returns the new revision.
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<i64, EtcdError> {
        let resp: proto::PutResponse = self
            .unary(
                "KV/Put",
                proto::PUT,
                proto::PutRequest {
                    key: key.to_vec(),
                    value: value.to_vec(),
                },
            )
            .await?;
        Ok(resp.header.map(|h| h.revision).unwrap_or_default())
    }

    async fn range(&mut self, req: proto::RangeRequest) -> Result<proto::RangeResponse, EtcdError> {
        self.unary("KV/Range", proto::RANGE, req).await
    }

    async fn unary<Req, Resp>(
        &mut self,
        call: &'static str,
        path: &'static str,
        req: Req,
    ) -> Result<Resp, EtcdError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.ready(call).await?;
        let request = self.request(req);
        let codec = ProstCodec::<Req, Resp>::default();
        self.grpc
            .unary(request, PathAndQuery::from_static(path), codec)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.rpc_error(call, s))
    }

    async fn ready(&mut self, call: &'static str) -> Result<(), EtcdError> {
        let endpoint = self.endpoint.clone();
        self.grpc.ready().await.map_err(|e| EtcdError::Rpc {
            call,
            endpoint,
            code: Code::Unavailable,
            message: error_chain(&e),
        })
    }

    fn request<T>(&self, msg: T) -> Request<T> {
        let mut request = Request::new(msg);
        if let Some(token) = &self.token {
            request.metadata_mut().insert("token", token.clone());
        }
        request
    }

    fn rpc_error(&self, call: &'static str, status: Status) -> EtcdError {
        let mut message = status.message().to_string();
        let mut source = std::error::Error::source(&status);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            source = s.source();
        }
        let auth_like = matches!(
            status.code(),
            Code::Unauthenticated | Code::PermissionDenied
        ) || message.contains("authentication failed")
            || message.contains("user name is empty")
            || message.contains("permission denied")
            || message.contains("invalid auth token");
        if auth_like {
            return EtcdError::Auth {
                endpoint: self.endpoint.clone(),
                message,
            };
        }
        let message = if message.is_empty() {
            error_chain(&status)
        } else {
            message
        };
        EtcdError::Rpc {
            call,
            endpoint: self.endpoint.clone(),
            code: status.code(),
            message,
        }
    }
}

/// Joins an error with its sources: tonic's top-level messages alone are vague.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
