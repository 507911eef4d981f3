//! Showing a build: a live view on a terminal (a line per image, with overall progress),
//! prefixed plain lines (`[api] #3 RUN ...`) otherwise, or JSON lines on stdout. Failures
//! print the failing step's whole log and point at the manifest line it came from.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_build::{Event, Schedule, Status, Summary, TimedEvent};
use kiln_manifest::{Code, Diagnostic, Project, RenderOptions};

use crate::cli::ProgressMode;

pub(crate) struct Display<'a> {
    project: &'a Project,
    mode: Mode,
    quiet: bool,
    /// Per image: the number of steps seen, for `#n` in plain lines.
    steps: HashMap<String, usize>,
    width: usize,
}

enum Mode {
    Live { multi: MultiProgress, bars: HashMap<String, ProgressBar>, total: ProgressBar },
    Plain,
    Json,
}

impl<'a> Display<'a> {
    /// `None` asks for the live view.
    pub(crate) fn new(
        mode: Option<ProgressMode>,
        project: &'a Project,
        schedule: &Schedule,
        quiet: bool,
    ) -> Self {
        let width = schedule.images.iter().map(|i| project[*i].name.len()).max().unwrap_or(4);
        let mode = match mode {
            Some(ProgressMode::Json) => Mode::Json,
            Some(_) => Mode::Plain,
            None => {
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(&format!(
                    "{{spinner}} {{prefix:<{width}}}  {{wide_msg}} {{elapsed:>4}}"
                ))
                .expect("a valid template")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
                let mut bars = HashMap::new();
                for &i in &schedule.images {
                    let name = project[i].name.clone();
                    let bar = multi
                        .add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(name.clone()));
                    bar.set_message("queued");
                    bars.insert(name, bar);
                }
                let total = multi.add(ProgressBar::new(schedule.images.len() as u64));
                total.set_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len} images  {elapsed}")
                        .expect("a valid template"),
                );
                Mode::Live { multi, bars, total }
            }
        };
        Self { project, mode, quiet, steps: HashMap::new(), width }
    }

    pub(crate) fn event(&mut self, timed: &TimedEvent) {
        let event = &timed.event;
        let image = event.image().to_owned();
        if let Mode::Json = self.mode {
            json_line(timed);
            return;
        }
        let step_number = if let Event::Step { .. } = event {
            let n = self.steps.entry(image.clone()).or_default();
            *n += 1;
            *n
        } else {
            self.steps.get(&image).copied().unwrap_or(0)
        };
        let failure = match event {
            Event::Failed { error, step, span, log, .. } => {
                Some(self.failure(&image, error, step.as_deref(), *span, log))
            }
            _ => None,
        };
        let width = self.width;
        match &mut self.mode {
            Mode::Json => {}
            Mode::Plain => {
                let line = match event {
                    Event::Queued { .. } | Event::Summary { .. } => None,
                    Event::Started { engine: None, .. } => Some("started".to_owned()),
                    Event::Started { engine: Some(engine), .. } => Some(format!("started on {engine}")),
                    Event::Transferred { to, via, duration_ms, .. } => {
                        Some(format!("copied to {to} ({via}) in {}", human_duration(millis(*duration_ms))))
                    }
                    Event::Step { step, cached, .. } => {
                        Some(format!("#{step_number} {step}{}", if *cached { " (cached)" } else { "" }))
                    }
                    Event::Log { text, .. } => {
                        let mut lines = String::new();
                        for line in text.lines() {
                            let _ = writeln!(lines, "[{image:<width$}] #{step_number} {line}");
                        }
                        if !self.quiet {
                            errp!("{lines}");
                        }
                        None
                    }
                    Event::Finished { id, duration_ms, size, up_to_date, origin, .. } => {
                        Some(if *up_to_date {
                            format!("{} ({})", origin.describe(), short_id(id))
                        } else {
                            format!(
                                "built in {} ({}, {})",
                                human_duration(millis(*duration_ms)),
                                short_id(id),
                                human_size(*size)
                            )
                        })
                    }
                    Event::Failed { duration_ms, .. } => {
                        Some(format!("FAILED after {}", human_duration(millis(*duration_ms))))
                    }
                    Event::Skipped { reason, .. } => Some(reason.clone()),
                };
                if let Some(line) = line
                    && (!self.quiet || matches!(event, Event::Failed { .. }))
                {
                    errln!("[{image:<width$}] {line}");
                }
                if let Some(failure) = failure {
                    errp!("{failure}");
                }
            }
            Mode::Live { multi, bars, total } => {
                let Some(bar) = bars.get(&image) else { return };
                match event {
                    Event::Started { .. } => {
                        bar.set_message("building");
                        bar.reset_elapsed();
                        bar.enable_steady_tick(Duration::from_millis(120));
                    }
                    // BuildKit's bookkeeping steps say nothing about the image.
                    Event::Step { step, .. }
                        if step.starts_with("[internal]") || step == "copy /context /" => {}
                    Event::Step { step, cached, .. } => {
                        bar.set_message(format!("{step}{}", if *cached { " (cached)" } else { "" }));
                    }
                    Event::Finished { duration_ms, size, up_to_date, origin, .. } => {
                        total.inc(1);
                        bar.finish_with_message(if *up_to_date {
                            format!("✔ {}", origin.describe())
                        } else {
                            format!(
                                "✔ built in {} ({})",
                                human_duration(millis(*duration_ms)),
                                human_size(*size)
                            )
                        });
                    }
                    Event::Failed { .. } => {
                        total.inc(1);
                        bar.abandon_with_message("✘ failed");
                        if let Some(failure) = failure {
                            let _ = multi.println(failure.trim_end());
                        }
                    }
                    Event::Skipped { reason, .. } => {
                        total.inc(1);
                        bar.abandon_with_message(format!("- {reason}"));
                    }
                    Event::Queued { .. }
                    | Event::Log { .. }
                    | Event::Transferred { .. }
                    | Event::Summary { .. } => {}
                }
            }
        }
    }

    /// The failing step's log, then the manifest line the step came from.
    fn failure(
        &self,
        image: &str,
        error: &str,
        step: Option<&str>,
        span: Option<kiln_manifest::Span>,
        log: &str,
    ) -> String {
        let mut out = String::new();
        if !log.trim().is_empty() {
            let _ =
                writeln!(out, "--- log of `{image}`{}", step.map(|s| format!(", {s}")).unwrap_or_default());
            for line in log.lines() {
                let _ = writeln!(out, "  {line}");
            }
            let _ = writeln!(out, "---");
        }
        let mut diagnostic =
            Diagnostic::new(Code::BuildFailed, format!("image `{image}` failed: {}", error.trim()));
        if let Some(span) = span {
            diagnostic = diagnostic.label(span, "this instruction failed");
        }
        out.push_str(&kiln_manifest::render_diagnostic(
            &diagnostic,
            &self.project.sources,
            RenderOptions::default(),
        ));
        out
    }

    pub(crate) fn finish(&mut self, summary: &Summary) {
        match &self.mode {
            Mode::Json => {
                json_line(&TimedEvent::now(crate::commands::summary_event(summary)));
                return;
            }
            Mode::Live { total, .. } => total.finish_and_clear(),
            Mode::Plain => {}
        }
        errp!("{}", summary_table(self.project, summary));
    }
}

/// One JSON event on stdout. A closed pipe (`| head`) is not an error.
fn json_line(event: &TimedEvent) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", serde_json::to_string(event).expect("events serialize"))
        .and_then(|()| stdout.flush());
}

/// The rows as left-aligned columns two spaces apart, without trailing blanks.
pub(crate) fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: [usize; N] =
        std::array::from_fn(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0));
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The end-of-run table: image, status, duration, size, tags; then the wall time.
pub(crate) fn summary_table(project: &Project, summary: &Summary) -> String {
    let mut rows: Vec<[String; 5]> =
        vec![["IMAGE".into(), "STATUS".into(), "TIME".into(), "SIZE".into(), "TAGS".into()]];
    for outcome in &summary.outcomes {
        let image = &project[outcome.image];
        let (status, size, tags) = match &outcome.status {
            Status::Built { size, origin, .. } => (
                origin.describe().to_owned(),
                human_size(*size),
                image.tags.iter().map(|t| t.value.as_str()).collect::<Vec<_>>().join(", "),
            ),
            Status::Failed => ("failed".to_owned(), "-".to_owned(), "-".to_owned()),
            Status::Skipped(reason) => (reason.clone(), "-".to_owned(), "-".to_owned()),
            Status::Cancelled => ("cancelled".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        let up_to_date = matches!(outcome.status, Status::Built { up_to_date: true, .. });
        let time = if outcome.duration.is_zero() || up_to_date {
            "-".to_owned()
        } else {
            human_duration(outcome.duration)
        };
        rows.push([image.name.clone(), status, time, size, tags]);
    }
    let mut out = String::from("\n");
    out.push_str(&columns(&rows));
    let built = summary.outcomes.iter().filter(|o| matches!(o.status, Status::Built { .. })).count();
    let _ = writeln!(
        out,
        "\n{built} of {} images ready in {}{}",
        summary.outcomes.len(),
        human_duration(summary.wall),
        if summary.interrupted { " (interrupted)" } else { "" }
    );
    out
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

pub(crate) fn short_id(id: &str) -> &str {
    let hex = id.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

pub(crate) fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = seconds.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

pub(crate) fn human_size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let bytes = bytes as f64;
    if bytes >= 1e9 {
        format!("{:.2} GB", bytes / 1e9)
    } else if bytes >= 1e6 {
        format!("{:.1} MB", bytes / 1e6)
    } else if bytes >= 1e3 {
        format!("{:.1} kB", bytes / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// Progress of parallel pulls or pushes: a spinner per reference on a terminal, a line
/// per start and end otherwise.
pub(crate) struct Transfers {
    live: Option<(MultiProgress, HashMap<String, ProgressBar>)>,
    verb: &'static str,
    quiet: bool,
}

impl Transfers {
    /// `verb` is `pull` or `push`.
    pub(crate) fn new(references: &[String], verb: &'static str, quiet: bool) -> Self {
        let live = (std::io::IsTerminal::is_terminal(&std::io::stderr()) && !quiet).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let width = references.iter().map(String::len).max().unwrap_or(10);
            let style = ProgressStyle::with_template(&format!(
                "{{spinner}} {{prefix:<{width}}}  {{wide_msg}} {{elapsed:>4}}"
            ))
            .expect("a valid template");
            let bars = references
                .iter()
                .map(|r| {
                    let bar = multi
                        .add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(r.clone()));
                    bar.set_message("waiting");
                    (r.clone(), bar)
                })
                .collect();
            (multi, bars)
        });
        Self { live, verb, quiet }
    }

    pub(crate) fn started(&self, reference: &str) {
        match &self.live {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(reference) {
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar.set_message(format!("{}ing", self.verb));
                }
            }
            None if !self.quiet => errln!("{}ing {reference}", self.verb),
            None => {}
        }
    }

    pub(crate) fn status(&self, reference: &str, status: &str) {
        if let Some((_, bars)) = &self.live
            && let Some(bar) = bars.get(reference)
        {
            bar.set_message(status.to_owned());
        }
    }

    pub(crate) fn finished(&self, reference: &str, result: &Result<String, String>) {
        let text = match result {
            Ok(done) => done.clone(),
            Err(error) => format!("failed: {error}"),
        };
        match &self.live {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(reference) {
                    if result.is_ok() {
                        bar.finish_with_message(format!("✔ {text}"));
                    } else {
                        bar.abandon_with_message(format!("✘ {text}"));
                    }
                }
            }
            None if !self.quiet || result.is_err() => errln!("{reference}: {text}"),
            None => {}
        }
    }
}
