//! etcd's v2 keys API vocabulary (etcd 3.4's v2store and v2error, client/keys.go): the JSON of a
//! response and of an error, the error codes, and the headers a v2 answer carries.

use serde::{Deserialize, Serialize};

/// The header with the v2 store's index after the answer.
pub const INDEX_HEADER: &str = "x-etcd-index";

/// etcd's v2error codes used here.
pub const KEY_NOT_FOUND: u32 = 100;
pub const NODE_EXIST: u32 = 105;

/// A node of the v2 store as etcd's JSON describes it (fields left out when empty, as Go's
/// omitempty does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub created_index: u64,
    #[serde(default)]
    pub modified_index: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

impl Node {
    /// The last element of the node's key (Go's path.Base).
    pub fn base(&self) -> &str {
        base(&self.key)
    }
}

/// Go's path.Base for the keys' paths: the last element, trailing slashes dropped.
pub fn base(key: &str) -> &str {
    let trimmed = key.trim_end_matches('/');
    if trimmed.is_empty() {
        return if key.is_empty() { "." } else { "/" };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// A successful answer: the action and the node (with the one it replaced, if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub action: String,
    pub node: Node,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_node: Option<Node>,
}

/// A refusal: etcd's v2error JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_code: u32,
    pub message: String,
    #[serde(default)]
    pub cause: String,
    #[serde(default)]
    pub index: u64,
}

impl std::fmt::Display for ErrorBody {
    /// As etcd's client.Error prints it: `100: Key not found (/foo) [12]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({}) [{}]", self.error_code, self.message, self.cause, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_errors_read_as_etcd_writes_them() {
        let body = r#"{"action":"get","node":{"key":"/t","dir":true,"nodes":[{"key":"/t/8e9e05c52164694d",
            "value":"a=http://127.0.0.1:2380","modifiedIndex":7,"createdIndex":7}],"modifiedIndex":5,
            "createdIndex":5}}"#;
        let r: Response = serde_json::from_str(body).unwrap();
        assert!(r.node.dir);
        assert_eq!(r.node.nodes[0].base(), "8e9e05c52164694d");
        assert_eq!(r.node.nodes[0].value.as_deref(), Some("a=http://127.0.0.1:2380"));
        let e: ErrorBody = serde_json::from_str(
            r#"{"errorCode":100,"message":"Key not found","cause":"/t/_config","index":12}"#,
        )
        .unwrap();
        assert_eq!(e.to_string(), "100: Key not found (/t/_config) [12]");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(base(""), ".");
        // Empty fields are left out, as Go's omitempty does.
        let n = Node {
            key: "/k".into(),
            value: Some("v".into()),
            created_index: 4,
            modified_index: 4,
            ..Node::default()
        };
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"key":"/k","value":"v","createdIndex":4,"modifiedIndex":4}"#
        );
    }
}
