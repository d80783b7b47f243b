use super::*;

fn task(id: &str, priority: f64, phase: Phase, deps: &[&str]) -> TaskSpec {
  TaskSpec {
    id: id.into(),
    name: id.into(),
    priority,
    phase,
    depends_on: deps.iter().map(|d| d.to_string()).collect(),
  }
}

fn stop(id: &str, priority: f64, deps: &[&str]) -> TaskSpec {
  task(id, priority, Phase::Stop, deps)
}

fn graph(specs: Vec<TaskSpec>) -> TaskGraph {
  let mut g = TaskGraph::new();
  for s in specs {
    g.register(s).expect("registers");
  }
  g
}

fn ids(plan: &Plan, indexes: &[u32]) -> Vec<String> {
  let mut v: Vec<String> = indexes
    .iter()
    .map(|&i| plan.tasks()[i as usize].id.to_string())
    .collect();
  v.sort();
  v
}

fn index_of(plan: &Plan, id: &str) -> u32 {
  plan
    .tasks()
    .iter()
    .position(|t| &*t.id == id)
    .expect("task in plan") as u32
}

const T0: MonoTime = MonoTime::from_nanos(1_000);

/// Runs a plan to the end, settling every ready task successfully in the order they became ready, and
/// returns the batches that were started together.
fn run_all(plan: &mut Plan) -> Vec<Vec<String>> {
  let index: HashMap<String, u32> = plan
    .tasks()
    .iter()
    .enumerate()
    .map(|(i, t)| (t.id.to_string(), i as u32))
    .collect();
  let first = plan.start(T0);
  let mut batches = vec![ids(plan, &first)];
  let mut queue: std::collections::VecDeque<String> = batches[0].clone().into();
  while let Some(id) = queue.pop_front() {
    let idx = index[&id];
    let settled = plan.settle(idx, Outcome::Succeeded, T0).expect("was running");
    if !settled.ready.is_empty() {
      let batch = ids(plan, &settled.ready);
      queue.extend(batch.clone());
      batches.push(batch);
    }
  }
  assert!(plan.is_finished());
  batches
}

#[test]
fn lower_priority_numbers_run_first_and_equal_priorities_together() {
  let g = graph(vec![
    stop("late", 90.0, &[]),
    stop("a", 10.0, &[]),
    stop("b", 10.0, &[]),
    stop("mid", 50.0, &[]),
  ]);
  let batches = run_all(&mut g.plan());
  assert_eq!(batches, vec![vec!["a", "b"], vec!["mid"], vec!["late"]]);
}

#[test]
fn every_stop_task_settles_before_any_destroy_task() {
  let g = graph(vec![
    task("close-pool", 0.0, Phase::Destroy, &[]),
    stop("drain", 100.0, &[]),
    stop("readiness", 0.0, &[]),
  ]);
  let batches = run_all(&mut g.plan());
  assert_eq!(
    batches,
    vec![vec!["readiness"], vec!["drain"], vec!["close-pool"]]
  );
}

#[test]
fn a_dependent_stops_before_what_it_depends_on() {
  // http uses cache, cache uses db: http stops, then cache, then db. `other` is independent.
  let g = graph(vec![
    stop("db", 50.0, &[]),
    stop("cache", 50.0, &["db"]),
    stop("http", 50.0, &["cache"]),
    stop("other", 50.0, &[]),
  ]);
  let batches = run_all(&mut g.plan());
  assert_eq!(batches, vec![vec!["http", "other"], vec!["cache"], vec!["db"]]);
}

#[test]
fn a_shared_dependency_waits_for_all_of_its_dependents() {
  let g = graph(vec![
    stop("db", 50.0, &[]),
    stop("api", 50.0, &["db"]),
    stop("jobs", 50.0, &["db"]),
  ]);
  let mut plan = g.plan();
  let first = plan.start(T0);
  assert_eq!(ids(&plan, &first), vec!["api", "jobs"]);
  let after_api = plan
    .settle(index_of(&plan, "api"), Outcome::Succeeded, T0)
    .unwrap();
  assert!(after_api.ready.is_empty(), "db must wait for jobs too");
  let after_jobs = plan.settle(index_of(&plan, "jobs"), Outcome::Failed, T0).unwrap();
  assert_eq!(
    ids(&plan, &after_jobs.ready),
    vec!["db"],
    "a failed dependent still releases its dependency"
  );
}

#[test]
fn a_dependency_on_a_later_level_is_satisfied_by_level_order() {
  let g = graph(vec![
    stop("http", 10.0, &["db"]),
    task("db", 50.0, Phase::Destroy, &[]),
  ]);
  let batches = run_all(&mut g.plan());
  assert_eq!(batches, vec![vec!["http"], vec!["db"]]);
}

#[test]
fn a_dependency_against_priority_order_is_refused_in_either_registration_order() {
  // `api` depends on `db`, so `api` must stop first; but `db` has the lower priority number.
  let mut g = graph(vec![stop("db", 10.0, &[])]);
  let err = g.register(stop("api", 50.0, &["db"])).unwrap_err();
  assert_eq!(err.code(), "ERR_TASK_CYCLE");
  assert!(err.to_string().contains("'api' depends on 'db'"), "{err}");
  assert!(!g.contains("api"), "a refused task is not registered");

  let mut g = graph(vec![stop("api", 50.0, &["db"])]);
  let err = g.register(stop("db", 10.0, &[])).unwrap_err();
  assert_eq!(err.code(), "ERR_TASK_CYCLE");
  assert!(!g.contains("db"));
}

#[test]
fn a_dependency_against_phase_order_is_refused() {
  let mut g = graph(vec![stop("drain", 50.0, &[])]);
  let err = g
    .register(task("pool", 0.0, Phase::Destroy, &["drain"]))
    .unwrap_err();
  assert_eq!(err.code(), "ERR_TASK_CYCLE");
  assert!(err.to_string().contains("stop phase"), "{err}");
}

#[test]
fn a_loop_of_dependencies_is_refused_with_its_path() {
  let mut g = graph(vec![stop("a", 50.0, &["b"]), stop("b", 50.0, &["c"])]);
  let err = g.register(stop("c", 50.0, &["a"])).unwrap_err();
  assert_eq!(err.code(), "ERR_TASK_CYCLE");
  assert!(err.to_string().contains("'c' -> 'a' -> 'b' -> 'c'"), "{err}");
  assert_eq!(g.len(), 2);
  // Without the closing edge the same task is fine.
  g.register(stop("c", 50.0, &[])).unwrap();
}

#[test]
fn self_dependency_is_a_cycle() {
  let mut g = TaskGraph::new();
  assert_eq!(
    g.register(stop("a", 50.0, &["a"])).unwrap_err().code(),
    "ERR_TASK_CYCLE"
  );
}

#[test]
fn duplicate_ids_are_refused_and_unregister_frees_the_id() {
  let mut g = graph(vec![stop("db", 50.0, &[])]);
  assert_eq!(
    g.register(stop("db", 10.0, &[])).unwrap_err().code(),
    "ERR_TASK_EXISTS"
  );
  assert!(g.unregister("db"));
  assert!(!g.unregister("db"));
  g.register(stop("db", 10.0, &[])).unwrap();
  assert_eq!(g.len(), 1);
}

#[test]
fn unregistering_a_dependent_removes_its_edges() {
  // Had `api`'s edge survived its removal, registering db at priority 90 would be refused.
  let mut g = graph(vec![stop("api", 95.0, &["db"])]);
  assert!(g.unregister("api"));
  g.register(stop("db", 90.0, &[])).unwrap();
  g.register(stop("api", 50.0, &["db"])).unwrap();
  assert_eq!(run_all(&mut g.plan()), vec![vec!["api"], vec!["db"]]);
}

#[test]
fn unknown_dependencies_are_reported_and_ignored() {
  let g = graph(vec![stop("api", 50.0, &["nope", "db"]), stop("db", 50.0, &[])]);
  let mut plan = g.plan();
  assert_eq!(
    plan.missing_dependencies(),
    &[MissingDependency {
      task: "api".into(),
      depends_on: "nope".into()
    }]
  );
  assert_eq!(run_all(&mut plan), vec![vec!["api"], vec!["db"]]);
}

#[test]
fn negative_zero_and_zero_are_one_priority() {
  let g = graph(vec![stop("a", -0.0, &[]), stop("b", 0.0, &[])]);
  assert_eq!(run_all(&mut g.plan()), vec![vec!["a", "b"]]);
}

#[test]
fn settling_twice_or_settling_a_pending_task_does_nothing() {
  let g = graph(vec![stop("a", 10.0, &[]), stop("b", 20.0, &[])]);
  let mut plan = g.plan();
  plan.start(T0);
  let b = index_of(&plan, "b");
  assert_eq!(plan.settle(b, Outcome::Succeeded, T0), None, "b has not started");
  let a = index_of(&plan, "a");
  assert!(plan.settle(a, Outcome::TimedOut, T0).is_some());
  assert_eq!(
    plan.settle(a, Outcome::Succeeded, T0),
    None,
    "a late resolve after a timeout is ignored"
  );
  assert_eq!(plan.tasks()[a as usize].status, TaskStatus::TimedOut);
  assert_eq!(plan.settle(999, Outcome::Succeeded, T0), None);
}

#[test]
fn the_record_knows_who_is_running_since_when() {
  let g = graph(vec![stop("a", 10.0, &[]), stop("b", 20.0, &[])]);
  let mut plan = g.plan();
  let start = MonoTime::from_nanos(1_000_000_000);
  plan.start(start);
  let a = index_of(&plan, "a") as usize;
  assert_eq!(plan.tasks()[a].status, TaskStatus::Running);
  let later = start.saturating_add(Duration::from_millis(30));
  assert_eq!(plan.tasks()[a].duration(later), Duration::from_millis(30));
  let settled = plan.settle(a as u32, Outcome::Succeeded, later).unwrap();
  assert_eq!(settled.duration, Duration::from_millis(30));
  let b = index_of(&plan, "b") as usize;
  assert_eq!(plan.tasks()[b].started, Some(later));
  assert_eq!(plan.tasks()[b].status, TaskStatus::Running);
}

#[test]
fn a_task_that_timed_out_runs_on_until_its_handler_ends() {
  let g = graph(vec![
    stop("db", 10.0, &[]),
    stop("spun", 10.0, &[]),
    stop("drain", 10.0, &[]),
    stop("next", 20.0, &[]),
  ]);
  let mut plan = g.plan();
  let ms = |n| T0.saturating_add(Duration::from_millis(n));
  plan.start(T0);
  let task = |plan: &Plan, id: &str| plan.tasks()[index_of(plan, id) as usize].clone();
  // Its timer fired with the handler at work; one whose handler kept the loop past its timeout ended late.
  plan.settle(index_of(&plan, "db"), Outcome::TimedOut, ms(100));
  plan.settle(index_of(&plan, "spun"), Outcome::EndedLate, ms(150));
  assert!(task(&plan, "db").overrunning());
  assert!(!task(&plan, "spun").overrunning());
  assert_eq!(task(&plan, "spun").status, TaskStatus::TimedOut);
  let next = plan
    .settle(index_of(&plan, "drain"), Outcome::Succeeded, ms(200))
    .unwrap();
  assert_eq!(
    ids(&plan, &next.ready),
    ["next"],
    "the shutdown goes on without it"
  );
  // Its handler counts as running for the stall watch until it ends.
  assert!(task(&plan, "db").handler_running_at(ms(250)));
  assert!(!task(&plan, "drain").handler_running_at(ms(250)));
  assert_eq!(task(&plan, "db").running_for(ms(300)), Duration::from_millis(300));
  // A late end of anything else is ignored; its own ends it.
  plan.handler_ended_late(index_of(&plan, "next"), ms(300));
  plan.handler_ended_late(index_of(&plan, "drain"), ms(300));
  plan.handler_ended_late(999, ms(300));
  assert!(task(&plan, "next").handler_running_at(ms(350)));
  plan.handler_ended_late(index_of(&plan, "db"), ms(300));
  assert!(!task(&plan, "db").overrunning());
  assert!(task(&plan, "db").handler_running_at(ms(299)));
  assert!(!task(&plan, "db").handler_running_at(ms(300)));
  assert_eq!(task(&plan, "db").status, TaskStatus::TimedOut);
}

#[test]
fn the_tasks_handed_out_are_starting_until_javascript_has_called_their_handlers() {
  let g = graph(vec![
    stop("a", 10.0, &[]),
    stop("b", 10.0, &[]),
    stop("c", 20.0, &[]),
    task("d", 30.0, Phase::Destroy, &[]),
  ]);
  let mut plan = g.plan();
  let first = plan.start(T0);
  assert_eq!(plan.starting(), &first[..]);
  assert_eq!(ids(&plan, plan.starting()), ["a", "b"]);
  plan.handlers_called();
  assert!(plan.starting().is_empty());
  // A settle that starts nothing hands nothing out; the one that opens the next level does.
  let settled = plan.settle(first[0], Outcome::Succeeded, T0).unwrap();
  assert!(settled.ready.is_empty() && plan.starting().is_empty());
  let settled = plan.settle(first[1], Outcome::Succeeded, T0).unwrap();
  assert_eq!(ids(&plan, plan.starting()), ["c"]);
  assert_eq!(plan.starting(), &settled.ready[..]);
  // Its listeners ran first: its time counts from the call, 40 ms after it was handed out.
  assert!(!plan.calling());
  let called = T0.saturating_add(Duration::from_millis(40));
  plan.handlers_calling(called);
  let c = index_of(&plan, "c") as usize;
  assert_eq!(plan.tasks()[c].started, Some(called));
  assert!(plan.calling() && plan.tasks()[c].awaiting_call());
  plan.handlers_called();
  assert!(!plan.calling() && !plan.tasks()[c].awaiting_call());
  // Cutting the stop phase hands out the destroy phase's first tasks.
  let cut = plan.cut_stop_phase(T0).unwrap();
  assert_eq!(ids(&plan, plan.starting()), ["d"]);
  assert_eq!(plan.starting(), &cut.ready[..]);
}

#[test]
fn an_empty_plan_is_finished_at_once() {
  let mut plan = TaskGraph::new().plan();
  assert!(plan.start(T0).is_empty());
  assert!(plan.is_finished());
}

#[test]
fn ten_thousand_tasks_plan_and_run() {
  let mut g = TaskGraph::new();
  for i in 0..10_000 {
    // Chains of ten within three priorities: the shape a large service might have.
    let deps: Vec<String> = if i % 10 == 9 {
      vec![]
    } else {
      vec![format!("t{}", i + 1)]
    };
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    g.register(stop(&format!("t{i}"), ((i / 10) % 3) as f64, &deps))
      .unwrap();
  }
  let mut plan = g.plan();
  let batches = run_all(&mut plan);
  assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 10_000);
  assert!(plan.tasks().iter().all(|t| t.status == TaskStatus::Succeeded));
}

/// Registers `n` tasks of one shape in one order; returns the cycle checks' work. Each entry of `shape`
/// is (task, the tasks it depends on).
fn steps_for(shape: &[(usize, Vec<usize>)]) -> u64 {
  let mut g = TaskGraph::new();
  for (task, deps) in shape {
    let deps: Vec<String> = deps.iter().map(|d| format!("t{d}")).collect();
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    g.register(stop(&format!("t{task}"), 50.0, &deps)).unwrap();
  }
  g.cycle_check_steps()
}

type Shape = fn(usize) -> Vec<(usize, Vec<usize>)>;

/// A fixed pseudo-random permutation, so the counts are the same on every run.
fn shuffled(n: usize) -> Vec<usize> {
  let mut items: Vec<usize> = (0..n).collect();
  let mut seed: u64 = 42;
  for i in (1..n).rev() {
    seed = seed
      .wrapping_mul(6364136223846793005)
      .wrapping_add(1442695040888963407);
    items.swap(i, (seed >> 33) as usize % (i + 1));
  }
  items
}

const SHAPES: &[(&str, Shape)] = &[
  ("chain, forward", |n| {
    (0..n)
      .map(|i| (i, if i > 0 { vec![i - 1] } else { vec![] }))
      .collect()
  }),
  ("chain, reverse", |n| {
    (0..n)
      .rev()
      .map(|i| (i, if i > 0 { vec![i - 1] } else { vec![] }))
      .collect()
  }),
  ("chain to the next, reverse", |n| {
    (0..n).rev().map(|i| (i, vec![i + 1])).collect()
  }),
  // Every other link first, then the rest from the far end: each registration joins two long chains.
  // Before the dynamic order this walked the whole tail each time (20 000 tasks: 11 s).
  ("chain, alternating from the far end", |n| {
    let evens = (0..n).step_by(2).map(|i| (i, vec![i + 1]));
    let odds = (1..n).step_by(2).rev().map(|i| (i, vec![i + 1]));
    evens.chain(odds).collect()
  }),
  ("chain, shuffled", |n| {
    shuffled(n)
      .into_iter()
      .map(|i| (i, if i > 0 { vec![i - 1] } else { vec![] }))
      .collect()
  }),
  ("fan-in, hub last", |n| {
    (1..n).map(|i| (i, vec![0])).chain([(0, vec![])]).collect()
  }),
  ("fan-out", |n| {
    (1..n)
      .map(|i| (i, vec![]))
      .chain([(0, (1..n).collect())])
      .collect()
  }),
  // The hub first: every new task lands next to the same one.
  ("fan-in, hub first", |n| {
    [(0, vec![])]
      .into_iter()
      .chain((1..n).map(|i| (i, vec![0])))
      .collect()
  }),
  ("fan-out, hub first", |n| {
    [(0, (1..n).collect())]
      .into_iter()
      .chain((1..n).map(|i| (i, vec![])))
      .collect()
  }),
  // Every task lands between the same two: it depends on task 1, and task 0 (registered first) depends on
  // it, so each new one goes into the same gap.
  ("every task between the same two", |n| {
    [(0, (2..n).collect()), (1, vec![])]
      .into_iter()
      .chain((2..n).map(|i| (i, vec![1])))
      .collect()
  }),
  ("binary tree, leaves first", |n| {
    (0..n)
      .rev()
      .map(|i| (i, if i > 0 { vec![(i - 1) / 2] } else { vec![] }))
      .collect()
  }),
  ("binary tree, root first", |n| {
    (0..n)
      .map(|i| (i, if i > 0 { vec![(i - 1) / 2] } else { vec![] }))
      .collect()
  }),
];

#[test]
fn registration_work_grows_near_linearly_for_every_shape() {
  for (name, shape) in SHAPES {
    let small = steps_for(&shape(2_000)).max(1);
    let large = steps_for(&shape(20_000)).max(1);
    // Ten times the tasks: linear work grows 10x, n log n about 13x, quadratic 100x.
    assert!(
      large <= 20 * small.max(2_000),
      "{name}: {small} steps for 2 000 tasks, {large} for 20 000"
    );
    // n log n with a small constant: log2(20 000) is about 14.
    assert!(large <= 64 * 20_000, "{name}: {large} steps for 20 000 tasks");
  }
}

#[test]
fn a_long_chain_closed_into_a_loop_is_refused_with_its_path() {
  // t0 -> t1 -> ... -> t99; t100 depending on t0 and depended on by t99 closes the loop.
  let mut g = TaskGraph::new();
  for i in 0..100 {
    g.register(stop(&format!("t{i}"), 50.0, &[&format!("t{}", i + 1)]))
      .unwrap();
  }
  let err = g.register(stop("t100", 50.0, &["t0"])).unwrap_err();
  assert_eq!(err.code(), "ERR_TASK_CYCLE");
  assert!(
    err.to_string().contains("'t100' -> 't0' -> 't1' -> 't2'"),
    "{err}"
  );
  assert!(
    err
      .to_string()
      .ends_with("'t99' -> 't100' (each depends on the next)"),
    "{err}"
  );
  // The 102 names of the loop: the first and last six, and the 90 between counted, not listed.
  assert!(
    err.to_string().contains("'t4' -> … 90 more … -> 't95' -> 't96'"),
    "{err}"
  );
  assert!(!err.to_string().contains("'t50'"), "{err}");
  // Refused without a trace: the order still accepts everything that agrees with the chain.
  g.register(stop("t100", 50.0, &[])).unwrap();
  g.register(stop("start", 50.0, &["t0"])).unwrap();
  let mut plan = g.plan();
  let order: Vec<String> = run_all(&mut plan).concat();
  assert_eq!(order.first().map(String::as_str), Some("start"));
  assert_eq!(order.last().map(String::as_str), Some("t100"));
}

#[test]
fn unregistering_keeps_the_order_usable() {
  let mut g = TaskGraph::new();
  for round in 0..50 {
    // t19 -> t18 -> ... -> t0 -> 'loop' (not registered yet), registered in a different order each round.
    let mut order: Vec<usize> = (0..20).collect();
    order.rotate_left(round % 20);
    for i in order {
      let deps = if i > 0 {
        vec![format!("t{}", i - 1)]
      } else {
        vec!["loop".to_string()]
      };
      let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
      g.register(stop(&format!("t{i}"), 50.0, &deps)).unwrap();
    }
    let err = g.register(stop("loop", 50.0, &["t19"])).unwrap_err();
    assert_eq!(err.code(), "ERR_TASK_CYCLE", "round {round}: {err}");
    g.register(stop("loop", 50.0, &[])).unwrap();
    for id in (0..20).map(|i| format!("t{i}")).chain(["loop".to_string()]) {
      assert!(g.unregister(&id));
    }
    assert!(g.is_empty());
  }
}

#[test]
fn cutting_the_stop_phase_times_out_the_running_skips_the_rest_and_starts_destroy() {
  let g = graph(vec![
    stop("drain", 10.0, &[]),
    stop("jobs", 20.0, &[]),
    task("pool", 0.0, Phase::Destroy, &[]),
    task("logs", 50.0, Phase::Destroy, &[]),
  ]);
  let mut plan = g.plan();
  let now = MonoTime::now();
  let first = plan.start(now);
  assert_eq!(ids(&plan, &first), ["drain"]);
  let cut = plan.cut_stop_phase(now).unwrap();
  assert_eq!(ids(&plan, &cut.timed_out), ["drain"]);
  assert_eq!(ids(&plan, &cut.skipped), ["jobs"]);
  assert_eq!(ids(&plan, &cut.ready), ["pool"]);
  let status = |plan: &Plan, id: &str| plan.tasks()[index_of(plan, id) as usize].status;
  assert_eq!(status(&plan, "drain"), TaskStatus::TimedOut);
  assert_eq!(status(&plan, "jobs"), TaskStatus::Skipped);
  let drain = index_of(&plan, "drain") as usize;
  assert!(
    plan.tasks()[drain].overrunning(),
    "its handler was not ended by the cut"
  );
  // The drain settling late changes nothing; the destroy phase goes on in its order.
  assert!(
    plan
      .settle(index_of(&plan, "drain"), Outcome::Succeeded, now)
      .is_none()
  );
  let next = plan
    .settle(index_of(&plan, "pool"), Outcome::Succeeded, now)
    .unwrap();
  assert_eq!(ids(&plan, &next.ready), ["logs"]);
  assert!(plan.cut_stop_phase(now).is_none(), "the stop phase is over");
  plan.settle(index_of(&plan, "logs"), Outcome::Succeeded, now);
  assert!(plan.is_finished());
}

#[test]
fn cutting_before_the_first_task_skips_the_whole_stop_phase() {
  let g = graph(vec![stop("drain", 10.0, &[])]);
  let mut plan = g.plan();
  let cut = plan.cut_stop_phase(MonoTime::now()).unwrap();
  assert_eq!(ids(&plan, &cut.skipped), ["drain"]);
  assert!(cut.ready.is_empty());
  assert!(plan.is_finished(), "no destroy phase: nothing is left");
  assert!(plan.start(MonoTime::now()).is_empty());
}

#[test]
fn names_and_dependencies_survive_the_compact_record() {
  // The graph keeps a name only when it differs from the id, and dependencies only when there are some
  // (see `Entry`); the plan must still see both, and a name equal to its id shares the id's string.
  let mut g = TaskGraph::new();
  g.register(TaskSpec::new(
    "db",
    "database pool",
    50.0,
    Phase::Stop,
    Vec::new(),
  ))
  .unwrap();
  g.register(TaskSpec::new(
    "http",
    "http",
    50.0,
    Phase::Stop,
    vec!["db".into()],
  ))
  .unwrap();
  g.register(TaskSpec::new("cache", "cache", 50.0, Phase::Stop, Vec::new()))
    .unwrap();
  let mut plan = g.plan();
  {
    let task = |id: &str| &plan.tasks()[index_of(&plan, id) as usize];
    assert_eq!(&*task("db").name, "database pool");
    assert_eq!(&*task("http").name, "http");
    assert!(Arc::ptr_eq(&task("cache").name, &task("cache").id));
  }
  // "http" depends on "db": it runs first, and "db" waits for it.
  let started = plan.start(MonoTime::now());
  assert_eq!(ids(&plan, &started), vec!["cache", "http"]);
}

#[test]
fn registration_positions_follow_the_order_of_registration_not_the_plan() {
  // The facade finds each planned task's handler by its position among the tasks in the order they were
  // registered (its Map keeps that order): a removal closes the gap, a registration again goes last, and a
  // refused registration takes no position.
  let mut g = graph(vec![
    stop("a", 90.0, &[]),
    stop("b", 10.0, &[]),
    task("c", 10.0, Phase::Destroy, &[]),
    stop("d", 50.0, &[]),
    stop("e", 50.0, &[]),
  ]);
  assert!(g.register(stop("b", 1.0, &[])).is_err());
  assert!(g.unregister("a"));
  g.register(stop("a", 5.0, &[])).unwrap();
  let plan = g.plan();
  let registration_order = ["b", "c", "d", "e", "a"];
  let planned: Vec<&str> = plan.tasks().iter().map(|t| &*t.id).collect();
  assert_eq!(planned, ["a", "b", "d", "e", "c"]);
  let by_position: Vec<&str> = plan
    .registration_positions()
    .iter()
    .map(|&p| registration_order[p as usize])
    .collect();
  assert_eq!(by_position, planned);
}
