//! The order of a build: which images, how costly each one is, and which to start
//! first. Among the images whose dependencies are built, the one with the longest
//! remaining path to the end of the graph starts first (critical path first), weighted
//! by the durations of earlier runs where there are any (images without one are
//! estimated from their step counts), by step counts when there are none.

use std::collections::HashMap;

use crate::pool::{EngineLoad, place};
use kiln_graph::Graph;
use kiln_manifest::{ImageId, PerImage, Project};

/// How costs are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostUnit {
    /// Seconds, from earlier runs (and estimates for images never built).
    Seconds,
    /// Dockerfile steps (no image has a recorded duration).
    Steps,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    /// Selected images, in build order.
    pub images: Vec<ImageId>,
    pub selected: PerImage<bool>,
    /// Each image's own cost.
    pub cost: PerImage<f64>,
    /// Each image's cost plus the costliest chain of dependents after it.
    pub priority: PerImage<f64>,
    pub unit: CostUnit,
}

impl Schedule {
    /// `steps` are the images' numbers of Dockerfile steps; `durations` are seconds from
    /// earlier runs, by image name.
    pub fn new(
        project: &Project,
        graph: &Graph,
        selected: PerImage<bool>,
        steps: &PerImage<usize>,
        durations: &HashMap<String, f64>,
    ) -> Self {
        let images: Vec<ImageId> = graph.order().iter().copied().filter(|&i| selected[i]).collect();
        let recorded: Vec<ImageId> =
            images.iter().copied().filter(|&i| durations.contains_key(&project[i].name)).collect();
        let unit = if recorded.is_empty() { CostUnit::Steps } else { CostUnit::Seconds };
        // Images without a recorded duration are estimated from their step count, at the
        // average seconds per step of the images that have one.
        #[allow(clippy::cast_precision_loss)]
        let seconds_per_step = {
            let seconds: f64 = recorded.iter().map(|&i| durations[&project[i].name]).sum();
            let steps: usize = recorded.iter().map(|&i| steps[i]).sum();
            if steps == 0 { 1.0 } else { seconds / steps as f64 }
        };
        #[allow(clippy::cast_precision_loss)]
        let cost: PerImage<f64> = project.per_image(|i| {
            let step_count = steps[i] as f64;
            match (unit, durations.get(&project[i].name)) {
                (CostUnit::Seconds, Some(seconds)) => *seconds,
                (CostUnit::Seconds, None) => step_count * seconds_per_step,
                (CostUnit::Steps, _) => step_count,
            }
        });
        let mut priority = project.per_image(|_| 0.0);
        for &i in images.iter().rev() {
            let after = graph
                .dependents(i)
                .iter()
                .copied()
                .filter(|&d| selected[d])
                .map(|d| priority[d])
                .fold(0.0, f64::max);
            priority[i] = cost[i] + after;
        }
        Self { images, selected, cost, priority, unit }
    }

    /// Waves: images grouped by the length of their longest dependency chain.
    pub fn waves(&self, graph: &Graph) -> Vec<Vec<ImageId>> {
        let mut depth: HashMap<ImageId, usize> = HashMap::new();
        for &i in &self.images {
            let d = graph
                .dependencies(i)
                .iter()
                .filter(|d| self.selected[**d])
                .map(|d| depth[d] + 1)
                .max()
                .unwrap_or(0);
            depth.insert(i, d);
        }
        let count = depth.values().max().map_or(0, |m| m + 1);
        let mut waves = vec![Vec::new(); count];
        for &i in &self.images {
            waves[depth[&i]].push(i);
        }
        waves
    }

    /// The costliest chain, from a first image to a last one (on ties, the image that
    /// comes first in build order).
    pub fn critical_path(&self, graph: &Graph) -> Vec<ImageId> {
        let Some(mut current) = self
            .images
            .iter()
            .copied()
            .filter(|&i| graph.dependencies(i).iter().all(|d| !self.selected[*d]))
            .rev()
            .max_by(|a, b| self.priority[*a].total_cmp(&self.priority[*b]))
        else {
            return Vec::new();
        };
        let mut path = vec![current];
        while let Some(next) = graph
            .dependents(current)
            .iter()
            .copied()
            .filter(|&d| self.selected[d])
            .rev()
            .max_by(|a, b| self.priority[*a].total_cmp(&self.priority[*b]))
        {
            path.push(next);
            current = next;
        }
        path
    }

    /// A simulation of the run with `jobs` builds at once, with this schedule's
    /// choices; in the schedule's unit.
    pub fn estimate(&self, graph: &Graph, jobs: usize) -> f64 {
        let one = [SimulatedEngine { slots: jobs, labels: Vec::new() }];
        self.simulate(graph, &one, &|_| Vec::new()).into_iter().map(|p| p.end).fold(0.0, f64::max)
    }

    /// Where and when each image would build on a pool of engines, with the scheduler's
    /// choices (most critical first, `pool::place`); an image no engine can take is left
    /// out. In the schedule's unit.
    pub fn simulate(
        &self,
        graph: &Graph,
        engines: &[SimulatedEngine],
        needs: &dyn Fn(ImageId) -> Vec<String>,
    ) -> Vec<Placed> {
        let mut waiting: HashMap<ImageId, usize> = self
            .images
            .iter()
            .map(|&i| (i, graph.dependencies(i).iter().filter(|d| self.selected[**d]).count()))
            .collect();
        let mut ready: Vec<ImageId> = self.images.iter().copied().filter(|i| waiting[i] == 0).collect();
        let mut busy = vec![0usize; engines.len()];
        let mut running: Vec<Placed> = Vec::new();
        let mut placed: Vec<Placed> = Vec::new();
        let mut built_on: HashMap<ImageId, usize> = HashMap::new();
        let mut clock = 0.0;
        loop {
            ready.sort_by(|a, b| self.priority[*b].total_cmp(&self.priority[*a]));
            let mut index = 0;
            while index < ready.len() {
                let image = ready[index];
                let needed = needs(image);
                let loads: Vec<EngineLoad> = engines
                    .iter()
                    .enumerate()
                    .map(|(e, engine)| EngineLoad {
                        free_slots: engine.slots.max(1) - busy[e].min(engine.slots.max(1)),
                        up: true,
                        offers: needed.iter().all(|n| engine.labels.contains(n)),
                        holds: graph
                            .dependencies(image)
                            .iter()
                            .filter(|d| built_on.get(d) == Some(&e))
                            .count(),
                    })
                    .collect();
                match place(&loads) {
                    Some(engine) => {
                        ready.remove(index);
                        busy[engine] += 1;
                        running.push(Placed { image, engine, start: clock, end: clock + self.cost[image] });
                    }
                    None if loads.iter().any(|l| l.offers) => index += 1,
                    None => {
                        ready.remove(index);
                    }
                }
            }
            let Some(position) =
                running.iter().enumerate().min_by(|a, b| a.1.end.total_cmp(&b.1.end)).map(|(p, _)| p)
            else {
                return placed;
            };
            let done = running.remove(position);
            clock = done.end;
            busy[done.engine] -= 1;
            built_on.insert(done.image, done.engine);
            placed.push(done);
            for dependent in graph.dependents(done.image) {
                if let Some(count) = waiting.get_mut(dependent) {
                    *count -= 1;
                    if *count == 0 {
                        ready.push(*dependent);
                    }
                }
            }
        }
    }
}

/// An engine as the simulation sees it.
#[derive(Debug, Clone)]
pub struct SimulatedEngine {
    pub slots: usize,
    pub labels: Vec<String>,
}

/// One image's simulated build.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub image: ImageId,
    pub engine: usize,
    pub start: f64,
    pub end: f64,
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the costs compared are small whole numbers, exact in f64
mod tests {
    use std::collections::HashMap;

    use kiln_graph::Graph;
    use kiln_manifest::{ImageId, LoadOptions, PerImage, Project};

    use super::{CostUnit, Schedule};

    /// `a -> c -> d` (d builds on c, c on a) and a lone `b`.
    fn project() -> (tempfile::TempDir, Project, Graph) {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = dir.path().join("kiln.kdl");
        std::fs::write(
            &manifest,
            "image a { from \"alpine:3.20\" }\nimage b { from \"alpine:3.20\" }\nimage c { from image=a }\nimage d { from image=c }\n",
        )
        .expect("write");
        let (project, mut diags) =
            kiln_manifest::load_project(&LoadOptions { manifest, ..Default::default() }).expect("load");
        let graph = Graph::build(&project, &mut diags);
        assert!(!diags.has_errors());
        (dir, project, graph)
    }

    fn durations(pairs: &[(&str, f64)]) -> HashMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    /// Images by position: `a` is 0, `b` 1, `c` 2, `d` 3.
    fn ids(positions: &[usize]) -> Vec<ImageId> {
        positions.iter().copied().map(ImageId::new).collect()
    }

    fn per_image<T: Copy>(project: &Project, values: &[T]) -> PerImage<T> {
        project.per_image(|id| values[id.index()])
    }

    #[test]
    fn the_longest_remaining_path_goes_first() {
        let (_dir, project, graph) = project();
        let schedule = Schedule::new(
            &project,
            &graph,
            project.per_image(|_| true),
            &project.per_image(|_| 1),
            &durations(&[("a", 1.0), ("b", 5.0), ("c", 1.0), ("d", 1.0)]),
        );
        assert_eq!(schedule.unit, CostUnit::Seconds);
        // a's chain is 3 seconds, b alone is 5: b first.
        assert_eq!((schedule.priority[ImageId::new(0)], schedule.priority[ImageId::new(1)]), (3.0, 5.0));
        assert_eq!(schedule.critical_path(&graph), ids(&[1]));
        // Two jobs: b (5 s) beside a, c, d (3 s).
        assert!((schedule.estimate(&graph, 2) - 5.0).abs() < 1e-9);
        assert!((schedule.estimate(&graph, 1) - 8.0).abs() < 1e-9);
        assert_eq!(schedule.waves(&graph), [ids(&[0, 1]), ids(&[2]), ids(&[3])]);
    }

    #[test]
    fn step_counts_stand_in_for_missing_durations() {
        let (_dir, project, graph) = project();
        let steps = per_image(&project, &[2, 1, 2, 2]);
        let none = Schedule::new(&project, &graph, project.per_image(|_| true), &steps, &HashMap::new());
        assert_eq!(none.unit, CostUnit::Steps);
        assert_eq!(none.priority[ImageId::new(0)], 6.0);
        assert_eq!(none.critical_path(&graph), ids(&[0, 2, 3]));
        // Only `a` was built before (4 s for 2 steps): the others cost 2 s per step.
        let some =
            Schedule::new(&project, &graph, project.per_image(|_| true), &steps, &durations(&[("a", 4.0)]));
        assert_eq!(some.unit, CostUnit::Seconds);
        assert_eq!(some.cost, per_image(&project, &[4.0, 2.0, 4.0, 4.0]));
    }
}
