//! Incremental cycle detection for the dependency edges inside a level: a dynamic topological order over the
//! registered tasks (Pearce and Kelly's algorithm), so that registering a task costs what its edges touch,
//! not a walk of the whole graph.
//!
//! Every task with an edge has a label, and for every edge (a dependent to what it depends on) the
//! dependent's label is the smaller. A new task is placed where most of its edges already agree with the
//! labels: right after its last registered dependent when it has both kinds of edge, at the end when it has
//! only dependents, at the front when it has only dependencies. For a dependency labelled before it, the
//! algorithm searches only the region between the two labels: forward from the dependency through nodes
//! labelled before the new task, and backward from the new task through nodes labelled after the
//! dependency. If the forward search reaches the new task, the edge would close a cycle; otherwise the labels
//! of the two regions are shuffled so the backward region comes first.
//!
//! Labels are sparse `u64`s kept in a B-tree, so a task can be placed between two neighbours. When two
//! neighbours leave no room, the labels of a block around them are spread out again, the block doubling
//! until it is sparse enough (order maintenance), so no single spot can make every insertion relabel
//! everything. Only tasks with a same-level edge have a label: tasks that declare no dependency cost nothing.
//!
//! Pure logic: no lock, no I/O. [`Order::steps`] counts the work done (edges visited, labels given), so
//! tests can check it stays near linear for every graph shape without timing anything.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Where the first label goes, in the middle so tasks can be placed before and after it.
const FIRST_LABEL: u64 = 1 << 63;
/// The room left after the last label (or before the first) when a task is placed at an end.
const END_GAP: u64 = 1 << 32;
/// How dense a block of label space may be before it is spread further out: a block of 2^k labels holds at
/// most (2 / DENSITY)^k tasks (see [`Order::spread_around`]).
const DENSITY: f64 = 1.4;

/// A task that has same-level edges: its label and its neighbours.
#[derive(Default)]
struct Node {
  label: u64,
  /// What it depends on (larger labels).
  dependencies: Vec<usize>,
  /// What depends on it (smaller labels).
  dependents: Vec<usize>,
}

/// Labels and same-level edges, by task slot.
#[derive(Default)]
pub(super) struct Order {
  nodes: HashMap<usize, Node>,
  by_label: BTreeMap<u64, usize>,
  steps: u64,
}

impl Order {
  /// Adds the task in `slot` with its registered same-level `dependents` and `dependencies`. On a cycle,
  /// nothing changes and the loop is returned as the slots from one of `dependencies` to one of
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
    let labelled = |slots: &[usize]| -> Vec<u64> {
      slots
        .iter()
        .filter_map(|s| self.nodes.get(s))
        .map(|n| n.label)
        .collect()
    };
    let (before, after) = (labelled(dependents), labelled(dependencies));
    let label = match (before.iter().max(), after.is_empty()) {
      (Some(&last_dependent), false) => self.free_labels_after(last_dependent, 1)[0],
      (Some(_), true) | (None, true) => self.free_labels_at_end(1)[0],
      (None, false) => self.free_labels_at_front(1)[0],
    };
    self.add_node(slot, label);
    // Neighbours without a node had no edge, so any label agreeing with the new edges is right for them:
    // next to the new task, all at once (one by one, each would halve the same gap).
    let new_dependents: Vec<usize> = dependents
      .iter()
      .copied()
      .filter(|s| !self.nodes.contains_key(s))
      .collect();
    let labels = self.free_labels_before(self.label(slot), new_dependents.len());
    for (&dependent, label) in new_dependents.iter().zip(labels) {
      self.add_node(dependent, label);
    }
    let new_dependencies: Vec<usize> = dependencies
      .iter()
      .copied()
      .filter(|s| !self.nodes.contains_key(s))
      .collect();
    let labels = self.free_labels_after(self.label(slot), new_dependencies.len());
    for (&dependency, label) in new_dependencies.iter().zip(labels) {
      self.add_node(dependency, label);
    }
    // Every edge that already agrees with the labels, then the others one by one. `remove` undoes it all on a
    // cycle, nodes made just now included (they are left without an edge).
    for &dependent in dependents {
      self.link(dependent, slot);
    }
    for &dependency in &new_dependencies {
      self.link(slot, dependency);
    }
    for &dependency in dependencies.iter().filter(|d| !new_dependencies.contains(d)) {
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

  /// Edges visited and labels given so far.
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

  /// `count` free labels, in order, between `label` (in use, or 0 for "before everything") and the next
  /// label in use.
  fn free_labels_after(&mut self, label: u64, count: usize) -> Vec<u64> {
    if count == 0 {
      return Vec::new();
    }
    let slot = self.by_label.get(&label).copied();
    loop {
      // The label may have moved when a window was spread.
      let low = slot.map_or(label, |s| self.label(s));
      let high = self.by_label.range(low + 1..).next().map(|(&l, _)| l);
      let high = high.unwrap_or_else(|| low.saturating_add(END_GAP.saturating_mul(count as u64 + 1)));
      let step = (high - low) / (count as u64 + 1);
      if step >= 1 {
        self.steps += count as u64;
        return (1..=count as u64).map(|i| low + i * step).collect();
      }
      self.spread_around(low, count);
    }
  }

  /// `count` free labels, in order, between the label in use before `label` (in use) and `label`.
  fn free_labels_before(&mut self, label: u64, count: usize) -> Vec<u64> {
    if count == 0 {
      return Vec::new();
    }
    if let Some((&previous, _)) = self.by_label.range(..label).next_back() {
      return self.free_labels_after(previous, count);
    }
    // Before the first label: room down to 1 (0 is never a label).
    if label > count as u64 + 1 {
      let low = label.saturating_sub(END_GAP.saturating_mul(count as u64 + 1));
      let step = (label - low) / (count as u64 + 1);
      self.steps += count as u64;
      return (1..=count as u64).map(|i| low + i * step).collect();
    }
    let slot = self.by_label[&label];
    self.spread_all(count);
    self.free_labels_before(self.label(slot), count)
  }

  fn free_labels_at_end(&mut self, count: usize) -> Vec<u64> {
    match self.by_label.last_key_value() {
      Some((&last, _)) => self.free_labels_after(last, count),
      None => {
        self.steps += count as u64;
        (0..count as u64).map(|i| FIRST_LABEL + i * END_GAP).collect()
      }
    }
  }

  fn free_labels_at_front(&mut self, count: usize) -> Vec<u64> {
    match self.by_label.first_key_value() {
      Some((&first, _)) => self.free_labels_before(first, count),
      None => self.free_labels_at_end(count),
    }
  }

  /// Spreads the labels around `label` (in use) so that `count` more fit right after it. The window is the
  /// smallest aligned block of label space around `label` that is sparse enough: a block of 2^k labels may
  /// hold up to (2 / DENSITY)^k tasks, a bound that tightens as blocks grow, so relabelling costs O(log n)
  /// amortised per task even when every task lands at the same spot (Bender et al., "Two simplified
  /// algorithms for maintaining order in a list").
  fn spread_around(&mut self, label: u64, count: usize) {
    for level in 1..=64u32 {
      let size: u128 = 1 << level;
      let start = (label as u128) & !(size - 1);
      let last = (start + size - 1).min(u64::MAX as u128) as u64;
      let inside: Vec<(u64, usize)> = self
        .by_label
        .range(start as u64..=last)
        .map(|(&l, &s)| (l, s))
        .collect();
      self.steps += inside.len() as u64;
      let capacity = (2.0 / DENSITY).powi(level as i32);
      if ((inside.len() + count) as f64) < capacity || level == 64 {
        let step = (size / (inside.len() + count + 1) as u128) as u64;
        for &(old, _) in &inside {
          self.by_label.remove(&old);
        }
        // `count` places stay free right after `label`'s task.
        let mut position = 0u64;
        for &(old, slot) in &inside {
          position += 1;
          self.set_label(slot, start as u64 + position * step);
          if old == label {
            position += count as u64;
          }
        }
        return;
      }
    }
  }

  /// Gives every task an evenly spaced label, in the same order, leaving `front` places free before the
  /// first. The whole space is 2^64 labels, so this happens only after about 2^31 tasks at one end.
  fn spread_all(&mut self, front: usize) {
    let slots: Vec<usize> = self.by_label.values().copied().collect();
    let step = u64::MAX / (slots.len() as u64 + front as u64 + 2);
    self.by_label.clear();
    for (i, slot) in slots.into_iter().enumerate() {
      self.set_label(slot, (i as u64 + front as u64 + 1) * step);
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
