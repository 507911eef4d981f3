//! Pins: the tags a run puts on the images it builds and reuses,
//! `kiln.local/run-<host>-<pid>-<started>/<image>:<digest>`.
//!
//! A pin does two jobs. A dependent's Dockerfile names its dependency by pin, so that no
//! tag moved by someone else meanwhile can slip in. And a pin is a lease: while the run
//! that owns it is alive, `rmi`, `clean` and `prune` (of any checkout) leave the image
//! alone. A run removes its own pins when it ends; pins of a run that did not get to
//! (killed, or its engine went away) are removed by the next run and by `prune`.
//!
//! Whether a run is alive is read from its pin's name: on the same machine, by its
//! process; from another machine sharing the engine, by its age.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Every pin's registry part. `.local` is never a real registry, so a pin can never be
/// pushed or pulled by mistake.
pub const PREFIX: &str = "kiln.local/";

/// A run seen from another machine counts as alive for this long after it started.
pub const REMOTE_LEASE: Duration = Duration::from_hours(24);

/// The run that owns a pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// A short hash of the machine's identity (see [`machine`]).
    pub host: String,
    pub pid: u32,
    /// Unix seconds.
    pub started: u64,
}

/// Whether a pin's run may still use its images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// The run is gone; its pins are leftovers.
    Gone,
}

impl Run {
    /// This process's run.
    pub fn current() -> Self {
        Self { host: machine(), pid: std::process::id(), started: unix_now() }
    }

    /// `run-<host>-<pid>-<started>`: one path component of a repository name.
    pub fn id(&self) -> String {
        format!("run-{}-{}-{}", self.host, self.pid, self.started)
    }

    /// The pin of one image: `kiln.local/<run>/<image>:<digest prefix>`.
    pub fn pin(&self, image: &str, digest: &str) -> String {
        let hex = digest.rsplit(':').next().unwrap_or(digest);
        format!("{PREFIX}{}/{image}:{}", self.id(), &hex[..hex.len().min(16)])
    }

    /// The pin of an outside image: one tag per reference and identity in the run's
    /// `outside` repository.
    pub fn pin_outside(&self, reference: &str, identity: &str) -> String {
        let hash = blake3::hash(format!("{reference}\0{identity}").as_bytes());
        format!("{PREFIX}{}/outside:{}", self.id(), &hash.to_hex()[..16])
    }

    /// Whether `reference` is one of this run's pins.
    pub fn owns(&self, reference: &str) -> bool {
        reference
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(id, _)| id == self.id())
    }

    /// The run a pin belongs to; `None` for anything that is not a pin.
    pub fn of_pin(reference: &str) -> Option<Self> {
        let (id, _) = reference.strip_prefix(PREFIX)?.split_once('/')?;
        let mut parts = id.strip_prefix("run-")?.splitn(3, '-');
        let host = parts.next()?.to_owned();
        let pid = parts.next()?.parse().ok()?;
        let started = parts.next()?.parse().ok()?;
        Some(Self { host, pid, started })
    }

    pub fn liveness(&self) -> Liveness {
        self.liveness_with(&machine(), Path::new("/proc"), unix_now())
    }

    fn liveness_with(&self, this_machine: &str, proc: &Path, now: u64) -> Liveness {
        let young = now.saturating_sub(self.started) < REMOTE_LEASE.as_secs();
        // Another machine's process cannot be looked at; nor can this machine's without
        // a /proc.
        if self.host != this_machine || !proc.is_dir() {
            return if young { Liveness::Alive } else { Liveness::Gone };
        }
        // A pid that was reused by another program does not keep the pins alive.
        let cmdline = fs_err::read(proc.join(self.pid.to_string()).join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("kiln") { Liveness::Alive } else { Liveness::Gone }
    }

    /// "a `kiln build` (pid 42 on this machine, started 3 min ago)".
    pub fn describe(&self) -> String {
        let age = Duration::from_secs(unix_now().saturating_sub(self.started));
        let place = if self.host == machine() { "on this machine" } else { "on another machine" };
        format!("a running `kiln build` (pid {} {place}, started {} ago)", self.pid, rough(age))
    }
}

/// Identifies this machine among those that share an engine: the hash of the machine
/// id and the host name (containers built from one image share a machine id but not a
/// host name). Never shown in an image's content: only pins carry it.
pub fn machine() -> String {
    let read = |path: &str| fs_err::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default();
    let mut id = read("/etc/machine-id");
    if id.is_empty() {
        id = read("/var/lib/dbus/machine-id");
    }
    let mut host = read("/proc/sys/kernel/hostname");
    if host.is_empty() {
        host = std::env::var("HOSTNAME").unwrap_or_default();
    }
    let hash = blake3::hash(format!("{id}\0{host}").as_bytes());
    hash.to_hex()[..8].to_owned()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rough(age: Duration) -> String {
    match age.as_secs() {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(host: &str, pid: u32, started: u64) -> Run {
        Run { host: host.to_owned(), pid, started }
    }

    #[test]
    fn a_pin_names_its_run() {
        let owner = run("0a1b2c3d", 4242, 1_700_000_000);
        let pin = owner.pin("api.prod", "blake3:0123456789abcdef0123");
        assert_eq!(pin, "kiln.local/run-0a1b2c3d-4242-1700000000/api.prod:0123456789abcdef");
        assert_eq!(Run::of_pin(&pin), Some(owner.clone()));
        assert!(owner.owns(&pin));
        assert!(!run("0a1b2c3d", 4243, 1_700_000_000).owns(&pin));
        for not_a_pin in
            ["kiln.local/other/api:1", "registry/api:1", "kiln.local/run-x-y-z/a:b", "kiln.local/"]
        {
            assert_eq!(Run::of_pin(not_a_pin), None, "{not_a_pin}");
        }
    }

    #[test]
    fn a_run_on_this_machine_lives_as_long_as_its_process() {
        let proc = tempfile::tempdir().expect("temp dir");
        let alive = proc.path().join("10");
        fs_err::create_dir_all(&alive).expect("mkdir");
        fs_err::write(alive.join("cmdline"), b"/usr/bin/kiln\0build\0").expect("write");
        let reused = proc.path().join("11");
        fs_err::create_dir_all(&reused).expect("mkdir");
        fs_err::write(reused.join("cmdline"), b"sleep\0sixty\0").expect("write");
        let now = 1_700_000_000;
        assert_eq!(run("here", 10, now).liveness_with("here", proc.path(), now), Liveness::Alive);
        assert_eq!(run("here", 11, now).liveness_with("here", proc.path(), now), Liveness::Gone);
        assert_eq!(run("here", 12, now).liveness_with("here", proc.path(), now), Liveness::Gone);
    }

    #[test]
    fn a_run_elsewhere_lives_for_a_day() {
        let proc = tempfile::tempdir().expect("temp dir");
        let now = 1_700_000_000;
        let day = REMOTE_LEASE.as_secs();
        assert_eq!(run("there", 10, now - day + 1).liveness_with("here", proc.path(), now), Liveness::Alive);
        assert_eq!(run("there", 10, now - day).liveness_with("here", proc.path(), now), Liveness::Gone);
        // Without a /proc, this machine's runs are judged by age too.
        let missing = proc.path().join("nothing");
        assert_eq!(run("here", 10, now).liveness_with("here", &missing, now), Liveness::Alive);
    }
}
