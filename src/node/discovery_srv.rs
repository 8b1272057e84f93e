//! `--discovery-srv`: the initial cluster from DNS SRV records (etcd's PeerURLsMapAndToken with a
//! DNS cluster), checked as etcd checks it; the lookups and their rules are `etcd::srv`'s.

use std::collections::BTreeMap;

use crate::etcd::srv::{self, Dns};
use crate::etcd::urls::EtcdUrl;
use crate::node::config::{has_duplicate_url, parse_initial_cluster, urls_map_text, NodeConfig};

/// This configuration with the cluster the SRV records of `domain` give. The member must be among
/// them: a record whose target and port resolve to one of its advertised peer URLs is it.
pub async fn bootstrap(c: &NodeConfig, domain: &str) -> Result<NodeConfig, String> {
    let dns = Dns::from_env()?;
    let advertised = &c.initial_advertise_peer_urls;
    let entries =
        srv::server_cluster(&dns, domain, &c.discovery_srv_name, &c.name, advertised).await.map_err(|e| {
            eprintln!("etcdeck node: couldn't resolve during SRV discovery ({e})");
            format!("error setting up initial cluster: {e}")
        })?;
    for entry in &entries {
        eprintln!("etcdeck node: got bootstrap from DNS for etcd-server at {entry}");
    }
    let cluster = parse_initial_cluster(&entries.join(",")).map_err(|e| e.to_string())?;
    let Some(own) = cluster.get(&c.name) else {
        return Err(format!(
            "error setting up initial cluster: cannot find local etcd member {:?} in SRV records",
            c.name
        ));
    };
    if has_duplicate_url(&cluster) {
        return Err(format!("initial cluster {} has duplicate url", urls_map_text(&cluster)));
    }
    advertise_matches(&dns, &c.name, advertised, own).await?;
    Ok(NodeConfig { initial_cluster: cluster, ..c.clone() })
}

/// etcd's advertiseMatchesCluster: the advertised peer URLs are this member's in the cluster, as
/// written or once their hosts are resolved (the records name hosts; the flags often IPs).
async fn advertise_matches(
    dns: &Dns,
    name: &str,
    advertised: &[EtcdUrl],
    own: &[EtcdUrl],
) -> Result<(), String> {
    let text = |urls: &[EtcdUrl]| {
        let mut list: Vec<String> = urls.iter().map(ToString::to_string).collect();
        list.sort();
        list
    };
    let (ap, listed) = (text(advertised), text(own));
    if ap == listed {
        return Ok(());
    }
    let why = if ap.len() != listed.len() {
        format!("len({ap:?}) != len({listed:?})")
    } else {
        match (resolved(dns, advertised).await, resolved(dns, own).await) {
            (Ok(a), Ok(b)) if a == b => return Ok(()),
            (Ok(a), Ok(b)) => format!("resolved urls: {a:?} != {b:?}"),
            (Err(e), _) | (_, Err(e)) => e,
        }
    };
    let own_map = |urls: &[EtcdUrl]| urls_map_text(&BTreeMap::from([(name.to_string(), urls.to_vec())]));
    let missing: Vec<String> =
        listed.iter().filter(|u| !ap.contains(u)).map(|u| format!("{name}={u}")).collect();
    if !missing.is_empty() {
        return Err(format!(
            "--initial-cluster has {} but missing from --initial-advertise-peer-urls={} ({why})",
            missing.join(","),
            ap.join(",")
        ));
    }
    let extra: Vec<&String> = ap.iter().filter(|u| !listed.contains(u)).collect();
    if !extra.is_empty() {
        let extra: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
        return Err(format!(
            "--initial-advertise-peer-urls has {} but missing from --initial-cluster={}",
            extra.join(","),
            own_map(advertised)
        ));
    }
    Err(format!("failed to resolve {} to match --initial-cluster={} ({why})", ap.join(","), own_map(own)))
}

/// The URLs with their hosts resolved, sorted.
async fn resolved(dns: &Dns, urls: &[EtcdUrl]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for u in urls {
        out.push(format!("{}://{}", u.scheme, dns.resolve(&u.host, u.port).await?));
    }
    out.sort();
    Ok(out)
}
