//! --insecure-skip-tls-verify: TLS that encrypts but does not check the server's certificate, as
//! etcdctl's flag does. tonic's TLS settings cannot express this, so this connector makes the TLS
//! connection itself and hands tonic the encrypted stream.

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::Uri;

use crate::app::connection::TlsFiles;
use crate::etcd::tls::AcceptAnyServerCert;

/// A connector for `Endpoint::connect_with_connector_lazy`.
pub fn connector(
    files: &TlsFiles,
) -> Result<
    impl tower::Service<
            Uri,
            Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
            Error = std::io::Error,
            Future = impl Send,
        > + Clone
        + Send
        + 'static,
    String,
> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)));
    let mut config = match (&files.cert_pem, &files.key_pem) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--cert: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("--key: {e}"))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| format!("--cert/--key: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tls = TlsConnector::from(Arc::new(config));
    Ok(tower::service_fn(move |uri: Uri| {
        let tls = tls.clone();
        async move {
            let invalid =
                |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string());
            let host = uri.host().ok_or_else(|| invalid("endpoint has no host"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
            let port = uri.port_u16().unwrap_or(2379);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(host)
                .map_err(|_| invalid("endpoint host is not a valid server name"))?;
            let stream = tls.connect(name, tcp).await?;
            Ok(TokioIo::new(stream))
        }
    }))
}
