//! The order of a build: which images, how costly each one is, and which to start
//! first. Among the images whose dependencies are built, the one with the longest
//! remaining path to the end of the graph starts first (critical path first), weighted
//! by the durations of earlier runs when every image has one, by step counts otherwise.

use std::collections::HashMap;

use kiln_graph::Graph;
use kiln_manifest::Project;

/// How costs are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostUnit {
    /// Seconds, from earlier runs.
    Seconds,
    /// Dockerfile steps (no earlier run of every image).
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
        let known = images.iter().all(|&i| durations.contains_key(&project.images[i].name));
        let unit = if known && !images.is_empty() { CostUnit::Seconds } else { CostUnit::Steps };
        #[allow(clippy::cast_precision_loss)]
        let cost: Vec<f64> = (0..project.images.len())
            .map(|i| match unit {
                CostUnit::Seconds => durations.get(&project.images[i].name).copied().unwrap_or(0.0),
                CostUnit::Steps => steps.get(i).copied().unwrap_or(1) as f64,
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
