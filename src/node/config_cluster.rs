//! The initial cluster's map of member names to peer URLs: read from `name=url,...` as etcd's
//! --initial-cluster is, written back, and checked for a URL listed twice.

use std::collections::{BTreeMap, BTreeSet};

use super::ConfigError;
use crate::etcd::urls::EtcdUrl;

/// `name=url,name=url`; a name may appear more than once to list several URLs.
pub fn parse_initial_cluster(text: &str) -> Result<BTreeMap<String, Vec<EtcdUrl>>, ConfigError> {
    let setup = |why: String| ConfigError::Invalid(format!("error setting up initial cluster: {why}"));
    let mut cluster: BTreeMap<String, Vec<EtcdUrl>> = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, url) =
            entry.split_once('=').ok_or_else(|| setup(format!("{entry:?} is not in the form name=url")))?;
        let url = EtcdUrl::parse(url).map_err(setup)?;
        cluster.entry(name.trim().to_string()).or_default().push(url);
    }
    if cluster.is_empty() {
        return Err(ConfigError::Invalid("initial cluster unset and no discovery URL found".into()));
    }
    Ok(cluster)
}

/// A name-to-URLs map as `name=url,...`, in name order.
pub fn urls_map_text(cluster: &BTreeMap<String, Vec<EtcdUrl>>) -> String {
    cluster
        .iter()
        .flat_map(|(name, urls)| urls.iter().map(move |u| format!("{name}={u}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether one URL is listed twice, for one member or two (etcd's checkDuplicateURL).
pub fn has_duplicate_url(cluster: &BTreeMap<String, Vec<EtcdUrl>>) -> bool {
    let mut seen = BTreeSet::new();
    cluster.values().flatten().any(|u| !seen.insert(u))
}
