//! etcd's v2 keys API vocabulary (etcd 3.4's v2store and v2error, client/keys.go): the JSON of a
//! node and of an error, the error codes, and the headers a v2 answer carries.

use serde::{Deserialize, Serialize};

/// The header with the v2 store's index after the answer.
pub const INDEX_HEADER: &str = "x-etcd-index";

/// etcd's v2error codes used here.
pub const KEY_NOT_FOUND: u32 = 100;
pub const TEST_FAILED: u32 = 101;
pub const NOT_FILE: u32 = 102;
pub const NOT_DIR: u32 = 104;
pub const NODE_EXIST: u32 = 105;
pub const ROOT_READ_ONLY: u32 = 107;
pub const DIR_NOT_EMPTY: u32 = 108;
pub const PREV_VALUE_REQUIRED: u32 = 201;
pub const TTL_NAN: u32 = 202;
pub const INDEX_NAN: u32 = 203;
pub const INVALID_FIELD: u32 = 209;
pub const INVALID_FORM: u32 = 210;
pub const REFRESH_VALUE: u32 = 211;
pub const REFRESH_TTL_REQUIRED: u32 = 212;
pub const RAFT_INTERNAL: u32 = 300;
pub const EVENT_INDEX_CLEARED: u32 = 401;

/// etcd's message for a v2 error code (v2error's table).
pub fn error_message(code: u32) -> &'static str {
    match code {
        100 => "Key not found",
        101 => "Compare failed",
        102 => "Not a file",
        103 => "Reached the max number of peers in the cluster",
        104 => "Not a directory",
        105 => "Key already exists",
        106 => "The prefix of given key is a keyword in etcd",
        107 => "Root is read only",
        108 => "Directory not empty",
        109 => "Peer address has existed",
        110 => "The request requires user authentication",
        200 => "Value is Required in POST form",
        201 => "PrevValue is Required in POST form",
        202 => "The given TTL in POST form is not a number",
        203 => "The given index in POST form is not a number",
        204 => "Value or TTL is required in POST form",
        205 => "The given timeout in POST form is not a number",
        206 => "Name is required in POST form",
        207 => "Index or value is required",
        208 => "Index and value cannot both be specified",
        209 => "Invalid field",
        210 => "Invalid POST form",
        211 => "Value provided on refresh",
        212 => "A TTL must be provided on refresh",
        300 => "Raft Internal Error",
        301 => "During Leader Election",
        400 => "watcher is cleared due to etcd recovery",
        401 => "The event in requested index is outdated and cleared",
        402 => "Standby Internal Error",
        403 => "Invalid active size",
        404 => "Standby remove delay",
        500 => "Client Internal Error",
        _ => "",
    }
}

/// The HTTP status etcd answers a v2 error code with (every code not listed is 400).
pub fn error_status(code: u32) -> u16 {
    match code {
        100 => 404,
        101 | 105 => 412,
        102 | 108 => 403,
        110 => 401,
        300 | 301 => 500,
        _ => 400,
    }
}

/// A node of the v2 store as etcd's JSON describes it (its NodeExtern): the fields in etcd's order,
/// each left out when empty (Go's omitempty). `value` is there for a key, even empty, and never for
/// a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Node {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
    /// RFC 3339 in UTC, as Go writes a time (fraction without trailing zeros).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub ttl: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<Node>,
    #[serde(skip_serializing_if = "is_zero_u")]
    pub modified_index: u64,
    #[serde(skip_serializing_if = "is_zero_u")]
    pub created_index: u64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u(n: &u64) -> bool {
    *n == 0
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

/// A refusal: etcd's v2error JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_code: u32,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
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
        let answer: serde_json::Value = serde_json::from_str(body).unwrap();
        let node: Node = serde_json::from_value(answer["node"].clone()).unwrap();
        assert!(node.dir);
        assert_eq!(node.nodes[0].base(), "8e9e05c52164694d");
        assert_eq!(node.nodes[0].value.as_deref(), Some("a=http://127.0.0.1:2380"));
        let e: ErrorBody = serde_json::from_str(
            r#"{"errorCode":100,"message":"Key not found","cause":"/t/_config","index":12}"#,
        )
        .unwrap();
        assert_eq!(e.to_string(), "100: Key not found (/t/_config) [12]");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(base(""), ".");
        // Empty fields are left out, as Go's omitempty does; the fields in etcd's order.
        let n = Node {
            key: "/k".into(),
            value: Some("v".into()),
            created_index: 4,
            modified_index: 4,
            ..Node::default()
        };
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"key":"/k","value":"v","modifiedIndex":4,"createdIndex":4}"#
        );
    }
}
