//! Incremental cycle detection for the dependency edges inside a level: a dynamic topological order over the
//! registered tasks (Pearce and Kelly's algorithm), so that registering a task costs what its edges touch,
//! not a walk of the whole graph.
//!
//! Every task has a label, and for every edge (a dependent to what it depends on) the dependent's label is
//! the smaller. A new task is placed right after its last registered dependent, or right before its first
//! registered dependency when it has no dependent, so its edges to dependents always agree with the labels,
//! and so do most edges to dependencies. For a dependency labelled before it, the algorithm searches only
//! the region between the two labels: forward from the dependency through nodes labelled before the new
//! task, and backward from the new task through nodes labelled after the dependency. If the forward search
//! reaches the new task, the edge would close a cycle; otherwise the labels of the two regions are shuffled
//! so the backward region comes first. Labels are sparse `u64`s kept in a B-tree, so a task can be placed
//! between two neighbours; when two neighbours leave no room, every label is spread out again.
//!
//! Pure logic: no lock, no I/O. [`Order::steps`] counts the work done, so tests can check it stays near
//! linear for every graph shape without timing anything.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Where the first label goes, in the middle so tasks can be placed before and after it.
const FIRST_LABEL: u64 = 1 << 63;
/// The room left after the last label (or before the first) when a task is placed at an end.
const END_GAP: u64 = 1 << 32;

/// Labels and same-level edges by task slot.
#[derive(Default)]
pub(super) struct Order {
  label: Vec<u64>,
  /// Per slot: the dependencies it has (their labels are larger).
  dependencies: Vec<Vec<usize>>,
  /// Per slot: the dependents it has (their labels are smaller).
  dependents: Vec<Vec<usize>>,
  by_label: BTreeMap<u64, usize>,
  steps: u64,
}

impl Order {
  /// Adds the task in `slot` with its registered same-level `dependents` and `dependencies`. On a cycle,
  /// nothing is added and the loop is returned as the slots from one of `dependencies` to one of
  /// `dependents` (each depends on the next; the last depends on the new task, which depends on the first).
  pub(super) fn insert(
    &mut self,
    slot: usize,
    dependents: &[usize],
    dependencies: &[usize],
  ) -> Result<(), Vec<usize>> {
    if self.label.len() <= slot {
      self.label.resize(slot + 1, 0);
      self.dependencies.resize_with(slot + 1, Vec::new);
      self.dependents.resize_with(slot + 1, Vec::new);
    }
    let label = self.placement(dependents, dependencies);
    self.label[slot] = label;
    self.by_label.insert(label, slot);
    for &dependent in dependents {
      self.dependencies[dependent].push(slot);
      self.dependents[slot].push(dependent);
    }
    for &dependency in dependencies {
      if self.label[slot] > self.label[dependency]
        && let Err(path) = self.reorder(slot, dependency)
      {
        self.remove(slot);
        return Err(path);
      }
      self.dependencies[slot].push(dependency);
      self.dependents[dependency].push(slot);
    }
    Ok(())
  }

  /// Removes the task in `slot` and its edges. The labels of the others stay valid.
  pub(super) fn remove(&mut self, slot: usize) {
    for dependent in std::mem::take(&mut self.dependents[slot]) {
      self.dependencies[dependent].retain(|&s| s != slot);
    }
    for dependency in std::mem::take(&mut self.dependencies[slot]) {
      self.dependents[dependency].retain(|&s| s != slot);
    }
    self.by_label.remove(&self.label[slot]);
  }

  /// Edges visited and labels moved so far.
  pub(super) fn steps(&self) -> u64 {
    self.steps
  }

  fn placement(&mut self, dependents: &[usize], dependencies: &[usize]) -> u64 {
    if let Some(after) = dependents.iter().map(|&s| self.label[s]).max() {
      return self.label_after(after);
    }
    if let Some(before) = dependencies.iter().map(|&s| self.label[s]).min() {
      return self.label_before(before);
    }
    match self.by_label.last_key_value() {
      Some((&last, _)) => self.label_after(last),
      None => FIRST_LABEL,
    }
  }

  /// A free label just after `label` (which is in use).
  fn label_after(&mut self, label: u64) -> u64 {
    let next = self.by_label.range(label + 1..).next().map(|(&l, _)| l);
    match next {
      Some(next) if next - label >= 2 => label + (next - label) / 2,
      None if u64::MAX - label > END_GAP => label + END_GAP,
      _ => {
        let slot = self.by_label[&label];
        self.spread_labels();
        self.label_after(self.label[slot])
      }
    }
  }

  /// A free label just before `label` (which is in use).
  fn label_before(&mut self, label: u64) -> u64 {
    let previous = self.by_label.range(..label).next_back().map(|(&l, _)| l);
    match previous {
      Some(previous) if label - previous >= 2 => previous + (label - previous) / 2,
      None if label > END_GAP => label - END_GAP,
      _ => {
        let slot = self.by_label[&label];
        self.spread_labels();
        self.label_before(self.label[slot])
      }
    }
  }

  /// Gives every task an evenly spaced label, in the same order.
  fn spread_labels(&mut self) {
    let spacing = u64::MAX / (self.by_label.len() as u64 + 2);
    let slots: Vec<usize> = self.by_label.values().copied().collect();
    self.by_label.clear();
    for (i, slot) in slots.into_iter().enumerate() {
      let label = spacing * (i as u64 + 1);
      self.label[slot] = label;
      self.by_label.insert(label, slot);
      self.steps += 1;
    }
  }

  /// Makes room for the edge `from` -> `to` where `to` is labelled before `from`, or returns the loop the
  /// edge would close (from `to` to a dependent of `from`).
  fn reorder(&mut self, from: usize, to: usize) -> Result<(), Vec<usize>> {
    let (low, high) = (self.label[to], self.label[from]);
    // Forward from `to` through what it depends on, among the nodes labelled before `from`.
    let mut came_from: HashMap<usize, usize> = HashMap::from([(to, usize::MAX)]);
    let mut forward = vec![to];
    let mut stack = vec![to];
    while let Some(node) = stack.pop() {
      for &next in &self.dependencies[node] {
        self.steps += 1;
        if next == from {
          let mut path = vec![node];
          let mut at = node;
          while let Some(&previous) = came_from.get(&at)
            && previous != usize::MAX
          {
            path.push(previous);
            at = previous;
          }
          path.reverse();
          return Err(path);
        }
        if self.label[next] < high && !came_from.contains_key(&next) {
          came_from.insert(next, node);
          forward.push(next);
          stack.push(next);
        }
      }
    }
    // Backward from `from` through its dependents, among the nodes labelled after `to`.
    let mut seen: HashSet<usize> = HashSet::from([from]);
    let mut backward = vec![from];
    let mut stack = vec![from];
    while let Some(node) = stack.pop() {
      for &previous in &self.dependents[node] {
        self.steps += 1;
        if self.label[previous] > low && seen.insert(previous) {
          backward.push(previous);
          stack.push(previous);
        }
      }
    }
    // The same labels, given to the backward region first, each region keeping its own order.
    backward.sort_unstable_by_key(|&s| self.label[s]);
    forward.sort_unstable_by_key(|&s| self.label[s]);
    let mut labels: Vec<u64> = backward.iter().chain(&forward).map(|&s| self.label[s]).collect();
    labels.sort_unstable();
    for &slot in backward.iter().chain(&forward) {
      self.by_label.remove(&self.label[slot]);
    }
    for (&slot, label) in backward.iter().chain(&forward).zip(labels) {
      self.label[slot] = label;
      self.by_label.insert(label, slot);
      self.steps += 1;
    }
    Ok(())
  }
}
