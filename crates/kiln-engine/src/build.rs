//! One image build through the engine's `/build` endpoint, with its progress turned
//! into [`BuildEvent`]s: BuildKit's vertexes and logs, or the classic builder's
//! `Step n/m` text, both as "steps" with logs.

use std::collections::HashMap;

use bollard::models::{BuildInfo, BuildInfoAux};
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use kiln_context::TarStream;

use crate::{Engine, describe, describe_connection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    BuildKit,
    Classic,
}

/// What to build, besides the context stream.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The Dockerfile's path inside the context tar.
    pub dockerfile: String,
    pub builder: Builder,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub platform: Option<String>,
    /// `none`, `host`, or the engine's default when unset.
    pub network: Option<String>,
    pub target: Option<String>,
    /// Pull newer versions of outside base images.
    pub pull: bool,
    /// Use no layer cache.
    pub no_cache: bool,
    /// Images whose layers may serve as cache (BuildKit reads their inline cache from
    /// the registry; the classic builder needs them pulled).
    pub cache_from: Vec<String>,
    /// BuildKit session id (unique per build).
    pub session: String,
    /// The reference the image gets as it is created (the build's `t`), so that it is
    /// never untagged, and so never pruned, before kiln applies its other tags.
    pub tag: Option<String>,
    /// Build secrets by id, for `RUN --mount=type=secret` (BuildKit only).
    pub secrets: Vec<(String, SecretSource)>,
    /// Forward the ssh agent of `SSH_AUTH_SOCK` (`RUN --mount=type=ssh`).
    pub ssh: bool,
}

/// Where a build secret's value is read, by kiln, at build time: never sent anywhere but
/// to the RUN that mounts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(std::path::PathBuf),
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    Started,
    Done,
    Cached,
    Failed(String),
}

/// Progress of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A step changed state. `name` is BuildKit's vertex name (`[runtime 3/5] RUN ...`)
    /// or the classic builder's `Step 3/9 : RUN ...`.
    Step { id: String, name: String, state: StepState },
    /// Output of a step (or of the build, without a step).
    Log { step: Option<String>, text: String },
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    pub message: String,
    /// The name of the step that failed, when known.
    pub step: Option<String>,
    /// That step's whole output.
    pub log: String,
    /// The engine lost an image it was using because something removed it meanwhile
    /// (see [`lost_an_image`]): nothing in the build is wrong, and running it again works.
    pub lost_image: bool,
}

/// Whether a build failed because an image disappeared under it. Engine 20.10's classic
/// builder probes its layer cache by listing candidate images and then reading each
/// one: an image removed in between fails the probe with `unable to find image
/// "sha256:…"`. (After `FROM scratch` the candidates are every image without a parent,
/// so any removal on the engine can hit it.) An image removed while a step runs on it
/// fails with `failed to get digest sha256:…` or `No such image: sha256:…`.
pub fn lost_an_image(message: &str) -> bool {
    message.starts_with("unable to find image \"sha256:")
        || message.starts_with("No such image: sha256:")
        || (message.starts_with("failed to get digest sha256:")
            && message.ends_with("no such file or directory"))
}

/// Tracks the steps of one build, to turn repeated status updates into events and to
/// keep each step's log for the failure report.
#[derive(Default)]
struct Steps {
    names: HashMap<String, String>,
    states: HashMap<String, StepState>,
    logs: HashMap<String, String>,
    order: Vec<String>,
    failed: Option<String>,
    current_classic: Option<String>,
}

impl Steps {
    fn update(&mut self, id: &str, name: &str, state: StepState, emit: &mut dyn FnMut(BuildEvent)) {
        if !self.names.contains_key(id) {
            self.names.insert(id.to_owned(), name.to_owned());
            self.order.push(id.to_owned());
        }
        if self.states.get(id) == Some(&state) {
            return;
        }
        if let StepState::Failed(_) = state {
            self.failed.get_or_insert_with(|| id.to_owned());
        }
        self.states.insert(id.to_owned(), state.clone());
        emit(BuildEvent::Step { id: id.to_owned(), name: name.to_owned(), state });
    }

    fn log(&mut self, step: Option<&str>, text: &str, emit: &mut dyn FnMut(BuildEvent)) {
        if let Some(step) = step {
            self.logs.entry(step.to_owned()).or_default().push_str(text);
        }
        emit(BuildEvent::Log { step: step.map(str::to_owned), text: text.to_owned() });
    }

    fn failure(&self, message: String) -> BuildError {
        // Without an explicit failed step, the classic builder's current step failed.
        let step = self.failed.clone().or_else(|| self.current_classic.clone());
        BuildError {
            lost_image: lost_an_image(&message),
            message,
            log: step.as_ref().and_then(|s| self.logs.get(s)).cloned().unwrap_or_default(),
            step: step.and_then(|s| self.names.get(&s).cloned()),
        }
    }
}

impl Engine {
    /// Builds an image and returns its ID. Intermediate containers are always removed,
    /// even when the build fails. Dropping the returned future cancels the build. The
    /// context is sent as it is read, never held whole.
    pub async fn build(
        &self,
        spec: &BuildSpec,
        context: TarStream,
        emit: &mut (dyn FnMut(BuildEvent) + Send),
    ) -> Result<String, BuildError> {
        if spec.builder == Builder::BuildKit && (!spec.secrets.is_empty() || spec.ssh) {
            return self.build_with_session(spec, context, emit).await;
        }
        let body = bollard::body_try_stream(context);
        let endpoint = &self.endpoint;
        let stream = self.docker.build_image(options(spec), None, Some(body)).map_err(|err| {
            // The engine did not fail the build: the connection went away under it.
            if is_transport_error(&err) {
                format!("lost the connection to the engine at {endpoint}: {}", describe_connection(&err))
            } else {
                describe(&err)
            }
        });
        follow(stream, emit).await
    }

    /// A BuildKit build whose RUNs mount secrets or the ssh agent: bollard's session
    /// serves neither, so kiln opens one of its own ([`crate::session`]) and sends the
    /// build, naming it, on a connection of its own ([`crate::dial`]).
    async fn build_with_session(
        &self,
        spec: &BuildSpec,
        context: TarStream,
        emit: &mut (dyn FnMut(BuildEvent) + Send),
    ) -> Result<String, BuildError> {
        let failed =
            |message: String| BuildError { message, step: None, log: String::new(), lost_image: false };
        let lost = |e: std::io::Error| {
            failed(format!("lost the connection to the engine at {}: {e}", self.endpoint))
        };
        let agent = if spec.ssh {
            let socket = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()).ok_or_else(|| {
                failed("`--ssh default` forwards the agent of SSH_AUTH_SOCK, which is not set".to_owned())
            })?;
            Some(std::path::PathBuf::from(socket))
        } else {
            None
        };
        let _session = self.start_session(&spec.session, &spec.secrets, agent).await.map_err(lost)?;
        let query = serde_urlencoded::to_string(options(spec))
            .map_err(|e| failed(format!("internal error: the build's options: {e}")))?;
        let body = BodyExt::boxed(http_body_util::StreamBody::new(context.map_ok(hyper::body::Frame::data)));
        let request = self
            .api_request(http::Method::POST, &format!("/build?{query}"))
            .header(http::header::CONTENT_TYPE, "application/x-tar")
            .body(body)
            .map_err(|e| failed(format!("internal error: the build request: {e}")))?;
        let response = self.request(request).await.map_err(lost)?;
        let status = response.status();
        if !status.is_success() {
            let message = crate::dial::error_message(response).await;
            return Err(failed(format!("the engine refused the build ({status}): {message}")));
        }
        let endpoint = self.endpoint.to_string();
        follow(json_messages(response.into_body(), endpoint), emit).await
    }
}

/// The engine's build options for `spec` (the query of `/build`).
fn options(spec: &BuildSpec) -> bollard::query_parameters::BuildImageOptions {
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&spec.dockerfile)
        .rm(true)
        .forcerm(true)
        .buildargs(&spec.build_args)
        .labels(&spec.labels)
        .version(match spec.builder {
            Builder::BuildKit => BuilderVersion::BuilderBuildKit,
            Builder::Classic => BuilderVersion::BuilderV1,
        });
    if spec.builder == Builder::BuildKit {
        options = options.session(&spec.session);
    }
    if let Some(platform) = &spec.platform {
        options = options.platform(platform);
    }
    if let Some(network) = &spec.network {
        options = options.networkmode(network);
    }
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    if let Some(tag) = &spec.tag {
        options = options.t(tag);
    }
    if spec.pull {
        options = options.pull("1");
    }
    if spec.no_cache {
        options = options.nocache(true);
    }
    if !spec.cache_from.is_empty() {
        options = options.cachefrom(&spec.cache_from);
    }
    options.build()
}

/// The engine's build messages, one JSON object after another, as they arrive.
fn json_messages(
    body: hyper::body::Incoming,
    endpoint: String,
) -> impl futures_util::Stream<Item = Result<BuildInfo, String>> {
    futures_util::stream::unfold((body, Vec::new(), false), move |(mut body, mut buffer, done)| {
        let endpoint = endpoint.clone();
        async move {
            loop {
                // A whole message in the buffer first.
                let mut messages = serde_json::Deserializer::from_slice(&buffer).into_iter::<BuildInfo>();
                match messages.next() {
                    Some(Ok(message)) => {
                        let used = messages.byte_offset();
                        buffer.drain(..used);
                        return Some((Ok(message), (body, buffer, done)));
                    }
                    Some(Err(e)) if !e.is_eof() => {
                        return Some((
                            Err(format!("the engine sent a message kiln cannot read: {e}")),
                            (body, Vec::new(), true),
                        ));
                    }
                    _ if done => return None,
                    _ => {}
                }
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            buffer.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => {
                        return Some((
                            Err(format!("lost the connection to the engine at {endpoint}: {e}")),
                            (body, Vec::new(), true),
                        ));
                    }
                    None if buffer.iter().all(u8::is_ascii_whitespace) => return None,
                    None => {
                        return Some((
                            Err("the engine's last build message was cut short".to_owned()),
                            (body, Vec::new(), true),
                        ));
                    }
                }
            }
        }
    })
}

/// Follows a build's messages into events, to its image ID or its failure.
async fn follow(
    stream: impl futures_util::Stream<Item = Result<BuildInfo, String>>,
    emit: &mut (dyn FnMut(BuildEvent) + Send),
) -> Result<String, BuildError> {
    let mut stream = std::pin::pin!(stream);
    let mut steps = Steps::default();
    let mut image_id = None;
    while let Some(item) = stream.next().await {
        let item = item.map_err(|message| steps.failure(message))?;
        if let Some(detail) = item.error_detail.as_ref().and_then(|d| d.message.clone()) {
            return Err(steps.failure(detail));
        }
        match item.aux {
            Some(BuildInfoAux::Default(id)) => image_id = id.id,
            Some(BuildInfoAux::BuildKit(status)) => {
                for vertex in status.vertexes {
                    let state = if !vertex.error.is_empty() {
                        StepState::Failed(vertex.error.clone())
                    } else if vertex.cached {
                        StepState::Cached
                    } else if vertex.completed.is_some() {
                        StepState::Done
                    } else if vertex.started.is_some() {
                        StepState::Started
                    } else {
                        continue;
                    };
                    steps.update(&vertex.digest, &vertex.name, state, emit);
                }
                for log in status.logs {
                    let text = String::from_utf8_lossy(&log.msg).into_owned();
                    steps.log(Some(&log.vertex), &text, emit);
                }
            }
            None => {}
        }
        if let Some(text) = item.stream.as_deref() {
            classic_text(&mut steps, text, emit);
        }
    }
    // A build can stop without an error message when the engine goes away.
    image_id.ok_or_else(|| steps.failure("the engine ended the build without an image".into()))
}

/// The classic builder streams text: `Step 2/4 : COPY a b` starts a step, the rest is
/// its output.
fn classic_text(steps: &mut Steps, text: &str, emit: &mut dyn FnMut(BuildEvent)) {
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if let Some(rest) = trimmed.strip_prefix("Step ")
            && let Some((number, _)) = rest.split_once(' ')
        {
            if let Some(previous) = steps.current_classic.take() {
                let name = steps.names.get(&previous).cloned().unwrap_or_default();
                steps.update(&previous, &name, StepState::Done, emit);
            }
            let id = format!("step-{number}");
            steps.update(&id, trimmed, StepState::Started, emit);
            steps.current_classic = Some(id);
            continue;
        }
        if trimmed == " ---> Using cache"
            && let Some(current) = steps.current_classic.clone()
        {
            let name = steps.names.get(&current).cloned().unwrap_or_default();
            steps.update(&current, &name, StepState::Cached, emit);
        }
        let step = steps.current_classic.clone();
        steps.log(step.as_deref(), line, emit);
    }
}

/// Whether a request failed on the way rather than at the engine: a connection reset, a
/// body cut short, an engine that went away.
fn is_transport_error(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    !matches!(
        err,
        E::DockerResponseServerError { .. } | E::DockerStreamError { .. } | E::JsonDataError { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::lost_an_image;

    #[test]
    fn recognises_images_lost_to_a_concurrent_removal() {
        // Messages seen from Engine 20.10 while another client removed images.
        assert!(lost_an_image(
            "unable to find image \"sha256:70d7b229698201a7d06541032820862cbed049e7bdc4484da71c511daf159d9e\""
        ));
        assert!(lost_an_image(
            "failed to get digest sha256:be10986a81f2482988020402027522b442c65ce514bb696e255bcab8227ad5b1: open /var/lib/docker/image/overlay2/imagedb/content/sha256/be10986a81f2482988020402027522b442c65ce514bb696e255bcab8227ad5b1: no such file or directory"
        ));
        assert!(!lost_an_image("The command '/bin/sh -c false' returned a non-zero code: 1"));
        assert!(!lost_an_image("pull access denied for nothing, repository does not exist"));
    }
}
