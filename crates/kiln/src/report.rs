//! `kiln build --report FILE.html|FILE.svg`: the run as a timeline people would rather
//! look at than read. One row per build slot (per engine on a pool), each image a bar
//! from its start to its end, coloured by how it ended; the critical path outlined; the
//! time an image waited for a slot after its dependencies were ready drawn under its bar;
//! cache hits and sizes in the bar's tooltip and the table. Self-contained: no script, no
//! font, no request.
// Coordinates come from row counts and step counts, far below f64's exact range.
#![allow(clippy::cast_precision_loss)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use kiln_build::{Event, Origin};
use kiln_graph::Graph;
use kiln_manifest::Project;

use crate::progress::{human_duration, human_size};

/// The events of a run, timed as they arrive.
pub(crate) struct Recorder {
    start: Instant,
    events: Vec<(f64, Event)>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self { start: Instant::now(), events: Vec::new() }
    }

    /// Keeps an event, with its time; not build output (`Log`), which the report does not
    /// show and which can be large.
    pub(crate) fn record(&mut self, event: &Event) {
        if !matches!(event, Event::Log { .. }) {
            self.events.push((self.start.elapsed().as_secs_f64(), event.clone()));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Built,
    UpToDate,
    Failed,
}

impl Outcome {
    fn colour(self) -> &'static str {
        match self {
            Self::Built => "#3b82f6",
            Self::UpToDate => "#9ca3af",
            Self::Failed => "#dc2626",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Self::Built => "built",
            Self::UpToDate => "up to date",
            Self::Failed => "failed",
        }
    }
}

/// One image's build as the report draws it.
struct Bar {
    image: String,
    engine: Option<String>,
    /// When its dependencies were all ready (the run's start for the first ones).
    ready: f64,
    start: f64,
    end: f64,
    outcome: Outcome,
    steps: usize,
    cached: usize,
    size: u64,
    critical: bool,
    /// Its row: a build slot of its engine.
    lane: usize,
}

/// Rows of the timeline: the build slots of an engine, or the images that were up to
/// date (checked, not built: they take no slot).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Group {
    Slots(Option<String>),
    UpToDate,
}

struct Timeline {
    bars: Vec<Bar>,
    /// Per group of rows (an engine's slots; images found up to date, which take no
    /// slot), how many rows it takes.
    lanes: Vec<(Group, usize)>,
    end: f64,
    skipped: Vec<(String, String)>,
    critical_path: Vec<String>,
}

fn timeline(recorder: &Recorder, project: &Project, graph: &Graph) -> Timeline {
    let mut starts: HashMap<&str, (f64, Option<String>)> = HashMap::new();
    let mut steps: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut bars = Vec::new();
    let mut skipped = Vec::new();
    for (time, event) in &recorder.events {
        match event {
            Event::Started { image, engine } => {
                starts.insert(image, (*time, engine.clone()));
            }
            Event::Step { image, cached, step } if !step.starts_with("[internal]") => {
                let entry = steps.entry(image).or_default();
                entry.0 += 1;
                entry.1 += usize::from(*cached);
            }
            Event::Finished { image, size, origin, .. } => {
                let outcome = if *origin == Origin::Built { Outcome::Built } else { Outcome::UpToDate };
                bars.push(bar(image, *time, outcome, *size, &starts, &steps));
            }
            Event::Failed { image, .. } => bars.push(bar(image, *time, Outcome::Failed, 0, &starts, &steps)),
            Event::Skipped { image, reason } => skipped.push((image.clone(), reason.clone())),
            _ => {}
        }
    }
    let ends: HashMap<String, f64> = bars.iter().map(|b| (b.image.clone(), b.end)).collect();
    let critical = critical_path(&bars, &ends, project, graph);
    for bar in &mut bars {
        bar.critical = critical.contains(&bar.image);
        if let Some(id) = project.image_id(&bar.image) {
            bar.ready = graph
                .dependencies(id)
                .iter()
                .filter_map(|d| ends.get(&project[*d].name))
                .fold(0.0, |ready: f64, end| ready.max(*end))
                .min(bar.start);
        }
    }
    // Rows: each bar goes to the first row of its engine that is free when it starts.
    bars.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut lanes: Vec<(Group, Vec<f64>)> = Vec::new();
    for bar in &mut bars {
        let group = group_of(bar);
        let engine = lanes.iter().position(|(g, _)| *g == group).unwrap_or_else(|| {
            lanes.push((group, Vec::new()));
            lanes.len() - 1
        });
        let rows = &mut lanes[engine].1;
        let lane = rows.iter().position(|free_at| *free_at <= bar.start + 1e-6).unwrap_or_else(|| {
            rows.push(0.0);
            rows.len() - 1
        });
        rows[lane] = bar.end;
        bar.lane = lane;
    }
    let end = bars.iter().map(|b| b.end).fold(0.0, f64::max);
    // Up-to-date images last, under the slots.
    lanes.sort_by_key(|(group, _)| *group == Group::UpToDate);
    Timeline {
        bars,
        lanes: lanes.into_iter().map(|(group, rows)| (group, rows.len())).collect(),
        end: end.max(0.001),
        skipped,
        critical_path: critical,
    }
}

fn group_of(bar: &Bar) -> Group {
    if bar.outcome == Outcome::UpToDate { Group::UpToDate } else { Group::Slots(bar.engine.clone()) }
}

/// The run's own critical path: from the image that ended last, back through the
/// dependency each one waited for last.
fn critical_path(bars: &[Bar], ends: &HashMap<String, f64>, project: &Project, graph: &Graph) -> Vec<String> {
    let Some(last) = bars.iter().max_by(|a, b| a.end.total_cmp(&b.end)) else { return Vec::new() };
    let mut path = vec![last.image.clone()];
    while let Some(id) = project.image_id(&path[path.len() - 1]) {
        let waited_for = graph
            .dependencies(id)
            .iter()
            .map(|d| project[*d].name.clone())
            .filter_map(|name| ends.get(&name).map(|end| (name, *end)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match waited_for {
            Some((name, _)) => path.push(name),
            None => break,
        }
    }
    path.reverse();
    path
}

fn bar(
    image: &str,
    end: f64,
    outcome: Outcome,
    size: u64,
    starts: &HashMap<&str, (f64, Option<String>)>,
    steps: &HashMap<&str, (usize, usize)>,
) -> Bar {
    let (start, engine) = starts.get(image).cloned().unwrap_or((end, None));
    let (steps, cached) = steps.get(image).copied().unwrap_or_default();
    Bar {
        image: image.to_owned(),
        engine,
        ready: 0.0,
        start,
        end,
        outcome,
        steps,
        cached,
        size,
        critical: false,
        lane: 0,
    }
}

/// Writes the report: an HTML page (timeline and table) for `.html`, the timeline alone
/// for `.svg`.
pub(crate) fn write(
    path: &std::path::Path,
    recorder: &Recorder,
    project: &Project,
    graph: &Graph,
) -> std::io::Result<()> {
    let timeline = timeline(recorder, project, graph);
    let svg = svg(&timeline);
    let is_svg = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let text = if is_svg { svg } else { html(&timeline, &svg) };
    kiln_emit::write_atomically(path, &text)
}

const LABELS: f64 = 190.0;
const WIDTH: f64 = 960.0;
const ROW: f64 = 30.0;
const TOP: f64 = 56.0;

fn svg(timeline: &Timeline) -> String {
    let rows: usize = timeline.lanes.iter().map(|(_, n)| *n).sum();
    let height = TOP + ROW * rows as f64 + 60.0;
    let total = LABELS + WIDTH + 20.0;
    let x = |t: f64| LABELS + WIDTH * t / timeline.end;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total:.0}" height="{height:.0}" viewBox="0 0 {total:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(out, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let built = timeline.bars.iter().filter(|b| b.outcome == Outcome::Built).count();
    let _ = write!(
        out,
        r##"<text x="10" y="20" font-size="15" font-weight="bold">kiln build: {} images in {}</text><text x="10" y="38" fill="#4b5563">{built} built, {} up to date, {} failed, {} skipped; critical path: {}</text>"##,
        timeline.bars.len() + timeline.skipped.len(),
        escape(&human_duration(Duration::from_secs_f64(timeline.end))),
        timeline.bars.iter().filter(|b| b.outcome == Outcome::UpToDate).count(),
        timeline.bars.iter().filter(|b| b.outcome == Outcome::Failed).count(),
        timeline.skipped.len(),
        escape(&timeline.critical_path.join(" → ")),
    );
    // Time axis.
    let step = nice_step(timeline.end / 8.0);
    let mut tick = 0.0;
    while tick <= timeline.end + 1e-9 {
        let _ = write!(
            out,
            r##"<line x1="{0:.1}" y1="{1:.0}" x2="{0:.1}" y2="{2:.0}" stroke="#e5e7eb"/><text x="{0:.1}" y="{3:.0}" text-anchor="middle" fill="#6b7280">{4}</text>"##,
            x(tick),
            TOP - 4.0,
            TOP + ROW * rows as f64,
            TOP + ROW * rows as f64 + 14.0,
            format_seconds(tick)
        );
        tick += step;
    }
    // Rows.
    let mut first_row: HashMap<Group, usize> = HashMap::new();
    let mut row = 0;
    for (group, count) in &timeline.lanes {
        first_row.insert(group.clone(), row);
        for lane in 0..*count {
            let y = TOP + ROW * (row + lane) as f64;
            let label = match group {
                Group::Slots(Some(engine)) => format!("{} · slot {}", short_engine(engine), lane + 1),
                Group::Slots(None) => format!("slot {}", lane + 1),
                Group::UpToDate if lane == 0 => "up to date (no slot)".to_owned(),
                Group::UpToDate => String::new(),
            };
            let _ = write!(
                out,
                r##"<text x="10" y="{:.0}" fill="#374151">{}</text>"##,
                y + ROW / 2.0 + 4.0,
                escape(&label)
            );
        }
        row += count;
    }
    for bar in &timeline.bars {
        let y = TOP + ROW * (first_row[&group_of(bar)] + bar.lane) as f64;
        let (x0, x1) = (x(bar.start), x(bar.end).max(x(bar.start) + 2.0));
        if bar.start - bar.ready > (timeline.end / 100.0).max(0.05) {
            let _ = write!(
                out,
                r##"<line x1="{:.1}" y1="{2:.1}" x2="{:.1}" y2="{2:.1}" stroke="#f59e0b" stroke-width="2" stroke-dasharray="4 3"><title>{3} waited {4} for a slot</title></line>"##,
                x(bar.ready),
                x0,
                y + ROW - 4.0,
                escape(&bar.image),
                escape(&human_duration(Duration::from_secs_f64(bar.start - bar.ready)))
            );
        }
        let stroke = if bar.critical { r##" stroke="#ea580c" stroke-width="2.5""## } else { "" };
        let cached = if bar.steps > 0 {
            format!(", {}/{} steps cached", bar.cached, bar.steps)
        } else {
            String::new()
        };
        let size = if bar.size > 0 { format!(", {}", human_size(bar.size)) } else { String::new() };
        let _ = write!(
            out,
            r#"<g><title>{name}: {word} in {duration}{cached}{size}{critical}</title><rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="3" fill="{fill}"{stroke}/>"#,
            name = escape(&bar.image),
            word = bar.outcome.word(),
            duration = escape(&human_duration(Duration::from_secs_f64(bar.end - bar.start))),
            critical = if bar.critical { " (critical path)" } else { "" },
            y = y + 3.0,
            w = x1 - x0,
            h = ROW - 10.0,
            fill = bar.outcome.colour(),
        );
        if bar.steps > 0 && bar.cached > 0 {
            // The cached share of the steps, as a lighter band at the bar's foot.
            let share = bar.cached as f64 / bar.steps as f64;
            let _ = write!(
                out,
                r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="4" fill="#10b981"/>"##,
                y + ROW - 11.0,
                (x1 - x0) * share
            );
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#111827">{}</text></g>"##,
            x0 + 4.0,
            y + ROW / 2.0 + 3.0,
            escape(&bar.image)
        );
    }
    // Legend.
    let y = TOP + ROW * rows as f64 + 34.0;
    let mut at = 10.0;
    for (colour, word, kind) in [
        ("#3b82f6", "built", "fill"),
        ("#9ca3af", "up to date", "fill"),
        ("#dc2626", "failed", "fill"),
        ("#10b981", "cached steps", "fill"),
        ("#ea580c", "critical path", "stroke"),
        ("#f59e0b", "waiting for a slot", "line"),
    ] {
        let mark = match kind {
            "fill" => format!(r#"<rect x="{at}" y="{}" width="14" height="10" fill="{colour}"/>"#, y - 9.0),
            "stroke" => format!(
                r#"<rect x="{at}" y="{}" width="14" height="10" fill="none" stroke="{colour}" stroke-width="2.5"/>"#,
                y - 9.0
            ),
            _ => format!(
                r#"<line x1="{at}" y1="{0}" x2="{1}" y2="{0}" stroke="{colour}" stroke-width="2" stroke-dasharray="4 3"/>"#,
                y - 4.0,
                at + 14.0
            ),
        };
        let _ = write!(out, r##"{mark}<text x="{}" y="{y}" fill="#374151">{word}</text>"##, at + 20.0);
        at += 40.0 + 7.0 * word.len() as f64;
    }
    out.push_str("</svg>\n");
    out
}

fn html(timeline: &Timeline, svg: &str) -> String {
    let pool = timeline.bars.iter().any(|b| b.engine.is_some());
    let engine_cell = |bar: &Bar| {
        if pool { format!("<td>{}</td>", escape(bar.engine.as_deref().unwrap_or(""))) } else { String::new() }
    };
    let mut rows = String::new();
    let mut bars: Vec<&Bar> = timeline.bars.iter().collect();
    bars.sort_by(|a, b| a.start.total_cmp(&b.start));
    for bar in bars {
        let _ = write!(
            rows,
            "<tr><td>{}{}</td><td class=\"{}\">{}</td>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&bar.image),
            if bar.critical { " <span class=\"critical\">critical</span>" } else { "" },
            bar.outcome.word().replace(' ', "-"),
            bar.outcome.word(),
            engine_cell(bar),
            format_seconds(bar.start),
            escape(&human_duration(Duration::from_secs_f64(bar.end - bar.start))),
            escape(&human_duration(Duration::from_secs_f64((bar.start - bar.ready).max(0.0)))),
            if bar.steps > 0 { format!("{}/{}", bar.cached, bar.steps) } else { "-".to_owned() },
            if bar.size > 0 { human_size(bar.size) } else { "-".to_owned() },
        );
    }
    for (image, reason) in &timeline.skipped {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td class=\"skipped\">skipped</td><td colspan=\"{}\">{}</td></tr>",
            escape(image),
            if pool { 6 } else { 5 },
            escape(reason)
        );
    }
    let engine_header = if pool { "<th>engine</th>" } else { "" };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kiln build report</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #111827; }}
table {{ border-collapse: collapse; margin-top: 16px; }}
td, th {{ padding: 4px 12px; border-bottom: 1px solid #e5e7eb; text-align: left; }}
.built {{ color: #1d4ed8; }} .up-to-date {{ color: #4b5563; }} .failed {{ color: #b91c1c; font-weight: bold; }} .skipped {{ color: #92400e; }}
.critical {{ color: #ea580c; font-size: 11px; border: 1px solid #ea580c; border-radius: 3px; padding: 0 3px; }}
</style></head>
<body>
{svg}
<table><thead><tr><th>image</th><th>status</th>{engine_header}<th>started at</th><th>took</th><th>waited for a slot</th><th>cached steps</th><th>size</th></tr></thead>
<tbody>{rows}</tbody></table>
</body></html>
"#
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn short_engine(engine: &str) -> String {
    let tail: String = engine.chars().rev().take(28).collect::<Vec<_>>().into_iter().rev().collect();
    if tail.len() < engine.len() { format!("…{tail}") } else { tail }
}

/// A round tick interval near `rough` seconds.
fn nice_step(rough: f64) -> f64 {
    [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]
        .into_iter()
        .find(|step| *step >= rough)
        .unwrap_or(3600.0)
}

fn format_seconds(seconds: f64) -> String {
    if seconds < 10.0 && seconds.fract() > 1e-9 { format!("{seconds:.1}s") } else { format!("{seconds:.0}s") }
}
