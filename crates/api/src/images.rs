//! JSON models of the `/images` endpoints, with Docker's field names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One entry of `GET /images/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Seconds since the epoch.
    pub created: i64,
    pub size: i64,
    /// -1: not computed (Docker computes it only for `system df`).
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    /// -1: not computed.
    pub containers: i64,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    /// RFC 3339.
    pub created: String,
    pub docker_version: String,
    pub author: String,
    /// The image config's run configuration, as stored.
    pub config: serde_json::Value,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    pub size: i64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: ImageMetadata,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    /// RFC 3339; Go's zero time when never tagged, as Docker shows it.
    pub last_tag_time: String,
}

/// One entry of `GET /images/{name}/history`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    pub id: String,
    /// Seconds since the epoch.
    pub created: i64,
    pub created_by: String,
    /// `null` when the entry has no tags, as Docker sends it.
    pub tags: Option<Vec<String>>,
    pub size: i64,
    pub comment: String,
}

/// One entry of `DELETE /images/{name}` and of a prune report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagePruneReport {
    /// `null` when nothing was deleted, as Docker sends it.
    pub images_deleted: Option<Vec<DeleteResponse>>,
    pub space_reclaimed: u64,
}

/// One message of a JSON progress stream (load, import, pull, push, build).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
}

/// The error of a failed stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
}

impl JsonMessage {
    /// `{"stream": text}`.
    pub fn stream(text: impl Into<String>) -> JsonMessage {
        JsonMessage {
            stream: Some(text.into()),
            ..JsonMessage::default()
        }
    }

    /// `{"status": text}`.
    pub fn status(text: impl Into<String>) -> JsonMessage {
        JsonMessage {
            status: Some(text.into()),
            ..JsonMessage::default()
        }
    }

    /// The message as one line of the stream (Docker ends each with CRLF).
    pub fn line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.extend_from_slice(b"\r\n");
        v
    }
}
