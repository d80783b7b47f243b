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
//! Only tasks with a same-level edge have a label, so tasks that declare no dependency cost no memory here.
//!
//! Pure logic: no lock, no I/O. [`Order::steps`] counts the work done, so tests can check it stays near
//! linear for every graph shape without timing anything.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Where the first label goes, in the middle so tasks can be placed before and after it.
const FIRST_LABEL: u64 = 1 << 63;
/// The room left after the last label (or before the first) when a task is placed at an end.
const END_GAP: u64 = 1 << 32;

#[derive(Copy, Clone)]
enum Side {
  Before,
  After,
}

/// A task that has same-level edges: its label and its neighbours.
#[derive(Default)]
struct Node {
  label: u64,
  /// What it depends on (larger labels).
  dependencies: Vec<usize>,
  /// What depends on it (smaller labels).
  dependents: Vec<usize>,
}

/// Labels and same-level edges, by task slot. Only tasks with an edge have a node (and a label): a task
/// with none has no constraint, so the many tasks that declare no dependency cost nothing here.
#[derive(Default)]
pub(super) struct Order {
  nodes: HashMap<usize, Node>,
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
    if dependents.is_empty() && dependencies.is_empty() {
      return Ok(());
    }
    let label = self.placement(dependents, dependencies);
    self.add_node(slot, label);
    // Neighbours without a node had no edge, so any label is right for them: they get labels right next to
    // the new task, all at once (one by one, each would halve the same gap).
    let unlabelled = |slots: &[usize], nodes: &HashMap<usize, Node>| -> Vec<usize> {
      slots.iter().copied().filter(|s| !nodes.contains_key(s)).collect()
    };
    let new_dependents = unlabelled(dependents, &self.nodes);
    for (dependent, label) in
      new_dependents
        .iter()
        .zip(self.labels_next_to(slot, new_dependents.len(), Side::Before))
    {
      self.add_node(*dependent, label);
    }
    let new_dependencies = unlabelled(dependencies, &self.nodes);
    for (dependency, label) in
      new_dependencies
        .iter()
        .zip(self.labels_next_to(slot, new_dependencies.len(), Side::After))
    {
      self.add_node(*dependency, label);
    }
    for &dependent in dependents {
      self.link(dependent, slot);
    }
    for &dependency in dependencies {
      if self.label(slot) > self.label(dependency)
        && let Err(path) = self.reorder(slot, dependency)
      {
        self.remove(slot);
        return Err(path);
      }
      self.link(slot, dependency);
    }
    Ok(())
  }

  /// Removes the task in `slot` and its edges, and the nodes of neighbours left without an edge. The labels
  /// of the others stay valid.
  pub(super) fn remove(&mut self, slot: usize) {
    let Some(node) = self.nodes.remove(&slot) else {
      return;
    };
    self.by_label.remove(&node.label);
    for dependent in node.dependents {
      self.unlink(dependent, |n| &mut n.dependencies, slot);
    }
    for dependency in node.dependencies {
      self.unlink(dependency, |n| &mut n.dependents, slot);
    }
  }

  /// Edges visited and labels moved so far.
  pub(super) fn steps(&self) -> u64 {
    self.steps
  }

  fn label(&self, slot: usize) -> u64 {
    self.nodes.get(&slot).map_or(0, |n| n.label)
  }

  fn add_node(&mut self, slot: usize, label: u64) {
    self.nodes.insert(
      slot,
      Node {
        label,
        ..Node::default()
      },
    );
    self.by_label.insert(label, slot);
  }

  fn link(&mut self, dependent: usize, dependency: usize) {
    if let Some(node) = self.nodes.get_mut(&dependent) {
      node.dependencies.push(dependency);
    }
    if let Some(node) = self.nodes.get_mut(&dependency) {
      node.dependents.push(dependent);
    }
  }

  fn unlink(&mut self, slot: usize, side: fn(&mut Node) -> &mut Vec<usize>, other: usize) {
    let Some(node) = self.nodes.get_mut(&slot) else {
      return;
    };
    side(node).retain(|&s| s != other);
    if node.dependencies.is_empty() && node.dependents.is_empty() {
      let label = node.label;
      self.nodes.remove(&slot);
      self.by_label.remove(&label);
    }
  }

  /// Where a new task goes: after its last dependent, before its first dependency, or at the end, among the
  /// tasks that have a node.
  fn placement(&mut self, dependents: &[usize], dependencies: &[usize]) -> u64 {
    let labelled = |slots: &[usize]| {
      slots
        .iter()
        .filter_map(|s| self.nodes.get(s))
        .map(|n| n.label)
        .collect::<Vec<_>>()
    };
    if let Some(after) = labelled(dependents).into_iter().max() {
      return self.label_after(after);
    }
    if let Some(before) = labelled(dependencies).into_iter().min() {
      return self.label_before(before);
    }
    match self.by_label.last_key_value() {
      Some((&last, _)) => self.label_after(last),
      None => FIRST_LABEL,
    }
  }

  /// `count` free labels between the task in `slot` and its neighbour in label order on `side`, spreading
  /// every label first if the gap is too small.
  fn labels_next_to(&mut self, slot: usize, count: usize, side: Side) -> Vec<u64> {
    if count == 0 {
      return Vec::new();
    }
    let room = (count as u64 + 1).saturating_mul(END_GAP);
    loop {
      let at = self.label(slot);
      let (low, high) = match side {
        Side::Before => {
          let previous = self.by_label.range(..at).next_back().map(|(&l, _)| l);
          (previous.unwrap_or(at.saturating_sub(room)), at)
        }
        Side::After => {
          let next = self.by_label.range(at + 1..).next().map(|(&l, _)| l);
          (at, next.unwrap_or(at.saturating_add(room)))
        }
      };
      let step = (high - low) / (count as u64 + 1);
      if step >= 1 {
        self.steps += count as u64;
        return (1..=count as u64).map(|i| low + i * step).collect();
      }
      self.spread_labels();
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
        self.label_after(self.label(slot))
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
        self.label_before(self.label(slot))
      }
    }
  }

  /// Gives every node an evenly spaced label, in the same order.
  fn spread_labels(&mut self) {
    let spacing = u64::MAX / (self.by_label.len() as u64 + 2);
    let slots: Vec<usize> = self.by_label.values().copied().collect();
    self.by_label.clear();
    for (i, slot) in slots.into_iter().enumerate() {
      let label = spacing * (i as u64 + 1);
      self.set_label(slot, label);
      self.steps += 1;
    }
  }

  fn set_label(&mut self, slot: usize, label: u64) {
    if let Some(node) = self.nodes.get_mut(&slot) {
      node.label = label;
    }
    self.by_label.insert(label, slot);
  }

  /// Makes room for the edge `from` -> `to` where `to` is labelled before `from`, or returns the loop the
  /// edge would close (from `to` to a dependent of `from`).
  fn reorder(&mut self, from: usize, to: usize) -> Result<(), Vec<usize>> {
    let (low, high) = (self.label(to), self.label(from));
    // Forward from `to` through what it depends on, among the nodes labelled before `from`.
    let mut came_from: HashMap<usize, usize> = HashMap::from([(to, usize::MAX)]);
    let mut forward = vec![to];
    let mut stack = vec![to];
    while let Some(node) = stack.pop() {
      let dependencies = self
        .nodes
        .get(&node)
        .map(|n| n.dependencies.as_slice())
        .unwrap_or_default();
      for &next in dependencies {
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
        if self.label(next) < high && !came_from.contains_key(&next) {
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
      let dependents = self
        .nodes
        .get(&node)
        .map(|n| n.dependents.as_slice())
        .unwrap_or_default();
      for &previous in dependents {
        self.steps += 1;
        if self.label(previous) > low && seen.insert(previous) {
          backward.push(previous);
          stack.push(previous);
        }
      }
    }
    // The same labels, given to the backward region first, each region keeping its own order.
    backward.sort_unstable_by_key(|&s| self.label(s));
    forward.sort_unstable_by_key(|&s| self.label(s));
    let mut labels: Vec<u64> = backward.iter().chain(&forward).map(|&s| self.label(s)).collect();
    labels.sort_unstable();
    for &slot in backward.iter().chain(&forward) {
      self.by_label.remove(&self.label(slot));
    }
    for (&slot, label) in backward.iter().chain(&forward).zip(labels) {
      self.set_label(slot, label);
      self.steps += 1;
    }
    Ok(())
  }
}
