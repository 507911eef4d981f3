//! The order of a build: which images, how costly each one is, and which to start
//! first. Among the images whose dependencies are built, the one with the longest
//! remaining path to the end of the graph starts first (critical path first), weighted
//! by the durations of earlier runs where there are any (images without one are
//! estimated from their step counts), by step counts when there are none.

use std::collections::HashMap;

use kiln_graph::Graph;
use kiln_manifest::Project;

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
    pub images: Vec<usize>,
    pub selected: Vec<bool>,
    /// Each image's own cost.
    pub cost: Vec<f64>,
    /// Each image's cost plus the costliest chain of dependents after it.
    pub priority: Vec<f64>,
    pub unit: CostUnit,
}

impl Schedule {
    /// `steps[i]` is image i's number of Dockerfile steps; `durations` are seconds from
    /// earlier runs, by image name.
    pub fn new(
        project: &Project,
        graph: &Graph,
        selected: Vec<bool>,
        steps: &[usize],
        durations: &HashMap<String, f64>,
    ) -> Self {
        let images: Vec<usize> = graph.order().iter().copied().filter(|&i| selected[i]).collect();
        let recorded: Vec<usize> =
            images.iter().copied().filter(|&i| durations.contains_key(&project.images[i].name)).collect();
        let unit = if recorded.is_empty() { CostUnit::Steps } else { CostUnit::Seconds };
        // Images without a recorded duration are estimated from their step count, at the
        // average seconds per step of the images that have one.
        #[allow(clippy::cast_precision_loss)]
        let seconds_per_step = {
            let seconds: f64 = recorded.iter().map(|&i| durations[&project.images[i].name]).sum();
            let steps: usize = recorded.iter().map(|&i| steps.get(i).copied().unwrap_or(1)).sum();
            if steps == 0 { 1.0 } else { seconds / steps as f64 }
        };
        #[allow(clippy::cast_precision_loss)]
        let cost: Vec<f64> = (0..project.images.len())
            .map(|i| {
                let step_count = steps.get(i).copied().unwrap_or(1) as f64;
                match (unit, durations.get(&project.images[i].name)) {
                    (CostUnit::Seconds, Some(seconds)) => *seconds,
                    (CostUnit::Seconds, None) => step_count * seconds_per_step,
                    (CostUnit::Steps, _) => step_count,
                }
            })
            .collect();
        let mut priority = vec![0.0; project.images.len()];
        for &i in images.iter().rev() {
            let after = graph
                .dependents(i)
                .into_iter()
                .filter(|&d| selected[d])
                .map(|d| priority[d])
                .fold(0.0, f64::max);
            priority[i] = cost[i] + after;
        }
        Self { images, selected, cost, priority, unit }
    }

    /// Waves: images grouped by the length of their longest dependency chain.
    pub fn waves(&self, graph: &Graph) -> Vec<Vec<usize>> {
        let mut depth: HashMap<usize, usize> = HashMap::new();
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
    pub fn critical_path(&self, graph: &Graph) -> Vec<usize> {
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
            .into_iter()
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
        let mut waiting: HashMap<usize, usize> = self
            .images
            .iter()
            .map(|&i| (i, graph.dependencies(i).iter().filter(|d| self.selected[**d]).count()))
            .collect();
        let mut ready: Vec<usize> = self.images.iter().copied().filter(|i| waiting[i] == 0).collect();
        let mut running: Vec<(f64, usize)> = Vec::new();
        let mut clock = 0.0;
        loop {
            ready.sort_by(|a, b| self.priority[*b].total_cmp(&self.priority[*a]));
            while running.len() < jobs.max(1) && !ready.is_empty() {
                let next = ready.remove(0);
                running.push((clock + self.cost[next], next));
            }
            let Some(position) =
                running.iter().enumerate().min_by(|a, b| a.1.0.total_cmp(&b.1.0)).map(|(p, _)| p)
            else {
                return clock;
            };
            let (end, done) = running.remove(position);
            clock = end;
            for dependent in graph.dependents(done) {
                if let Some(count) = waiting.get_mut(&dependent) {
                    *count -= 1;
                    if *count == 0 {
                        ready.push(dependent);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the costs compared are small whole numbers, exact in f64
mod tests {
    use std::collections::HashMap;

    use kiln_graph::Graph;
    use kiln_manifest::{LoadOptions, Project};

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

    #[test]
    fn the_longest_remaining_path_goes_first() {
        let (_dir, project, graph) = project();
        let steps = vec![1; 4];
        let schedule = Schedule::new(
            &project,
            &graph,
            vec![true; 4],
            &steps,
            &durations(&[("a", 1.0), ("b", 5.0), ("c", 1.0), ("d", 1.0)]),
        );
        assert_eq!(schedule.unit, CostUnit::Seconds);
        // a's chain is 3 seconds, b alone is 5: b first.
        assert_eq!((schedule.priority[0], schedule.priority[1]), (3.0, 5.0));
        assert_eq!(schedule.critical_path(&graph), [1]);
        // Two jobs: b (5 s) beside a, c, d (3 s).
        assert!((schedule.estimate(&graph, 2) - 5.0).abs() < 1e-9);
        assert!((schedule.estimate(&graph, 1) - 8.0).abs() < 1e-9);
        let waves: Vec<Vec<usize>> = schedule.waves(&graph);
        assert_eq!(waves, [vec![0, 1], vec![2], vec![3]]);
    }

    #[test]
    fn step_counts_stand_in_for_missing_durations() {
        let (_dir, project, graph) = project();
        let steps = vec![2, 1, 2, 2];
        let none = Schedule::new(&project, &graph, vec![true; 4], &steps, &HashMap::new());
        assert_eq!(none.unit, CostUnit::Steps);
        assert_eq!(none.priority[0], 6.0);
        assert_eq!(none.critical_path(&graph), [0, 2, 3]);
        // Only `a` was built before (4 s for 2 steps): the others cost 2 s per step.
        let some = Schedule::new(&project, &graph, vec![true; 4], &steps, &durations(&[("a", 4.0)]));
        assert_eq!(some.unit, CostUnit::Seconds);
        assert_eq!(some.cost, [4.0, 2.0, 4.0, 4.0]);
    }
}
