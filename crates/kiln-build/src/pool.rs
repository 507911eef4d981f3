//! The engines a run builds on: each with its build slots and labels, the ones that get
//! the images' tags, and how an image is placed among them.
//!
//! Engines are the machine's or the CI's business, not the repository's: the pool comes
//! from the command line (`--engine`), never from the manifest, which only says what an
//! image `needs`.

use kiln_engine::Engine;

/// One engine of the pool.
#[derive(Debug, Clone)]
pub struct PoolEngine {
    pub engine: Engine,
    /// Builds it runs at once.
    pub slots: usize,
    /// What it offers to images that `need` something (`big`, `platform=linux/arm64`).
    pub labels: Vec<String>,
    /// Whether the images' tags go here. Every image that should be tagged ends up on
    /// each such engine, wherever it was built.
    pub tags: bool,
}

impl PoolEngine {
    pub fn offers(&self, needs: &[String]) -> bool {
        needs.iter().all(|need| self.labels.contains(need))
    }
}

/// The engines of a run; the first one that takes tags is the home engine (registry
/// settings, pins of gone runs, `-t`).
#[derive(Debug, Clone)]
pub struct Pool {
    pub engines: Vec<PoolEngine>,
    /// A registry images move through between engines (`host[:port]`): pushed once by
    /// digest, pulled where needed. Without one they are streamed from engine to engine.
    pub transfer_registry: Option<String>,
}

impl Pool {
    /// The one engine of a run without `--engine`.
    pub fn single(engine: Engine, slots: usize) -> Self {
        Self {
            engines: vec![PoolEngine { engine, slots: slots.max(1), labels: Vec::new(), tags: true }],
            transfer_registry: None,
        }
    }

    /// The engine that takes the tags first: where `-t` and the registry settings apply.
    pub fn home(&self) -> usize {
        self.engines.iter().position(|e| e.tags).unwrap_or(0)
    }
}

/// What placement sees of an engine at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLoad {
    pub free_slots: usize,
    pub up: bool,
    pub offers: bool,
    /// How many of the image's dependencies it already holds.
    pub holds: usize,
}

/// Where an image builds: among the engines that are up, offer what it needs and have a
/// free slot, the one that already holds most of its dependencies (no transfer), then
/// the one with most free slots, then the first.
pub fn place(loads: &[EngineLoad]) -> Option<usize> {
    loads
        .iter()
        .enumerate()
        .filter(|(_, l)| l.up && l.offers && l.free_slots > 0)
        .max_by(|(a_index, a), (b_index, b)| {
            (a.holds, a.free_slots).cmp(&(b.holds, b.free_slots)).then(b_index.cmp(a_index))
        })
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(free_slots: usize, holds: usize) -> EngineLoad {
        EngineLoad { free_slots, up: true, offers: true, holds }
    }

    #[test]
    fn prefers_the_engine_that_holds_the_dependencies() {
        assert_eq!(place(&[load(2, 0), load(1, 2)]), Some(1));
        assert_eq!(place(&[load(1, 1), load(2, 1)]), Some(1));
        assert_eq!(place(&[load(2, 1), load(2, 1)]), Some(0));
    }

    #[test]
    fn never_places_on_a_full_down_or_unfit_engine() {
        assert_eq!(place(&[load(0, 3), load(1, 0)]), Some(1));
        assert_eq!(place(&[EngineLoad { up: false, ..load(2, 3) }, load(1, 0)]), Some(1));
        assert_eq!(place(&[EngineLoad { offers: false, ..load(2, 3) }]), None);
        assert_eq!(place(&[load(0, 0), load(0, 0)]), None);
    }
}
