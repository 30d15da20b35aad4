//! Hand-written protobuf messages for the few etcd v3 RPCs keelson calls.
//!
//! Field numbers follow etcd's `etcdserverpb/rpc.proto` and `mvccpb/kv.proto`.
//! Writing them by hand keeps the build free of `protoc`; unknown fields that
//! newer etcd versions send are skipped by prost.

/// gRPC path of `Maintenance/Snapshot`.
pub const SNAPSHOT: &str = "/etcdserverpb.Maintenance/Snapshot";
/// gRPC path of `Maintenance/Status`.
pub const STATUS: &str = "/etcdserverpb.Maintenance/Status";
/// gRPC path of `Auth/Authenticate`.
pub const AUTHENTICATE: &str = "/etcdserverpb.Auth/Authenticate";
/// gRPC path of `KV/Range`.
pub const RANGE: &str = "/etcdserverpb.KV/Range";
/// gRPC path of `KV/Put`.
pub const PUT: &str = "/etcdserverpb.KV/Put";

/// Header etcd attaches to responses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseHeader {
    /// ID of the cluster that sent the response.
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    /// ID of the member that sent the response.
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    /// Key-value store revision when the request was applied.
    #[prost(int64, tag = "3")]
    pub revision: i64,
    /// Raft term when the request was applied.
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

/// `Maintenance/Snapshot` request (no fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotRequest {}

/// One chunk of a snapshot stream; the last message carries the sha256.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotResponse {
    /// Response header (only some etcd versions fill it).
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Bytes of the database still to come after this chunk.
    #[prost(uint64, tag = "2")]
    pub remaining_bytes: u64,
    /// Database bytes, or the 32-byte sha256 in the final message.
    #[prost(bytes = "bytes", tag = "3")]
    pub blob: bytes::Bytes,
    /// etcd version (etcd 3.6 and later).
    #[prost(string, tag = "4")]
    pub version: String,
}

/// `Maintenance/Status` request (no fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {}

/// `Maintenance/Status` response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    /// Response header; `revision` is the current store revision.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Server version, e.g. `3.4.23`.
    #[prost(string, tag = "2")]
    pub version: String,
    /// Size of the backend database file.
    #[prost(int64, tag = "3")]
    pub db_size: i64,
}

/// `Auth/Authenticate` request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthenticateRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Password.
    #[prost(string, tag = "2")]
    pub password: String,
}

/// `Auth/Authenticate` response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthenticateResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Token to send as `token` metadata on later calls.
    #[prost(string, tag = "2")]
    pub token: String,
}

/// `KV/Range` request (only the fields keelson uses).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeRequest {
    /// First key of the range.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// End of the range (exclusive); `\0` with key `\0` means every key.
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    /// Most keys returned; 0 means no limit.
    #[prost(int64, tag = "3")]
    pub limit: i64,
    /// Return keys without values.
    #[prost(bool, tag = "8")]
    pub keys_only: bool,
    /// Return only the count.
    #[prost(bool, tag = "9")]
    pub count_only: bool,
}

/// One key-value pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// Key bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Revision of the last modification.
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    /// Value bytes.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
}

/// `KV/Range` response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Matching pairs (empty with `count_only`).
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
    /// More keys exist beyond `limit`.
    #[prost(bool, tag = "3")]
    pub more: bool,
    /// Number of keys in the range.
    #[prost(int64, tag = "4")]
    pub count: i64,
}

/// `KV/Put` request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRequest {
    /// Key bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Value bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `KV/Put` response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {
    /// Response header; `revision` is the revision of the write.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
