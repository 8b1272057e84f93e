//! Writes from the key browser: what is written, the dialog that confirms it, and the etcdctl command
//! that does the same. Every write is a compare-and-swap on what the user saw, so a key changed by
//! someone else meanwhile is never overwritten silently.

use crate::app::keys::{prefix_end, ValueInfo};
use crate::app::value_format::{diff, display_bytes, DiffLine};

/// The lease a created key gets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeaseChoice {
    /// No lease.
    None,
    /// Keep whatever lease the key has (an edit): etcdctl's --ignore-lease.
    Keep,
    /// A new lease with this TTL in seconds, granted just before the put.
    New { ttl: i64 },
    /// An existing lease.
    Existing(i64),
}

impl LeaseChoice {
    /// Reads the lease prompt: empty for none, a TTL ("60", "60s", "5m") for a new lease, or an
    /// existing lease's hex ID written with 0x.
    pub fn parse(text: &str) -> Result<LeaseChoice, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(LeaseChoice::None);
        }
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            return match i64::from_str_radix(hex, 16) {
                Ok(id) if id > 0 => Ok(LeaseChoice::Existing(id)),
                _ => Err(format!(
                    "bad lease ID {text:?}: write an existing lease's hex ID as 0x694d7b7c8cf4d108"
                )),
            };
        }
        let seconds = match text.parse::<i64>() {
            Ok(n) => n,
            Err(_) => match crate::etcd::duration::parse_go_duration(text) {
                Ok(d) if d.subsec_nanos() == 0 => d.as_secs() as i64,
                Ok(_) => return Err(format!("bad lease TTL {text:?}: a lease TTL is whole seconds")),
                Err(_) => {
                    return Err(format!(
                        "bad lease {text:?}: leave it empty for none, give a TTL (60, 60s, 5m) for a new \
                         lease, or an existing lease's ID as 0x694d7b7c8cf4d108"
                    ))
                }
            },
        };
        if seconds <= 0 {
            return Err(format!("bad lease TTL {text:?}: a TTL must be at least one second"));
        }
        Ok(LeaseChoice::New { ttl: seconds })
    }
}

/// A write the console can make. Each carries what the user saw, which the write compares against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Write {
    /// Put `value` at `key` if the key's mod_revision is still `expect` (0: the key must not exist).
    Put { key: Vec<u8>, value: Vec<u8>, expect: i64, lease: LeaseChoice },
    /// Delete `key` if its mod_revision is still `expect`.
    Delete { key: Vec<u8>, expect: i64 },
    /// Delete every key under `prefix` if none was created or changed after `revision`, the revision
    /// at which `count` keys were counted.
    DeletePrefix { prefix: Vec<u8>, count: i64, revision: i64 },
}

impl Dialog {
    /// The conflict dialog for `write`, with its diffs computed once.
    pub fn conflict(write: Write, seen: Option<Vec<u8>>, current: Option<ValueInfo>) -> Dialog {
        let now = current.as_ref().map(|c| c.value.as_slice());
        let theirs = diff(seen.as_deref(), now);
        let yours = match &write {
            Write::Put { value, .. } => diff(now, Some(value)),
            _ => Vec::new(),
        };
        Dialog::Conflict { write, seen, current, theirs, yours }
    }
}

impl Write {
    /// The key (or prefix) the write is about.
    pub fn key(&self) -> &[u8] {
        match self {
            Write::Put { key, .. } | Write::Delete { key, .. } => key,
            Write::DeletePrefix { prefix, .. } => prefix,
        }
    }

    /// What the write does, in a few words.
    pub fn describe(&self) -> String {
        match self {
            Write::Put { key, expect: 0, .. } => format!("create {}", display_bytes(key)),
            Write::Put { key, .. } => format!("update {}", display_bytes(key)),
            Write::Delete { key, .. } => format!("delete {}", display_bytes(key)),
            Write::DeletePrefix { prefix, count, .. } => {
                format!("delete {count} keys under {}", prefix_label(prefix))
            }
        }
    }

    /// The etcdctl commands that make the same change (without the compare-and-swap guard, which
    /// etcdctl only expresses as a `txn`). `lease` is the ID a new lease was granted.
    pub fn etcdctl(&self, granted: Option<i64>) -> String {
        match self {
            Write::Put { key, value, lease, .. } => {
                let mut flags = String::new();
                let mut before = String::new();
                match lease {
                    LeaseChoice::None => {}
                    LeaseChoice::Keep => flags.push_str(" --ignore-lease"),
                    LeaseChoice::Existing(id) => flags.push_str(&format!(" --lease={id:x}")),
                    LeaseChoice::New { ttl } => {
                        before = format!("etcdctl lease grant {ttl} && ");
                        match granted {
                            Some(id) => flags.push_str(&format!(" --lease={id:x}")),
                            None => flags.push_str(" --lease=<ID>"),
                        }
                    }
                }
                let dashes = if key.starts_with(b"-") || value.starts_with(b"-") { " --" } else { "" };
                format!("{before}etcdctl put{flags}{dashes} {} {}", shell_quote(key), shell_quote(value))
            }
            Write::Delete { key, .. } => {
                let dashes = if key.starts_with(b"-") { " --" } else { "" };
                format!("etcdctl del{dashes} {}", shell_quote(key))
            }
            Write::DeletePrefix { prefix, .. } if prefix.is_empty() => {
                "etcdctl del --from-key ''".to_string()
            }
            Write::DeletePrefix { prefix, .. } => {
                let dashes = if prefix.starts_with(b"-") { " --" } else { "" };
                format!("etcdctl del --prefix{dashes} {}", shell_quote(prefix))
            }
        }
    }

    /// The same write against what the key holds now: a retry after a conflict the user accepted.
    pub fn against(&self, current: Option<&ValueInfo>) -> Write {
        let now = current.map_or(0, |v| v.mod_revision);
        match self.clone() {
            Write::Put { key, value, lease, .. } => {
                // An edit of a key that has since been deleted creates it again, without a lease.
                let lease = if now == 0 && lease == LeaseChoice::Keep { LeaseChoice::None } else { lease };
                Write::Put { key, value, expect: now, lease }
            }
            Write::Delete { key, .. } => Write::Delete { key, expect: now },
            other => other,
        }
    }
}

/// How a prefix is named on screen.
pub fn prefix_label(prefix: &[u8]) -> String {
    if prefix.is_empty() {
        "the whole key space".into()
    } else {
        display_bytes(prefix)
    }
}

/// What must be typed to confirm deleting `prefix`: the prefix itself, or for the whole key space
/// (an empty prefix, which cannot be typed) these words.
pub fn typed_confirmation(prefix: &[u8]) -> String {
    if prefix.is_empty() {
        "ALL KEYS".into()
    } else {
        display_bytes(prefix)
    }
}

/// The etcd range a prefix delete covers: [start, end).
pub fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let start = if prefix.is_empty() { vec![0] } else { prefix.to_vec() };
    (start, prefix_end(prefix))
}

/// A word or bytes for a POSIX shell: bare when safe, in single quotes when printable, as $'…'
/// with escapes otherwise (bash, zsh and ksh read those).
pub fn shell_quote(bytes: &[u8]) -> String {
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"/_-.:=@%+,".contains(b);
    if !bytes.is_empty() && bytes.iter().all(safe) {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text.chars().any(|c| c.is_control() || c == '\'') {
            return format!("'{text}'");
        }
    }
    let mut out = String::from("$'");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\'' => out.push_str("\\'"),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('\'');
    out
}

/// Text typed into a dialog that asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedConfirm {
    pub expected: String,
    pub text: String,
}

/// A dialog over the key browser. It holds the write it dispatches when the user agrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    /// Counting the keys under a prefix before asking to delete them.
    Counting { request: u64, prefix: Vec<u8> },
    /// A write waiting for the user's yes; `typed` must match first when present. `seen` is the
    /// value the user saw (None: no key, or a prefix).
    Confirm { write: Write, seen: Option<Vec<u8>>, diff: Vec<DiffLine>, typed: Option<TypedConfirm> },
    /// The write went out; waiting for etcd.
    Writing { request: u64, write: Write, seen: Option<Vec<u8>> },
    /// The key changed after the user saw it. `seen` is what the user saw (None: no key), `current`
    /// what etcd holds now; agreeing writes again against `current`. `theirs` diffs seen → current,
    /// `yours` current → the value the write puts (empty for a delete).
    Conflict {
        write: Write,
        seen: Option<Vec<u8>>,
        current: Option<ValueInfo>,
        theirs: Vec<DiffLine>,
        yours: Vec<DiffLine>,
    },
    /// Keys under the prefix changed after they were counted; agreeing counts again.
    PrefixChanged { prefix: Vec<u8>, count: i64 },
}

/// What a write reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Done at `revision`; `lease` is the lease granted for the key, `deleted` how many keys went.
    Done { revision: i64, lease: Option<i64>, deleted: i64 },
    /// The compare failed: the key holds `current` now (None: it does not exist).
    Conflict { current: Option<ValueInfo> },
    /// The prefix compare failed: keys under it changed; `count` keys are there now.
    PrefixChanged { count: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_prompt_reads_none_a_ttl_or_an_id() {
        assert_eq!(LeaseChoice::parse(""), Ok(LeaseChoice::None));
        assert_eq!(LeaseChoice::parse("60"), Ok(LeaseChoice::New { ttl: 60 }));
        assert_eq!(LeaseChoice::parse("5m"), Ok(LeaseChoice::New { ttl: 300 }));
        assert_eq!(LeaseChoice::parse("0x694d7b7c8cf4d108"), Ok(LeaseChoice::Existing(0x694d7b7c8cf4d108)));
        assert!(LeaseChoice::parse("0").unwrap_err().contains("at least one second"));
        assert!(LeaseChoice::parse("1.5s").unwrap_err().contains("whole seconds"));
        assert!(LeaseChoice::parse("0xzz").unwrap_err().contains("bad lease ID"));
        assert!(LeaseChoice::parse("soon").unwrap_err().contains("leave it empty for none"));
    }

    #[test]
    fn etcdctl_equivalents_quote_for_the_shell() {
        let put = Write::Put {
            key: b"/a/b".to_vec(),
            value: b"hello world".to_vec(),
            expect: 7,
            lease: LeaseChoice::Keep,
        };
        assert_eq!(put.etcdctl(None), "etcdctl put --ignore-lease /a/b 'hello world'");
        let new = Write::Put {
            key: b"k".to_vec(),
            value: b"-1".to_vec(),
            expect: 0,
            lease: LeaseChoice::New { ttl: 30 },
        };
        assert_eq!(new.etcdctl(Some(0x1f)), "etcdctl lease grant 30 && etcdctl put --lease=1f -- k -1");
        let binary = Write::Put {
            key: b"it's".to_vec(),
            value: b"\x00\xff\n".to_vec(),
            expect: 0,
            lease: LeaseChoice::None,
        };
        assert_eq!(binary.etcdctl(None), r"etcdctl put $'it\'s' $'\x00\xff\n'");
        assert_eq!(Write::Delete { key: b"/x".to_vec(), expect: 3 }.etcdctl(None), "etcdctl del /x");
        let prefix = Write::DeletePrefix { prefix: b"/svc/".to_vec(), count: 4, revision: 9 };
        assert_eq!(prefix.etcdctl(None), "etcdctl del --prefix /svc/");
        assert_eq!(prefix.describe(), "delete 4 keys under /svc/");
        let all = Write::DeletePrefix { prefix: vec![], count: 4, revision: 9 };
        assert_eq!(all.etcdctl(None), "etcdctl del --from-key ''");
        assert_eq!(typed_confirmation(b""), "ALL KEYS");
        assert_eq!(shell_quote(b""), "''");
    }

    #[test]
    fn a_retry_writes_against_what_the_key_holds_now() {
        let edit =
            Write::Put { key: b"k".to_vec(), value: b"v2".to_vec(), expect: 5, lease: LeaseChoice::Keep };
        let now = ValueInfo {
            key: b"k".to_vec(),
            value: b"x".to_vec(),
            create_revision: 2,
            mod_revision: 9,
            version: 3,
            lease: 0,
        };
        assert_eq!(
            edit.against(Some(&now)),
            Write::Put { key: b"k".to_vec(), value: b"v2".to_vec(), expect: 9, lease: LeaseChoice::Keep }
        );
        assert_eq!(
            edit.against(None),
            Write::Put { key: b"k".to_vec(), value: b"v2".to_vec(), expect: 0, lease: LeaseChoice::None }
        );
    }
}
