//! URLs in etcd's flags, checked as etcd checks them (pkg/types/urls.go), with etcd's error texts.

use std::fmt;

/// A URL etcd accepts in --listen-*/--advertise-*/--initial-cluster: scheme, host and port, no path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtcdUrl {
    pub scheme: String,
    /// Without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

impl EtcdUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").unwrap_or(("", text));
        if !matches!(scheme, "http" | "https" | "unix" | "unixs") {
            return Err(format!("URL scheme must be http, https, unix, or unixs: {text}"));
        }
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let not_host_port = || format!("URL address does not have the form \"host:port\": {text}");
        let (host, port) = split_host_port(authority).ok_or_else(not_host_port)?;
        if !path.is_empty() {
            return Err(format!("URL must not contain a path: {text}"));
        }
        let port = port.parse::<u16>().map_err(|_| not_host_port())?;
        Ok(Self { scheme: scheme.to_string(), host: host.to_string(), port })
    }

    /// A comma-separated list, as etcd's URL flags take; empty entries are refused as etcd does.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let urls = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err("no valid URLs given".into());
        }
        Ok(urls)
    }

    /// etcd's types.NewURLs, as member changes take peer URLs: each trimmed and checked, at least
    /// one, sorted; the URLs as etcd writes them.
    pub fn new_urls(urls: &[String]) -> Result<Vec<String>, String> {
        let mut parsed = urls
            .iter()
            .map(|u| Self::parse(u.trim()).map(|url| url.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if parsed.is_empty() {
            return Err("no valid URLs given".into());
        }
        parsed.sort();
        Ok(parsed)
    }

    /// "host:port" for binding or dialling the URL ("localhost" is the IPv4 loopback, as for etcd's
    /// default URLs; IPv6 hosts in brackets).
    pub fn host_port(&self) -> String {
        let host = self.dial_host();
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The host as dialled or bound.
    pub fn dial_host(&self) -> &str {
        if self.host == "localhost" {
            "127.0.0.1"
        } else {
            &self.host
        }
    }

    /// Whether the host is an IP address (listen URLs must name one, or localhost).
    pub fn host_is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

/// Go's net.SplitHostPort: "host:port" or "[v6]:port"; the port may be empty only as Go allows.
fn split_host_port(authority: &str) -> Option<(&str, &str)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = authority.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

impl fmt::Display for EtcdUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_etcd_accepts() {
        let u = EtcdUrl::parse("http://127.0.0.1:2379").unwrap();
        assert_eq!((u.scheme.as_str(), u.host.as_str(), u.port), ("http", "127.0.0.1", 2379));
        assert_eq!(EtcdUrl::parse("https://[::1]:2380").unwrap().to_string(), "https://[::1]:2380");
        assert_eq!(EtcdUrl::parse("unix://localhost:1").unwrap().host, "localhost");
        assert_eq!(EtcdUrl::parse_list("http://a:1, http://b:2").unwrap().len(), 2);
    }

    #[test]
    fn refuses_with_etcds_texts() {
        assert_eq!(
            EtcdUrl::parse("ftp://a:1").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: ftp://a:1"
        );
        assert_eq!(
            EtcdUrl::parse("127.0.0.1:2379").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: 127.0.0.1:2379"
        );
        assert_eq!(
            EtcdUrl::parse("http://localhost").unwrap_err(),
            "URL address does not have the form \"host:port\": http://localhost"
        );
        assert_eq!(EtcdUrl::parse("http://a:1/x").unwrap_err(), "URL must not contain a path: http://a:1/x");
        assert_eq!(EtcdUrl::parse("http://a:1/").unwrap_err(), "URL must not contain a path: http://a:1/");
        assert!(EtcdUrl::parse("http://a:99999").is_err());
        assert_eq!(EtcdUrl::parse_list(" , ").unwrap_err(), "no valid URLs given");
    }
}
