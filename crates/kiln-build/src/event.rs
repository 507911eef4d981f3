//! What a build reports as it goes. The scheduler sends these; the command line draws
//! them (live view, plain lines) or prints them as JSON lines (`--progress json`, whose
//! schema is `schema/build-events.schema.json`).

use kiln_manifest::Span;
use schemars::JsonSchema;
use serde::Serialize;

/// Where a finished image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Built by this run.
    Built,
    /// Up to date: the engine has its content tag.
    Local,
    /// Up to date: pulled from its registry, which had its content tag.
    Pulled,
    /// Up to date in its registry, which had its content tag; tagged there (`--push`),
    /// not pulled.
    Registry,
}

impl Origin {
    /// How the progress and the summary say it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Built => "built",
            Self::Local => "up to date",
            Self::Pulled => "up to date (pulled)",
            Self::Registry => "up to date (in its registry)",
        }
    }
}

/// One event, with the time it happened.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TimedEvent {
    /// RFC 3339, UTC, with milliseconds.
    pub time: String,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The image is selected and waits for its dependencies or a free job.
    Queued { image: String },
    /// Its build started.
    Started {
        image: String,
        /// The engine it builds on, when the run has several.
        #[serde(skip_serializing_if = "Option::is_none")]
        engine: Option<String>,
    },
    /// The image was copied to another engine of the pool (for a dependent's build, or
    /// for its tags there).
    Transferred {
        image: String,
        /// The engine it was copied to.
        to: String,
        /// `registry` (pushed once by digest, pulled there) or `save-load` (streamed).
        via: String,
        duration_ms: u64,
    },
    /// A build step started, or was found in the cache.
    Step { image: String, step: String, cached: bool },
    /// Output of a build step.
    Log { image: String, step: Option<String>, text: String },
    /// The image is built (or was already up to date) and tagged.
    Finished {
        image: String,
        /// The image ID.
        id: String,
        duration_ms: u64,
        size: u64,
        tags: Vec<String>,
        /// The input key (see `docs/identity.md`).
        key: String,
        /// Nothing changed since an earlier build: no build ran.
        up_to_date: bool,
        origin: Origin,
    },
    /// The build failed; no tag was moved.
    Failed {
        image: String,
        duration_ms: u64,
        error: String,
        /// The failing step, as the builder names it.
        step: Option<String>,
        /// The manifest location of the failing instruction, `file:line:col`.
        location: Option<String>,
        #[serde(skip)]
        #[schemars(skip)]
        span: Option<Span>,
        /// The failing step's whole output.
        log: String,
    },
    /// The image was not built.
    Skipped { image: String, reason: String },
    /// The last event of a run.
    Summary {
        wall_ms: u64,
        built: usize,
        up_to_date: usize,
        failed: usize,
        skipped: usize,
        interrupted: bool,
    },
}

impl Event {
    /// The image the event is about (empty for the summary).
    pub fn image(&self) -> &str {
        match self {
            Self::Summary { .. } => "",
            Self::Queued { image }
            | Self::Started { image, .. }
            | Self::Transferred { image, .. }
            | Self::Step { image, .. }
            | Self::Log { image, .. }
            | Self::Finished { image, .. }
            | Self::Failed { image, .. }
            | Self::Skipped { image, .. } => image,
        }
    }
}

impl TimedEvent {
    pub fn now(event: Event) -> Self {
        Self { time: now(), event }
    }
}

/// The current time, RFC 3339 with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
