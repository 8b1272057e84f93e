//! etcd's DNS SRV discovery: the records a new member bootstraps from (`--discovery-srv`,
//! `--discovery-srv-name`: `_etcd-server-ssl._tcp.DOMAIN` and `_etcd-server._tcp.DOMAIN`) and those a
//! client finds its endpoints by (etcdctl's `--discovery-srv`: `_etcd-client-ssl`, `_etcd-client`),
//! with etcd's rules (pkg/srv) and error texts.
//!
//! Both record kinds count, combined, as in etcd 3.5 and as etcd 3.4's documentation says: etcd 3.4's
//! own code drops the `_etcd-server` (http) records by mistake (etcd-io/etcd#11321). With only
//! `_etcd-server-ssl` records, as 3.4 needs them, the two build the same cluster.
//!
//! Lookups go to the servers in /etc/resolv.conf, or to the one `ETCDECK_DNS_SERVER` names
//! (`IP` or `IP:PORT`), which is how the tests reach a DNS server on a port of their own.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::Resolver;

use super::urls::EtcdUrl;

/// The variable that points every SRV lookup at one DNS server instead of /etc/resolv.conf's.
pub const DNS_SERVER_VAR: &str = "ETCDECK_DNS_SERVER";

/// A resolver, and the server its errors name (as Go's do: "lookup NAME on SERVER: ...").
pub struct Dns {
    resolver: Resolver<TokioConnectionProvider>,
    server: String,
}

/// One SRV record: its target as DNS gives it (with the root's dot) and its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub target: String,
    pub port: u16,
}

impl Dns {
    /// The resolver `ETCDECK_DNS_SERVER` names, else the system's.
    pub fn from_env() -> Result<Dns, String> {
        match std::env::var(DNS_SERVER_VAR) {
            Ok(v) if !v.trim().is_empty() => Dns::at(v.trim()),
            _ => Dns::system(),
        }
    }

    /// A resolver that asks only `server` (`IP` or `IP:PORT`, port 53 by default).
    pub fn at(server: &str) -> Result<Dns, String> {
        let addr = server
            .parse::<SocketAddr>()
            .or_else(|_| server.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| format!("{DNS_SERVER_VAR}={server:?}: want an IP address, with a port or not"))?;
        let servers = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
        let config = ResolverConfig::from_parts(None, Vec::new(), servers);
        Ok(Dns::with(config, ResolverOpts::default(), addr.to_string()))
    }

    /// The system's resolver, as /etc/resolv.conf sets it up.
    pub fn system() -> Result<Dns, String> {
        let (config, opts) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| format!("reading the DNS configuration (/etc/resolv.conf): {e}"))?;
        let server = config
            .name_servers()
            .first()
            .map_or_else(|| "127.0.0.1:53".to_string(), |s| s.socket_addr.to_string());
        Ok(Dns::with(config, opts, server))
    }

    fn with(config: ResolverConfig, mut opts: ResolverOpts, server: String) -> Dns {
        // A member asks once, at its first start: nothing to keep.
        opts.cache_size = 0;
        let resolver = Resolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(opts)
            .build();
        Dns { resolver, server }
    }

    /// The SRV records of `name` (as `_service._tcp.domain`), by priority, then weight.
    pub async fn srv(&self, name: &str) -> Result<Vec<Record>, String> {
        let found = self.resolver.srv_lookup(absolute(name)).await.map_err(|e| self.failed(name, &e))?;
        let mut records: Vec<(u16, u16, Record)> = found
            .iter()
            .map(|r| (r.priority(), r.weight(), Record { target: r.target().to_ascii(), port: r.port() }))
            .collect();
        if records.is_empty() {
            return Err(format!("lookup {name} on {}: no such host", self.server));
        }
        records.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        Ok(records.into_iter().map(|(_, _, r)| r).collect())
    }

    /// `host:port` as one address (Go's net.ResolveTCPAddr: an IP as it is, a name's IPv4 address
    /// first).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let found = self.resolver.lookup_ip(absolute(host)).await.map_err(|e| self.failed(host, &e))?;
        let ips: Vec<IpAddr> = found.iter().collect();
        ips.iter()
            .find(|ip| ip.is_ipv4())
            .or(ips.first())
            .map(|ip| SocketAddr::new(*ip, port))
            .ok_or_else(|| format!("lookup {host} on {}: no such host", self.server))
    }

    fn failed(&self, name: &str, e: &hickory_resolver::ResolveError) -> String {
        if e.is_no_records_found() {
            format!("lookup {name} on {}: no such host", self.server)
        } else {
            format!("lookup {name} on {}: {e}", self.server)
        }
    }
}

/// A name with the root's dot, so no search domain is tried.
fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// etcd's service names: `base`, with `-ssl` for TLS, then `-NAME` for `--discovery-srv-name`.
pub fn service(base: &str, ssl: bool, srv_name: &str) -> String {
    let ssl = if ssl { "-ssl" } else { "" };
    if srv_name.is_empty() {
        format!("{base}{ssl}")
    } else {
        format!("{base}{ssl}-{srv_name}")
    }
}

/// A record as etcd's GetCluster reads it: its target's address, or why it has none.
pub struct Resolved {
    pub record: Record,
    pub addr: Result<SocketAddr, String>,
}

/// etcd's GetCluster over records already looked up: `name=url` for each usable record. A record
/// whose address is one of this member's advertised peer URLs' (`advertised`, with their addresses)
/// is this member's `name`; the others are named "0", "1", ... in order. A URL keeps the target's
/// host name (without the root's dot). A record of this member's with another scheme is dropped, as
/// is one whose target has no address; with nothing left, the last such reason is the error.
pub fn cluster_entries(
    scheme: &str,
    service: &str,
    name: &str,
    records: &[Resolved],
    advertised: &[(EtcdUrl, SocketAddr)],
) -> Result<Vec<String>, String> {
    let mut entries = Vec::new();
    let mut last_error = None;
    let mut others = 0;
    for r in records {
        let addr = match &r.addr {
            Ok(a) => *a,
            Err(e) => {
                last_error = Some(e.clone());
                continue;
            }
        };
        let host = r.record.target.trim_end_matches('.');
        let host_port = if host.contains(':') {
            format!("[{host}]:{}", r.record.port)
        } else {
            format!("{host}:{}", r.record.port)
        };
        let url = format!("{scheme}://{host_port}");
        let own = advertised.iter().find(|(_, a)| *a == addr);
        let entry_name = match own {
            Some((ap, _)) if ap.scheme != scheme => {
                last_error = Some(format!(
                    "bootstrap at {url} from DNS for {service} has scheme mismatch with expected peer {ap}"
                ));
                continue;
            }
            Some(_) => name.to_string(),
            None => {
                others += 1;
                (others - 1).to_string()
            }
        };
        entries.push(format!("{entry_name}={url}"));
    }
    match (entries.is_empty(), last_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(entries),
    }
}

/// etcd's GetCluster: the SRV records of `_SERVICE._tcp.DOMAIN` as `name=url` entries; the error
/// is etcd's "error querying DNS SRV records for _SERVICE ...".
pub async fn get_cluster(
    dns: &Dns,
    scheme: &str,
    service: &str,
    name: &str,
    domain: &str,
    advertised: &[EtcdUrl],
) -> Result<Vec<String>, String> {
    let querying = |e: String| format!("error querying DNS SRV records for _{service} {e}");
    let mut own = Vec::new();
    for u in advertised {
        own.push((u.clone(), dns.resolve(&u.host, u.port).await?));
    }
    let records = dns.srv(&format!("_{service}._tcp.{domain}")).await.map_err(querying)?;
    let mut resolved = Vec::new();
    for record in records {
        let addr = dns.resolve(&record.target, record.port).await;
        resolved.push(Resolved { record, addr });
    }
    cluster_entries(scheme, service, name, &resolved, &own).map_err(querying)
}

/// etcd's GetDNSClusterNames (3.5's): the `_etcd-server-ssl` records as https, then the
/// `_etcd-server` ones as http; an error only when neither gives a member, naming both failures.
pub async fn server_cluster(
    dns: &Dns,
    domain: &str,
    srv_name: &str,
    name: &str,
    advertised: &[EtcdUrl],
) -> Result<Vec<String>, String> {
    let ssl =
        get_cluster(dns, "https", &service("etcd-server", true, srv_name), name, domain, advertised).await;
    let plain =
        get_cluster(dns, "http", &service("etcd-server", false, srv_name), name, domain, advertised).await;
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for found in [ssl, plain] {
        match found {
            Ok(e) => entries.extend(e),
            Err(e) => errors.push(e),
        }
    }
    if entries.is_empty() {
        return Err(if errors.is_empty() {
            format!("no SRV records for _etcd-server-ssl or _etcd-server in {domain}")
        } else {
            errors.join("; ")
        });
    }
    Ok(entries)
}

/// etcd's GetClient: the endpoints `_etcd-client-ssl` (https) and `_etcd-client` (http) give, in
/// that order, as etcdctl prints them (the target keeps its root's dot); an error only when both
/// lookups fail.
pub async fn client_endpoints(dns: &Dns, domain: &str, srv_name: &str) -> Result<Vec<String>, String> {
    let mut endpoints = Vec::new();
    let mut errors = Vec::new();
    for (scheme, ssl) in [("https", true), ("http", false)] {
        let name = format!("_{}._tcp.{domain}", service("etcd-client", ssl, srv_name));
        match dns.srv(&name).await {
            Ok(records) => endpoints.extend(records.into_iter().map(|r| {
                if r.target.contains(':') {
                    format!("{scheme}://[{}]:{}", r.target, r.port)
                } else {
                    format!("{scheme}://{}:{}", r.target, r.port)
                }
            })),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 2 {
        return Err(format!("dns lookup errors: {} and {}", errors[0], errors[1]));
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(target: &str, port: u16, addr: &str) -> Resolved {
        Resolved { record: Record { target: target.into(), port }, addr: Ok(addr.parse().unwrap()) }
    }

    fn own(url: &str, addr: &str) -> (EtcdUrl, SocketAddr) {
        (EtcdUrl::parse(url).unwrap(), addr.parse().unwrap())
    }

    // The cases of etcd's TestSRVGetCluster (pkg/srv/srv_test.go).
    #[test]
    fn records_become_etcds_cluster_entries() {
        let records = [
            record("1.example.com.", 2480, "10.0.0.1:2480"),
            record("2.example.com.", 2480, "10.0.0.2:2480"),
            record("3.example.com.", 2480, "10.0.0.3:2480"),
        ];
        let none: [(EtcdUrl, SocketAddr); 0] = [];
        assert_eq!(cluster_entries("https", "etcd-server-ssl", "m", &[], &none), Ok(vec![]));
        assert_eq!(
            cluster_entries("https", "etcd-server-ssl", "m", &records, &none).unwrap(),
            ["0=https://1.example.com:2480", "1=https://2.example.com:2480", "2=https://3.example.com:2480"]
        );
        // The record at this member's advertised address is this member, named as it is.
        let me = [own("https://10.0.0.1:2480", "10.0.0.1:2480")];
        assert_eq!(
            cluster_entries("https", "etcd-server-ssl", "dnsClusterTest", &records, &me).unwrap(),
            [
                "dnsClusterTest=https://1.example.com:2480",
                "0=https://2.example.com:2480",
                "1=https://3.example.com:2480"
            ]
        );
        // ... and is dropped when its scheme is not the records'.
        assert_eq!(
            cluster_entries("http", "etcd-server", "dnsClusterTest", &records, &me).unwrap(),
            ["0=http://2.example.com:2480", "1=http://3.example.com:2480"]
        );
        let only_me = [record("1.example.com.", 2480, "10.0.0.1:2480")];
        assert_eq!(
            cluster_entries("http", "etcd-server", "m", &only_me, &me).unwrap_err(),
            "bootstrap at http://1.example.com:2480 from DNS for etcd-server has scheme mismatch with expected \
             peer https://10.0.0.1:2480"
        );
        // A target with no address is skipped; with nothing else, its error is the answer.
        let lost = Resolved {
            record: Record { target: "gone.example.com.".into(), port: 1 },
            addr: Err("lookup gone.example.com. on 127.0.0.1:53: no such host".into()),
        };
        assert_eq!(
            cluster_entries("https", "s", "m", std::slice::from_ref(&lost), &none).unwrap_err(),
            "lookup gone.example.com. on 127.0.0.1:53: no such host"
        );
        let mixed = [lost, record("2.example.com.", 2480, "10.0.0.2:2480")];
        assert_eq!(
            cluster_entries("https", "s", "m", &mixed, &none).unwrap(),
            ["0=https://2.example.com:2480"]
        );
    }

    #[test]
    fn service_names_are_etcds() {
        assert_eq!(service("etcd-client", true, ""), "etcd-client-ssl");
        assert_eq!(service("etcd-client", false, ""), "etcd-client");
        assert_eq!(service("etcd-client", true, "foo"), "etcd-client-ssl-foo");
        assert_eq!(service("etcd-server", false, "bar"), "etcd-server-bar");
    }

    #[test]
    fn a_bad_dns_server_setting_is_named() {
        let err = Dns::at("example.com").err().unwrap();
        assert_eq!(err, "ETCDECK_DNS_SERVER=\"example.com\": want an IP address, with a port or not");
    }
}
