//! A request's errors: one line of text for the screen, and for a write whether etcd may have seen
//! it, which alone decides whether it may be sent to another endpoint.

use std::future::Future;
use std::time::Duration;

/// Why a write failed, as far as whether etcd may have seen it: that alone decides whether the
/// write may be sent to another endpoint. Told from the error's structure, never from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum WriteError {
    /// No connection was made: the request never left, so another endpoint may be tried.
    Unreachable(String),
    /// etcd answered (with an error): it is not sent again.
    Answered(String),
    /// The request went out and then the time ran out or the connection broke: it may or may not
    /// have been applied, so it is not sent again.
    Unknown(String),
}

impl WriteError {
    pub(super) fn text(&self) -> &str {
        match self {
            WriteError::Unreachable(e) | WriteError::Answered(e) | WriteError::Unknown(e) => e,
        }
    }

    /// The retry decision: only a request that never left may go to the next endpoint.
    pub(super) fn may_try_another_endpoint(&self) -> bool {
        matches!(self, WriteError::Unreachable(_))
    }
}

/// Classifies a request's error. A status etcd sent carries no source; one tonic made from a
/// transport failure does, and a connection that was never made shows as the operating system's
/// refusal somewhere in that chain.
fn write_error(e: &etcd_client::Error) -> WriteError {
    use std::error::Error as _;
    let text = error_text(e);
    let cause = match e {
        etcd_client::Error::GRpcStatus(status) => match status.source() {
            None => return WriteError::Answered(text),
            Some(cause) => cause,
        },
        other => match other.source() {
            Some(cause) => cause,
            None => return WriteError::Unknown(text),
        },
    };
    if never_connected(cause) {
        WriteError::Unreachable(text)
    } else {
        WriteError::Unknown(text)
    }
}

/// Whether an error chain holds a failure to make a connection at all.
fn never_connected(mut cause: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    loop {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
            ) {
                return true;
            }
        }
        match cause.source() {
            Some(next) => cause = next,
            None => return false,
        }
    }
}

/// A write's request, bounded by `limit`: running out of time after it went out is an unknown
/// outcome.
pub(super) async fn send<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, WriteError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(write_error(&e)),
        Err(_) => Err(WriteError::Unknown(deadline_exceeded(limit))),
    }
}

pub(super) async fn with_timeout<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error_text(&e)),
        Err(_) => Err(deadline_exceeded(limit)),
    }
}

/// etcd's clients print "context deadline exceeded" when a request runs out of time.
pub(super) fn deadline_exceeded(limit: Duration) -> String {
    format!("context deadline exceeded (after {})", crate::etcd::duration::format_go_duration(limit))
}

/// One line for an error: a gRPC status shows etcd's own message ("etcdserver: ..."); other errors
/// show their whole cause chain ("transport error: ... Connection refused (os error 111)").
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(etcd_client::Error::GRpcStatus(status)) = e.downcast_ref::<etcd_client::Error>() {
        return status_text(status);
    }
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(status) = err.downcast_ref::<tonic::Status>() {
            parts.push(status_text(status));
            break;
        }
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

/// etcd's message for a status it sent ("etcdserver: request timed out"); for a status tonic made from
/// a transport failure, the message followed by its causes ("tcp connect error: Connection refused").
fn status_text(status: &tonic::Status) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !status.message().is_empty() {
        parts.push(status.message().to_string());
    }
    let mut cause = std::error::Error::source(status);
    while let Some(err) = cause {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = err.source();
    }
    if parts.is_empty() {
        format!("{:?}", status.code())
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::client::connect;
    use crate::app::connection::ConnectConfig;

    #[test]
    fn status_errors_show_etcds_message_and_transport_causes() {
        let etcd =
            etcd_client::Error::GRpcStatus(tonic::Status::unavailable("etcdserver: request timed out"));
        assert_eq!(error_text(&etcd), "etcdserver: request timed out");
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let mut status = tonic::Status::unavailable("tcp connect error");
        status.set_source(std::sync::Arc::new(refused));
        let err = etcd_client::Error::GRpcStatus(status);
        assert_eq!(error_text(&err), "tcp connect error: Connection refused (os error 111)");
        let bare = etcd_client::Error::GRpcStatus(tonic::Status::new(tonic::Code::Unavailable, ""));
        assert_eq!(error_text(&bare), "Unavailable");
    }

    fn status_with(kind: std::io::ErrorKind) -> etcd_client::Error {
        let mut status = tonic::Status::unavailable("transport error");
        status.set_source(std::sync::Arc::new(std::io::Error::new(kind, "from the OS")));
        etcd_client::Error::GRpcStatus(status)
    }

    #[test]
    fn a_writes_error_says_whether_etcd_may_have_seen_it_whatever_its_text() {
        // etcd's own answer, even one whose text mentions a refused connection: never sent again.
        let answered = etcd_client::Error::GRpcStatus(tonic::Status::unavailable(
            "etcdserver: Connection refused (tcp connect error)",
        ));
        let e = write_error(&answered);
        assert!(matches!(e, WriteError::Answered(_)) && !e.may_try_another_endpoint(), "{e:?}");
        // No connection made: another endpoint may take it.
        let e = write_error(&status_with(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(e, WriteError::Unreachable(_)) && e.may_try_another_endpoint(), "{e:?}");
        // The connection broke after the request went out: unknown, not sent again.
        let e = write_error(&status_with(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(e, WriteError::Unknown(_)) && !e.may_try_another_endpoint(), "{e:?}");
    }

    #[tokio::test]
    async fn a_write_to_a_closed_port_may_go_elsewhere_and_one_that_timed_out_may_not() {
        // Nothing listens here: the real error chain of a refused connection.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let config = ConnectConfig::plain(&[format!("http://127.0.0.1:{port}")]).expect("config");
        let mut client = connect(&config, &config.endpoints[0]).await.expect("a lazy client");
        let e = send(Duration::from_secs(5), client.put("k", "v", None)).await.expect_err("refused");
        assert!(matches!(e, WriteError::Unreachable(_)), "{e:?}");
        // Something accepts the connection and never answers: sent, then timed out.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = silent.local_addr().expect("addr");
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = silent.accept().await {
                held.push(conn);
            }
        });
        let config = ConnectConfig::plain(&[format!("http://{addr}")]).expect("config");
        let mut client = connect(&config, &config.endpoints[0]).await.expect("a lazy client");
        let e = send(Duration::from_millis(300), client.put("k", "v", None)).await.expect_err("silent");
        assert!(matches!(e, WriteError::Unknown(_)) && !e.may_try_another_endpoint(), "{e:?}");
        assert!(e.text().starts_with("context deadline exceeded"), "{e:?}");
        holder.abort();
    }
}
