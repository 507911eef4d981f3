//! A BuildKit session of kiln's own: the engine's `/session` call upgrades into a gRPC
//! connection on which kiln is the server, answering the build's requests for its secrets
//! (`RUN --mount=type=secret`) and its ssh agent (`RUN --mount=type=ssh`). A `/build`
//! that names the session gets them; nothing else is served (no files, no registry
//! credentials).
//!
//! A secret is read when the RUN asks for it, from the file or variable the build was
//! given, and sent to the engine only.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;

use bollard_buildkit_proto::health::health_check_response::ServingStatus;
use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bollard_buildkit_proto::moby::sshforward::v1::ssh_server::{Ssh, SshServer};
use bollard_buildkit_proto::moby::sshforward::v1::{BytesMessage, CheckAgentRequest, CheckAgentResponse};
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};

use crate::Engine;
use crate::build::SecretSource;
use crate::dial::Connection;

/// The gRPC methods the session serves, announced to the engine.
const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    "/moby.sshforward.v1.SSH/CheckAgent",
    "/moby.sshforward.v1.SSH/ForwardAgent",
];

/// A running session; the engine sees it end when this is dropped.
pub(crate) struct Session {
    serve: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.serve.abort();
    }
}

impl Engine {
    /// Opens session `id` on the engine, serving `secrets` and, with `ssh`, the agent
    /// at `ssh_agent` (the `SSH_AUTH_SOCK` the build was given).
    pub(crate) async fn start_session(
        &self,
        id: &str,
        secrets: &[(String, SecretSource)],
        ssh_agent: Option<PathBuf>,
    ) -> io::Result<Session> {
        let mut request = self
            .api_request(http::Method::POST, "/session")
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::UPGRADE, "h2c")
            .header("X-Docker-Expose-Session-Uuid", id)
            .header("X-Docker-Expose-Session-Name", "kiln")
            .header("X-Docker-Expose-Session-Sharedkey", "");
        for method in METHODS {
            request = request.header("X-Docker-Expose-Session-Grpc-Method", *method);
        }
        let body = Empty::new().map_err(|never| match never {}).boxed();
        let response = self.request(request.body(body).map_err(io::Error::other)?).await?;
        if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            let status = response.status();
            let message = crate::dial::error_message(response).await;
            return Err(io::Error::other(format!(
                "the engine refused a build session ({status}): {message}"
            )));
        }
        let upgraded = hyper::upgrade::on(response).await.map_err(io::Error::other)?;
        let connection = Connection::new(TokioIo::new(upgraded));
        let secrets = SecretStore { secrets: secrets.iter().cloned().collect() };
        let router = tonic::transport::Server::builder()
            .add_service(HealthServer::new(Healthy))
            .add_service(SecretsServer::new(secrets))
            .add_service(SshServer::new(Agent { socket: ssh_agent }));
        let serve = tokio::spawn(async move {
            // The connection ends with the build (or with the engine): nothing to report.
            let _ = router
                .serve_with_incoming(futures_util::stream::iter([Ok::<_, io::Error>(connection)]))
                .await;
        });
        Ok(Session { serve })
    }
}

/// The engine checks that the session is alive.
struct Healthy;

type MessageStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Health for Healthy {
    async fn check(&self, _: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse { status: ServingStatus::Serving as i32 }))
    }

    async fn list(&self, _: Request<HealthListRequest>) -> Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented("list"))
    }

    type WatchStream = MessageStream<HealthCheckResponse>;

    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

/// The build's secrets by id, read when asked for.
struct SecretStore {
    secrets: HashMap<String, SecretSource>,
}

#[tonic::async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = &request.get_ref().id;
        let data = match self.secrets.get(id) {
            None => return Err(Status::not_found(format!("secret `{id}` was not given to the build"))),
            Some(SecretSource::File(path)) => tokio::fs::read(path).await.map_err(|e| {
                Status::not_found(format!("secret `{id}`: cannot read {}: {e}", path.display()))
            })?,
            Some(SecretSource::Env(name)) => {
                std::env::var_os(name).map(std::ffi::OsString::into_encoded_bytes).ok_or_else(|| {
                    Status::not_found(format!("secret `{id}`: the variable `{name}` is not set"))
                })?
            }
        };
        Ok(Response::new(GetSecretResponse { data }))
    }
}

/// The ssh agent a build may reach.
struct Agent {
    socket: Option<PathBuf>,
}

impl Agent {
    fn socket(&self, id: &str) -> Result<&PathBuf, Status> {
        if !id.is_empty() && id != "default" {
            return Err(Status::not_found(format!("ssh `{id}`: kiln forwards the `default` agent only")));
        }
        self.socket
            .as_ref()
            .ok_or_else(|| Status::not_found("the build was given no ssh agent (`--ssh default`)"))
    }
}

#[tonic::async_trait]
impl Ssh for Agent {
    async fn check_agent(
        &self,
        request: Request<CheckAgentRequest>,
    ) -> Result<Response<CheckAgentResponse>, Status> {
        self.socket(&request.get_ref().id)?;
        Ok(Response::new(CheckAgentResponse {}))
    }

    type ForwardAgentStream = MessageStream<BytesMessage>;

    /// Pipes the RUN's agent connection to the agent's socket, both ways.
    async fn forward_agent(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        let id = request.metadata().get("id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let socket = self.socket(&id)?;
        let agent = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| Status::unavailable(format!("the ssh agent at {}: {e}", socket.display())))?;
        let (from_agent, mut to_agent) = agent.into_split();
        let mut incoming = request.into_inner();
        tokio::spawn(async move {
            while let Some(Ok(message)) = incoming.next().await {
                if to_agent.write_all(&message.data).await.is_err() {
                    return;
                }
            }
            let _ = to_agent.shutdown().await;
        });
        let outgoing = tokio_util::io::ReaderStream::new(from_agent).map(|chunk| match chunk {
            Ok(bytes) => Ok(BytesMessage { data: bytes.to_vec() }),
            Err(e) => Err(Status::unavailable(format!("the ssh agent: {e}"))),
        });
        Ok(Response::new(Box::pin(outgoing)))
    }
}
