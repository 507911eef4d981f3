//! Connections of kiln's own to the engine, for the two calls bollard cannot make as a
//! BuildKit build with secrets needs them: `/session`, which the engine upgrades into a
//! gRPC connection that kiln serves (the build's secrets and ssh agent), and `/build`
//! with that session and the context streamed as the request body.
//!
//! A connection is dialed as bollard dials the endpoint: the unix socket, the local
//! socket of an ssh tunnel, plain TCP, or TLS with the endpoint's `ca.pem`, `cert.pem` and
//! `key.pem` (the engine's certificate must chain to that CA, as the docker CLI requires).

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Engine;

/// A request body: empty, or the build context as it is read.
pub(crate) type Body = BoxBody<Bytes, io::Error>;

/// A byte stream to the engine, whatever carries it.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A connection, boxed so that every transport is one type (and a connection the engine
/// upgraded, which kiln then serves: `crate::session`).
pub(crate) struct Connection(Box<dyn Stream>);

impl Connection {
    pub(crate) fn new(stream: impl Stream) -> Self {
        Self(Box::new(stream))
    }
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Engine {
    /// A new connection to the engine.
    pub(crate) async fn dial(&self) -> io::Result<Connection> {
        let host = &self.endpoint.host;
        if let Some(tunnel) = &self.ssh_tunnel {
            return unix(tunnel.socket()).await;
        }
        if let Some(path) = host.strip_prefix("unix://") {
            return unix(Path::new(path)).await;
        }
        let address = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .ok_or_else(|| io::Error::other(format!("unsupported engine address `{host}`")))?
            .trim_end_matches('/');
        let tcp = tokio::net::TcpStream::connect(address).await?;
        let Some(dir) = &self.endpoint.tls else {
            return Ok(Connection::new(tcp));
        };
        let name = address.rsplit_once(':').map_or(address, |(name, _)| name);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let server = ServerName::try_from(name.to_owned())
            .map_err(|e| io::Error::other(format!("`{name}` is no host name for TLS: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(tls_config(dir)?);
        Ok(Connection::new(connector.connect(server, tcp).await?))
    }

    /// Sends one request on a new connection and returns the response (an upgrade,
    /// when asked, stays possible: see `hyper::upgrade::on`).
    pub(crate) async fn request(&self, request: http::Request<Body>) -> io::Result<http::Response<Incoming>> {
        let connection = self.dial().await?;
        let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(connection))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            // Ends with the connection: an error here is the request's, reported there.
            let _ = driver.with_upgrades().await;
        });
        sender.send_request(request).await.map_err(io::Error::other)
    }

    /// A request to the engine's API at `path` (`/build?...`), in the API version
    /// negotiated with it.
    pub(crate) fn api_request(&self, method: http::Method, path: &str) -> http::request::Builder {
        let host = match self.endpoint.host.strip_prefix("tcp://") {
            Some(address) if self.ssh_tunnel.is_none() => address.trim_end_matches('/').to_owned(),
            _ => "docker".to_owned(),
        };
        http::Request::builder()
            .method(method)
            .uri(format!("/v{}{path}", self.api_version))
            .header(http::header::HOST, host)
    }
}

/// What an engine's error response says: its JSON `message`, else its text.
pub(crate) async fn error_message(response: http::Response<Incoming>) -> String {
    let text =
        response.into_body().collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&text).trim().to_owned())
}

async fn unix(path: &Path) -> io::Result<Connection> {
    Ok(Connection::new(tokio::net::UnixStream::connect(path).await?))
}

/// TLS that trusts the endpoint's CA only, with its client certificate.
fn tls_config(dir: &Path) -> io::Result<Arc<rustls::ClientConfig>> {
    let read = |file: &str| -> io::Result<Vec<u8>> {
        std::fs::read(dir.join(file))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(file).display())))
    };
    let invalid = |file: &str, e: &dyn std::fmt::Display| {
        io::Error::other(format!("{}: {e}", dir.join(file).display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read("ca.pem")?) {
        roots.add(cert.map_err(|e| invalid("ca.pem", &e))?).map_err(|e| invalid("ca.pem", &e))?;
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read("cert.pem")?)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("cert.pem", &e))?;
    let key = PrivateKeyDer::from_pem_slice(&read("key.pem")?).map_err(|e| invalid("key.pem", &e))?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| invalid("cert.pem", &e))?;
    Ok(Arc::new(config))
}
