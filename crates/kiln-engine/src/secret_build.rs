//! Builds that mount secrets or the ssh agent (`RUN --mount=type=secret|ssh`). Engine
//! 20.10's `/build` endpoint opens a session that serves neither, so these go through
//! BuildKit's own API (`/grpc`), with bollard's session providers.

use futures_util::TryStreamExt;
use kiln_context::TarStream;

use crate::build::{BuildError, BuildEvent, BuildSpec, SecretSource, lost_an_image};
use crate::{Engine, describe};

impl Engine {
    /// Builds through BuildKit's API: the secrets are served to the RUNs that mount them,
    /// over the session, and land in no layer, label or log. That API reports no steps
    /// while it builds; a failure still names the command that failed.
    pub(crate) async fn build_with_secrets(
        &self,
        spec: &BuildSpec,
        context: TarStream,
        emit: &mut (dyn FnMut(BuildEvent) + Send),
    ) -> Result<String, BuildError> {
        use bollard::grpc::build::{
            ImageBuildFrontendOptions, ImageBuildLoadInput, ImageBuildNetworkMode, ImageBuildPlatform,
        };
        let failed =
            |message: String| BuildError { message, step: None, log: String::new(), lost_image: false };
        let tag = spec
            .tag
            .clone()
            .ok_or_else(|| failed("internal error: a build with secrets needs a tag".to_owned()))?;
        let chunks: Vec<bytes::Bytes> =
            context.try_collect().await.map_err(|e| failed(format!("cannot read the build context: {e}")))?;
        let tar = bytes::Bytes::from(chunks.concat());
        let mut options = ImageBuildFrontendOptions::builder()
            .dockerfile(std::path::Path::new(&spec.dockerfile))
            .pull(spec.pull)
            .nocache(spec.no_cache)
            .enable_ssh(spec.ssh);
        for (key, value) in &spec.build_args {
            options = options.buildarg(key, value);
        }
        for (key, value) in &spec.labels {
            options = options.label(key, value);
        }
        if let Some(target) = &spec.target {
            options = options.target(target);
        }
        if let Some(platform) = &spec.platform {
            let mut parts = platform.split('/');
            options = options.platforms(&ImageBuildPlatform {
                os: parts.next().unwrap_or_default().to_owned(),
                architecture: parts.next().unwrap_or_default().to_owned(),
                variant: parts.next().map(str::to_owned),
            });
        }
        match spec.network.as_deref() {
            Some("none") => options = options.force_network_mode(&ImageBuildNetworkMode::None),
            Some("host") => options = options.force_network_mode(&ImageBuildNetworkMode::Host),
            None | Some("default") => {}
            Some(other) => {
                return Err(failed(format!(
                    "a build that mounts secrets runs on the `none` or `host` network or the engine's default, not on `{other}` (BuildKit's API takes no network name)"
                )));
            }
        }
        if !spec.cache_from.is_empty() {
            emit(BuildEvent::Log {
                step: None,
                text: "kiln: --cache-from is not used by builds with secrets (BuildKit's API here reads no inline cache)\n".to_owned(),
            });
        }
        for (id, source) in &spec.secrets {
            let source = match source {
                SecretSource::File(path) => bollard::grpc::build::SecretSource::File(path.clone()),
                SecretSource::Env(name) => bollard::grpc::build::SecretSource::Env(name.clone()),
            };
            options = options.set_secret(id, &source);
        }
        emit(BuildEvent::Log {
            step: None,
            text: "kiln: building with secrets through BuildKit's session API, which reports no steps\n"
                .to_owned(),
        });
        // bollard's session future cannot move between threads: it gets a thread and a
        // runtime of its own. (A cancelled run stops waiting for it; the engine finishes
        // the build, which the run's pin then names.)
        let (docker, options, name) = (self.docker.clone(), options.build(), tag.clone());
        let built = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the build's session: {e}"))?;
            runtime.block_on(async move {
                let driver = bollard::grpc::driver::moby::Moby::new(&docker);
                let load = ImageBuildLoadInput::Upload(tar);
                bollard::grpc::driver::Build::docker_build(driver, &name, options, load, None, None)
                    .await
                    .map_err(|err| match &err {
                        bollard::grpc::error::GrpcError::TonicStatus { err } => err.message().to_owned(),
                        other => other.to_string(),
                    })
            })
        })
        .await
        .map_err(|e| format!("internal error: {e}"))
        .and_then(|built| built);
        if let Err(message) = built {
            return Err(BuildError {
                lost_image: lost_an_image(&message),
                message,
                step: None,
                log: String::new(),
            });
        }
        match self.docker.inspect_image(&tag).await {
            Ok(image) => image.id.ok_or_else(|| failed(format!("the engine built `{tag}` but gives no ID"))),
            Err(err) => Err(failed(format!("the engine built `{tag}`, but: {}", describe(&err)))),
        }
    }
}
