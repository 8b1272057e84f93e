//! Connecting to one endpoint with the connection flags: dial and command timeouts, TLS (with
//! etcdctl's --insecure-skip-tls-verify through our own connector) and credentials.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::app::connection::ConnectConfig;

use crate::app::client::errors::{error_text, with_timeout};
use crate::app::client::insecure;

/// A client for one endpoint with the connection flags' timeouts, TLS and credentials.
pub async fn connect(config: &ConnectConfig, endpoint: &str) -> Result<Client, String> {
    connect_with(config, endpoint, false).await
}

/// As `connect`; with `require_leader`, etcd refuses (and ends watches) while the member has no
/// leader, as etcdctl's watch asks, so a tail on a member cut off from the cluster fails over
/// instead of waiting silently.
pub(super) async fn connect_with(
    config: &ConnectConfig,
    endpoint: &str,
    require_leader: bool,
) -> Result<Client, String> {
    let channel = channel(config, endpoint)?;
    let mut options =
        ConnectOptions::new().with_connect_timeout(config.dial_timeout).with_require_leader(require_leader);
    if let Some((user, password)) = &config.credentials {
        // A member restart drops simple tokens and JWTs expire: authenticate again when
        // etcd says the token is invalid, instead of failing until etcdeck restarts.
        options = options.with_user(user.clone(), password.clone()).with_auto_token_refresh(true);
    }
    // With credentials this authenticates, which is a request: bound it.
    with_timeout(
        config.dial_timeout + config.command_timeout,
        Client::from_channel(etcd_client::Channel::Tonic(channel), Some(options)),
    )
    .await
}

fn channel(config: &ConnectConfig, endpoint: &str) -> Result<tonic::transport::Channel, String> {
    // An https member URL gets TLS even when no TLS flag was given (then with the system's CA
    // store), as etcdctl does.
    let tls = endpoint.starts_with("https://").then(|| config.tls.clone().unwrap_or_default());
    let tls = tls.as_ref();
    // With --insecure-skip-tls-verify our own connector does TLS, so tonic must see plain http.
    let uri = match tls {
        Some(t) if t.skip_verify => endpoint.replacen("https://", "http://", 1),
        _ => endpoint.to_string(),
    };
    let mut ep = Endpoint::from_shared(uri)
        .map_err(|e| format!("invalid endpoint {endpoint}: {e}"))?
        // No per-request timeout on the channel: every call is bounded by `with_timeout`, which
        // reports etcd's own "context deadline exceeded".
        .connect_timeout(config.dial_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(config.command_timeout);
    match tls {
        Some(files) if files.skip_verify => {
            let connector = insecure::connector(files)?;
            Ok(ep.connect_with_connector_lazy(connector))
        }
        Some(files) => {
            let mut tls = ClientTlsConfig::new();
            tls = match &files.ca_pem {
                Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
                None => tls.with_native_roots(),
            };
            if let (Some(cert), Some(key)) = (&files.cert_pem, &files.key_pem) {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            if let Some(name) = &files.server_name {
                tls = tls.domain_name(name.clone());
            }
            ep = ep.tls_config(tls).map_err(|e| format!("TLS configuration: {}", error_text(&e)))?;
            Ok(ep.connect_lazy())
        }
        None => Ok(ep.connect_lazy()),
    }
}
