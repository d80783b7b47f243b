//! The JavaScript binding: converts values and errors, and calls the core. The only thing it does itself is
//! napi by nature: calling JavaScript straight from the main loop when a signal arrives (`DirectCaller`).
//!
//! Validation of user input (types, ranges, reasons) belongs to the facade (`lib/validate.js`), which throws
//! Node-style `TypeError`/`RangeError`s; this layer only maps the core's own errors to their codes. Every
//! exported function is `catch_unwind`, so even a bug cannot carry a Rust panic across the boundary (which
//! would abort the process).

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use titan_lifecycle_core::children::{self, Target};
use titan_lifecycle_core::clock::{MonoTime, duration_from_millis, millis};
use titan_lifecycle_core::error::LifecycleError;
use titan_lifecycle_core::manager::{Manager, Settlement, SignalRequest, StallEnded};
use titan_lifecycle_core::plan::{Outcome, Phase, TaskSpec};
use titan_lifecycle_core::session::{NativeEvent, Notifier, Session};
use titan_lifecycle_core::watchdog;
use titan_lifecycle_core::{exit_write, handler, js_stack, main_loop, signals, systemd, uv, v8};

/// The `code` of a thrown error, taken from [`LifecycleError::code`].
#[derive(Clone, Debug)]
pub struct ErrorCode(&'static str);

impl AsRef<str> for ErrorCode {
  fn as_ref(&self) -> &str {
    self.0
  }
}

// Signatures spell out `napi::Result<T, ErrorCode>`: napi-derive recognises a fallible function by the
// `Result` name, so an alias would be taken for a plain value.

fn js_error(err: LifecycleError) -> napi::Error<ErrorCode> {
  napi::Error::new(ErrorCode(err.code()), err.to_string())
}

fn budget(ms: f64) -> napi::Result<std::time::Duration, ErrorCode> {
  duration_from_millis(ms).ok_or_else(|| {
    napi::Error::new(
      ErrorCode("ERR_OUT_OF_RANGE"),
      format!("a budget of {ms} ms is not a duration"),
    )
  })
}

/// One manager's native half.
#[napi]
pub struct NativeShutdown {
  manager: Manager,
  /// Whether this manager lives on the main thread (the isolate whose stacks `js_stack` captures).
  main_thread: bool,
  /// The handle of this manager's shutdown in [`ATTACHED`] while JavaScript runs it.
  run_handle: Cell<Option<u32>>,
}

thread_local! {
  /// The managers whose shutdowns JavaScript runs on this thread, with the handle `begin` gave each out:
  /// `settleTask` finds its manager here rather than by unwrapping the manager's JavaScript object, which
  /// cost a shutdown of 10 000 tasks about 2 ms. Only the thread's own JavaScript reaches it. A handle is
  /// never given out twice (a counter, not a slot), so a late settle through a finished shutdown's handle
  /// finds nothing rather than another manager's task; the list holds the few shutdowns running at once.
  static ATTACHED: RefCell<Vec<(u32, Manager)>> = const { RefCell::new(Vec::new()) };
  /// The next handle to give out.
  static NEXT_HANDLE: Cell<u32> = const { Cell::new(0) };
}

/// Puts `manager` in [`ATTACHED`]; returns its handle.
fn attach_handle(manager: &Manager) -> u32 {
  let handle = NEXT_HANDLE.get();
  NEXT_HANDLE.set(handle.wrapping_add(1));
  ATTACHED.with_borrow_mut(|attached| attached.push((handle, manager.clone())));
  handle
}

/// Runs `f` with the manager whose shutdown `handle` names in [`ATTACHED`]; None if there is none (the
/// shutdown finished, or the handle is another thread's).
fn with_attached<R>(handle: u32, f: impl FnOnce(&Manager) -> R) -> Option<R> {
  ATTACHED.with_borrow(|attached| {
    let (_, manager) = attached.iter().find(|(h, _)| *h == handle)?;
    Some(f(manager))
  })
}

/// Takes `handle` out of [`ATTACHED`]. Also runs from a finalizer (the manager's object collected), where a
/// panic would abort the process: the table may be gone already (the thread is ending) or borrowed, and
/// then there is nothing to do.
fn release_handle(handle: u32) {
  let _ = ATTACHED.try_with(|attached| {
    if let Ok(mut attached) = attached.try_borrow_mut() {
      attached.retain(|(h, _)| *h != handle);
    }
  });
}

impl NativeShutdown {
  fn release_run_handle(&self) {
    if let Some(handle) = self.run_handle.take() {
      release_handle(handle);
    }
  }
}

impl Drop for NativeShutdown {
  fn drop(&mut self) {
    self.release_run_handle();
  }
}

/// What `begin` writes into the `ArrayBuffer` the facade passes: figures (`f64`, by index), then from
/// [`INDEXES_AT`](start_layout::INDEXES_AT) the plan's indexes (`u32`): one registration position per task
/// in plan order (the order the facade keeps tasks in; no id crosses: splitting a plan's ids and looking
/// each up again cost a shutdown of 10 000 tasks 2 ms), then the plan indexes of the tasks that start now.
/// The facade (lib/run.js) reads it through a `Float64Array` and a `Uint32Array` on the buffer, by the
/// layout `startBufferLayout` gives it.
/// A buffer rather than an object: on the way from a signal to the first task, right after an idle period,
/// `begin` returning an object of nine properties took 73 to 87 µs, and about 31 µs this way (each named
/// property is a key V8 looks up again, each short list an array built element by element).
mod start_layout {
  /// Milliseconds since the shutdown began (the signal handler's timestamp, or the `begin` call).
  pub const ELAPSED_MS: usize = 0;
  pub const REMAINING_MS: usize = 1;
  pub const BUDGET_MS: usize = 2;
  /// What `settleTask` names this shutdown by.
  pub const HANDLE: usize = 3;
  /// How many tasks start now (none when the first tasks wait for a shutdown delay).
  pub const READY_COUNT: usize = 4;
  /// How many figures there are.
  pub const FIGURES: usize = 5;
  /// The byte offset of the indexes, after the figures.
  pub const INDEXES_AT: usize = FIGURES * size_of::<f64>();
}

/// Where the bytes of `value` are, and how many, if it is an `ArrayBuffer`. A `SharedArrayBuffer`, which
/// another thread may write meanwhile, is refused here: `napi_get_arraybuffer_info` reads one too from
/// Node 24.9 on.
fn array_buffer_bytes(value: Unknown) -> napi::Result<(*mut u8, usize), ErrorCode> {
  use napi::sys;
  let raw = value.value();
  let (env, value) = (raw.env, raw.value);
  let mut is_array_buffer = false;
  let mut data = std::ptr::null_mut();
  let mut length = 0;
  // SAFETY: napi calls on the JavaScript thread (a method call's), with its env and its own argument.
  let read = unsafe {
    sys::napi_is_arraybuffer(env, value, &mut is_array_buffer) == sys::Status::napi_ok
      && is_array_buffer
      && sys::napi_get_arraybuffer_info(env, value, &mut data, &mut length) == sys::Status::napi_ok
  };
  if !read {
    return Err(napi::Error::new(
      ErrorCode("ERR_INVALID_ARG_TYPE"),
      "begin writes into an ArrayBuffer (not a SharedArrayBuffer)".to_owned(),
    ));
  }
  Ok((data.cast(), length))
}

/// What `begin` returns when the shutdown's trigger is not only its reason (JavaScript passes the signal it
/// heard of, so the signal is news only when another one began the shutdown) or a dependency is missing.
#[napi(object)]
pub struct RunDetails {
  pub reason: String,
  pub signal: Option<String>,
  pub missing: Vec<MissingDependency>,
}

/// A list of plan indexes or lengths for JavaScript (`startTasks`, `settleTask`): an array when short, a
/// typed array when long. A typed array napi-rs makes is an external buffer with a finalizer, which cost a
/// short list 30 µs more than an array; an array is built element by element, which cost a shutdown of
/// 10 000 tasks about a millisecond per list.
/// (Spelled out where napi-rs reads it: an alias does not reach the generated typings.)
pub type IndexList = Either<Vec<u32>, Uint32Array>;

/// Lists longer than this cross as typed arrays (see [`IndexList`]).
const SHORT_LIST: usize = 64;

fn index_list(values: Vec<u32>) -> IndexList {
  if values.len() <= SHORT_LIST {
    Either::A(values)
  } else {
    Either::B(Uint32Array::new(values))
  }
}

/// A `dependsOn` entry naming a task that was never registered.
#[napi(object)]
pub struct MissingDependency {
  pub task_id: String,
  pub depends_on: String,
}

/// `settleTask`'s answer when no task starts because of it: the task was not running (a late settle after a
/// timeout), or it was the last and the shutdown's tasks are all done.
const SETTLE_NOT_RUNNING: i32 = -1;
const SETTLE_FINISHED: i32 = -2;

/// Every task's state at the end of a shutdown, in plan order, as columns (one typed array each rather
/// than an object per task).
#[napi(object)]
pub struct TaskStates {
  /// `TaskStatus` codes: 0 pending, 1 running, 2 succeeded, 3 failed, 4 timed out, 5 skipped.
  pub statuses: Uint8Array,
  pub durations_ms: Float64Array,
  /// Since the shutdown began; NaN for a task that never started.
  pub starts_ms: Float64Array,
}

/// What cutting the stop phase did (see `cutStopPhase`).
#[napi(object)]
pub struct StopPhaseCut {
  /// Stop tasks that were running, now timed out.
  pub timed_out: Vec<u32>,
  /// Stop tasks that never started and never will.
  pub skipped: Vec<u32>,
  /// Destroy tasks to start now.
  pub ready: Vec<u32>,
  pub finished: bool,
}

/// A stall of the event loop during a shutdown, reported when the loop answers again.
#[napi(object)]
pub struct Stall {
  /// How long the loop did not answer (short of the real stall by at most the probe interval).
  pub blocked_ms: f64,
  /// Where the loop was, innermost frame first, one `    at name (file:line:column)` per line, as in an
  /// `Error`'s stack; none if it was outside JavaScript (native code or a system call) or stacks cannot be
  /// captured here.
  pub stack: Option<String>,
  /// The tasks that were running during the stall (by id).
  pub running: Vec<String>,
}

impl From<StallEnded> for Stall {
  fn from(stall: StallEnded) -> Self {
    Self {
      blocked_ms: millis(stall.blocked),
      stack: stall.stack,
      running: stall.running,
    }
  }
}

/// Where the hard exit writes Node's diagnostic report.
#[napi(object)]
pub struct DiagnosticReportTarget {
  /// The directory as Node must be given it (relative to `process.report.directory` when one is set).
  pub for_node: String,
  /// The directory to print.
  pub shown: String,
}

/// What this process can tell about where a blocked loop is.
#[napi(object)]
pub struct StackSupport {
  /// Whether the JavaScript stack can be captured; `reason` says why not.
  pub stack: bool,
  pub diagnostic_report: bool,
  pub reason: Option<String>,
}

/// How a manager owns signals.
#[napi(object)]
pub struct SignalOptions {
  /// Signal numbers to own.
  pub signals: Vec<i32>,
  /// The budget of a signal-triggered shutdown (`gracefulShutdownTimeout`).
  pub budget_ms: f64,
  /// A second owned signal during a shutdown exits at once.
  pub escalate: bool,
  /// The exit code of that exit; none for 128 + the signal number.
  pub second_signal_code: Option<i32>,
  /// Keep owned signals from JavaScript `process.on(signal)` listeners.
  pub exclusive: bool,
}

/// An event from the watchdog thread, as JavaScript receives it.
#[napi(object)]
pub struct NativeEventJs {
  /// 'signal' | 'probe' | 'stall-probe' | 'deadline' | 'displaced', or 'stale' for news of a signal
  /// JavaScript already had
  pub kind: String,
  pub signal: Option<String>,
  /// For 'signal': how long ago the handler ran, measured when JavaScript receives the event.
  pub elapsed_ms: Option<f64>,
  pub detail: Option<String>,
}

type EventFunction = ThreadsafeFunction<NativeEvent, (), NativeEventJs, Status, false, true>;

struct JsNotifier(EventFunction);

impl Notifier for JsNotifier {
  fn notify(&self, event: NativeEvent) {
    // Non-blocking and weak: the watchdog never waits, and a pending event never keeps the process alive.
    // After the environment is torn down the call returns `Closing`, which needs no handling.
    let _ = self.0.call(event, ThreadsafeFunctionCallMode::NonBlocking);
  }
}

/// Runs on the JavaScript thread, so `elapsed_ms` counts the time the event spent in the queue.
fn event_to_js(ctx: ThreadsafeCallContext<NativeEvent>) -> napi::Result<NativeEventJs> {
  let name = |signo| signals::name_of(signo).map(str::to_owned);
  Ok(match ctx.value {
    // The watchdog's news of a signal that libuv's callback delivered meanwhile tells nothing new.
    NativeEvent::Signal { seq: Some(seq), .. } if !handler::claim_delivery(seq) => NativeEventJs {
      kind: "stale".into(),
      signal: None,
      elapsed_ms: None,
      detail: None,
    },
    NativeEvent::Signal { signo, at, .. } => NativeEventJs {
      kind: "signal".into(),
      signal: name(signo),
      elapsed_ms: Some(millis(MonoTime::now().saturating_since(at))),
      detail: None,
    },
    NativeEvent::Probe => NativeEventJs {
      kind: "probe".into(),
      signal: None,
      elapsed_ms: None,
      detail: None,
    },
    NativeEvent::StallProbe => NativeEventJs {
      kind: "stall-probe".into(),
      signal: None,
      elapsed_ms: None,
      detail: None,
    },
    NativeEvent::Deadline => NativeEventJs {
      kind: "deadline".into(),
      signal: None,
      elapsed_ms: None,
      detail: None,
    },
    NativeEvent::Displaced(displacement) => NativeEventJs {
      kind: "displaced".into(),
      signal: name(displacement.signo),
      elapsed_ms: None,
      detail: Some(displacement.describe()),
    },
  })
}

/// Calls JavaScript straight from the pin's libuv callback, the way Node calls its own signal listeners:
/// on the main thread, inside a callback scope (`napi_make_callback`), so microtasks and `nextTick`s run
/// when it returns. It calls one module-level dispatcher that forwards to whichever manager owns the
/// signals, so the reference and the async context are made once per process and never released: no
/// manager is kept alive through them. Saves the threadsafe function's extra trip through the loop.
struct DirectCaller {
  env: napi::sys::napi_env,
  dispatcher: napi::sys::napi_ref,
  context: napi::sys::napi_async_context,
  /// The context's resource, held: napi holds one it was given only weakly, and after a garbage collection
  /// swaps in an empty object, which loses what AsyncLocalStorage keeps on it (the store the manager was
  /// made in) and the resource's `hasRef()`. Null when napi made its own.
  _resource: napi::sys::napi_ref,
}

// SAFETY: only the main thread uses it (it is made in `own_signals` and used by the pin's callback, both
// on the main thread); `Send`/`Sync` only let it live in a static.
unsafe impl Send for DirectCaller {}
// SAFETY: as above.
unsafe impl Sync for DirectCaller {}

static DIRECT_CALLER: std::sync::OnceLock<DirectCaller> = std::sync::OnceLock::new();

fn make_direct_caller(env: &Env, dispatcher: &Function<NativeEventJs, ()>) -> Option<DirectCaller> {
  use napi::sys;
  let raw_env = env.raw();
  // SAFETY: plain napi calls on the main thread (own_signals checked its loop is the main one) with a live
  // env and the dispatcher's own value; that is also unreferenced_resource's contract.
  unsafe {
    let mut dispatcher_ref = std::ptr::null_mut();
    if sys::napi_create_reference(raw_env, dispatcher.raw(), 1, &mut dispatcher_ref) != sys::Status::napi_ok {
      return None;
    }
    let mut name = std::ptr::null_mut();
    let label = "titan-lifecycle:signal";
    sys::napi_create_string_utf8(raw_env, label.as_ptr().cast(), label.len() as isize, &mut name);
    let resource = unreferenced_resource(raw_env);
    let mut resource_ref = std::ptr::null_mut();
    if !resource.is_null()
      && sys::napi_create_reference(raw_env, resource, 1, &mut resource_ref) != sys::Status::napi_ok
    {
      resource_ref = std::ptr::null_mut();
    }
    let mut context = std::ptr::null_mut();
    if sys::napi_async_init(raw_env, resource, name, &mut context) != sys::Status::napi_ok {
      sys::napi_delete_reference(raw_env, dispatcher_ref);
      if !resource_ref.is_null() {
        sys::napi_delete_reference(raw_env, resource_ref);
      }
      return None;
    }
    Some(DirectCaller {
      env: raw_env,
      dispatcher: dispatcher_ref,
      context,
      _resource: resource_ref,
    })
  }
}

/// The object async hooks are given for the dispatch's async context (null on a failure, and napi makes
/// an empty one). Its `hasRef()` says false, as Node's own handles answer for one that does not keep the
/// loop alive: the pins are unref'd, and the context, made once, is never destroyed, so tools that list
/// what might keep a process from exiting (`jest --detectOpenHandles`, why-is-node-running) skip it
/// rather than report it for ever.
///
/// # Safety
/// `env` is the live main env, on the main thread.
unsafe fn unreferenced_resource(env: napi::sys::napi_env) -> napi::sys::napi_value {
  use napi::sys;
  let mut resource = std::ptr::null_mut();
  let mut has_ref = std::ptr::null_mut();
  let name = c"hasRef";
  // SAFETY: the caller's contract; plain napi calls with valid out-pointers and a NUL-terminated name.
  unsafe {
    if sys::napi_create_object(env, &mut resource) != sys::Status::napi_ok
      || sys::napi_create_function(
        env,
        name.as_ptr(),
        6,
        Some(keeps_no_loop_alive),
        std::ptr::null_mut(),
        &mut has_ref,
      ) != sys::Status::napi_ok
      || sys::napi_set_named_property(env, resource, name.as_ptr(), has_ref) != sys::Status::napi_ok
    {
      return std::ptr::null_mut();
    }
  }
  resource
}

/// `hasRef()` of [`unreferenced_resource`]: always false.
unsafe extern "C" fn keeps_no_loop_alive(
  env: napi::sys::napi_env,
  _: napi::sys::napi_callback_info,
) -> napi::sys::napi_value {
  let mut result = std::ptr::null_mut();
  // SAFETY: napi calls this on `env`'s own thread with a live env; `result` is a valid out-pointer (left
  // null on a failure, which JavaScript receives as undefined, also falsy).
  unsafe { napi::sys::napi_get_boolean(env, false, &mut result) };
  result
}

/// The [`main_loop::LoopSignalHook`]: runs on the main thread, from the pin's libuv callback.
fn call_javascript_on_loop(signo: i32, at: MonoTime) -> bool {
  use napi::sys;
  let Some(caller) = DIRECT_CALLER.get() else {
    return false;
  };
  let event = NativeEventJs {
    kind: "signal".into(),
    signal: signals::name_of(signo).map(str::to_owned),
    elapsed_ms: Some(millis(MonoTime::now().saturating_since(at))),
    detail: None,
  };
  let env = caller.env;
  // SAFETY: main thread, outside any JavaScript (a libuv callback), with the main env, which outlives the
  // pins (they are closed in its cleanup hook, and the hook is cleared there too).
  unsafe {
    let mut scope = std::ptr::null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
      return false;
    }
    let mut function = std::ptr::null_mut();
    // napi_make_callback wants an object to call on; the dispatcher ignores `this`.
    let mut receiver = std::ptr::null_mut();
    let mut called = CallOutcome::NotCalled;
    if sys::napi_get_reference_value(env, caller.dispatcher, &mut function) == sys::Status::napi_ok
      && !function.is_null()
      && sys::napi_get_global(env, &mut receiver) == sys::Status::napi_ok
      && !exception_pending(env)
      && let Ok(argument) = NativeEventJs::to_napi_value(env, event)
    {
      let mut result = std::ptr::null_mut();
      let status =
        sys::napi_make_callback(env, caller.context, receiver, function, 1, &argument, &mut result);
      called = if status == sys::Status::napi_ok {
        CallOutcome::Returned
      } else if status == sys::Status::napi_pending_exception {
        // Nothing was pending before the call, and the dispatcher catches everything it runs itself: what
        // threw is user code the callback's scope ran after it, a `process.nextTick` callback (a task's, a
        // listener's). The signal has been delivered.
        CallOutcome::UserCodeThrew
      } else {
        CallOutcome::NotCalled
      };
    }
    let mut error = std::ptr::null_mut();
    if exception_pending(env) {
      sys::napi_get_and_clear_last_exception(env, &mut error);
    }
    if called == CallOutcome::UserCodeThrew && !error.is_null() {
      // Raised as Node raises any error thrown by a callback of the event loop: 'uncaughtException' (the
      // manager's hook makes it fatal to the shutdown), or Node's crash without one. napi's own scope
      // caught it, so without this it would be lost, and the process exit 0.
      sys::napi_fatal_exception(env, error);
    }
    // A failure of napi's (NotCalled) leaves no exception behind, and the caller falls back to the
    // threadsafe function.
    sys::napi_close_handle_scope(env, scope);
    called != CallOutcome::NotCalled
  }
}

/// How [`call_javascript_on_loop`]'s call of the dispatcher went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallOutcome {
  /// napi could not make the call (or the event could not be made): the signal is not delivered.
  NotCalled,
  Returned,
  /// The dispatcher ran, then code its callback scope ran (the tick queue) threw.
  UserCodeThrew,
}

/// Whether a JavaScript exception is pending on `env` (napi refuses most calls while one is).
///
/// # Safety
/// `env` is a live env, on its own thread.
unsafe fn exception_pending(env: napi::sys::napi_env) -> bool {
  let mut pending = false;
  // SAFETY: the caller's contract; `pending` is a valid out-pointer.
  unsafe { napi::sys::napi_is_exception_pending(env, &mut pending) == napi::sys::Status::napi_ok && pending }
}

/// libuv, and the loop `env` runs on (the main thread's when it is libuv's default loop). A host without
/// libuv (a runtime that loads Node addons but is not Node) fails with `ERR_NATIVE_UNAVAILABLE` rather than
/// being taken for another thread: a manager made there would run without its hard exit.
fn libuv_for(env: &Env) -> napi::Result<(&'static uv::Uv, *mut std::ffi::c_void), ErrorCode> {
  let uv = uv::api().map_err(js_error)?;
  let event_loop = env
    .get_uv_event_loop()
    .map_err(|e| js_error(LifecycleError::NativeUnavailable { what: e.reason }))?;
  Ok((uv, event_loop.cast()))
}

#[napi]
impl NativeShutdown {
  /// `hard_exit_code`: the code the watchdog exits with at the deadline, or none for a manager that must
  /// never kill the process. Outside the main thread it is always none: the watchdog belongs to the process.
  /// Fails with `ERR_NATIVE_UNAVAILABLE` where the host exports no libuv.
  #[napi(constructor, catch_unwind)]
  pub fn new(env: Env, hard_exit_code: Option<i32>) -> napi::Result<Self, ErrorCode> {
    let (uv, event_loop) = libuv_for(&env)?;
    let main_thread = uv.is_main_loop(event_loop);
    let enforced = hard_exit_code.filter(|_| main_thread);
    if main_thread && !v8::main_isolate_known() && v8::capture_main_isolate(env.raw().cast()).is_ok() {
      // The isolate is taken here, on its own thread, and given up when the main environment is torn down
      // (no interrupt may be asked of a freed isolate). The other V8 functions are resolved by the watchdog
      // thread when it starts, off this thread: the lookups in node's symbol table cost 0.1 ms.
      let _ = env.add_env_cleanup_hook((), |()| v8::forget_main_isolate());
    }
    Ok(Self {
      manager: Manager::new(Session::new(enforced)),
      main_thread,
      run_handle: Cell::new(None),
    })
  }

  /// The stall threshold a shutdown watches the event loop with (`stallThreshold`); none or 0: it does not.
  #[napi(catch_unwind)]
  pub fn set_stall_threshold(&self, threshold_ms: Option<f64>) -> napi::Result<(), ErrorCode> {
    let threshold = threshold_ms.map(budget).transpose()?.filter(|t| !t.is_zero());
    self
      .manager
      .session()
      .stalls
      .configure(threshold, self.main_thread);
    Ok(())
  }

  /// Whether this manager's deadline is enforced natively.
  /// Whether this manager was made on the main thread, the only one whose manager can own the signals:
  /// register's manager takes them only when claimed, and is refused in a worker when it is made.
  #[napi(getter, catch_unwind)]
  pub fn main_thread(&self) -> bool {
    self.main_thread
  }

  #[napi(getter, catch_unwind)]
  pub fn enforced(&self) -> bool {
    self.manager.session().hard_exit_code().is_some()
  }

  #[napi(catch_unwind)]
  pub fn register(
    &self,
    id: String,
    name: String,
    priority: f64,
    phase: String,
    depends_on: Vec<String>,
  ) -> napi::Result<(), ErrorCode> {
    let phase = match phase.as_str() {
      "stop" => Phase::Stop,
      "destroy" => Phase::Destroy,
      _ => {
        return Err(napi::Error::new(
          ErrorCode("ERR_INVALID_ARG_VALUE"),
          format!("unknown phase '{phase}'"),
        ));
      }
    };
    self.manager.session().touch();
    self
      .manager
      .session()
      .record()
      .register(TaskSpec::new(&id, &name, priority, phase, depends_on))
      .map_err(js_error)
  }

  /// Registers a burst of tasks in one call: what `registerTask` defers for tasks that can neither close a
  /// dependency loop nor break a level rule (no `dependsOn`, and no task waits for them). `ids` and `names`
  /// are NUL-separated, `names` null when every name is its id; `phases[i]` is 0 for stop, 1 for destroy.
  /// Returns false, registering none, when they do not split into one id and one name per priority: an id
  /// or a name holds a NUL itself, and the facade sends that burst one task at a time instead (one scan
  /// here rather than a check of every id and name as JavaScript registers it). Stops at the first error;
  /// the tasks before it stay registered.
  #[napi(catch_unwind)]
  pub fn register_many(
    &self,
    ids: String,
    names: Option<String>,
    priorities: &[f64],
    phases: &[u8],
  ) -> napi::Result<bool, ErrorCode> {
    let count = priorities.len();
    // A count of separators rather than a split: it runs over the bytes without stopping at each id.
    let pieces = |joined: &str| joined.bytes().filter(|&b| b == 0).count() + 1;
    if phases.len() != count || pieces(&ids) != count || names.as_deref().is_some_and(|n| pieces(n) != count)
    {
      return Ok(false);
    }
    let names = names.as_deref().unwrap_or(&ids);
    let specs = ids
      .split('\0')
      .zip(names.split('\0'))
      .zip(priorities.iter().zip(phases))
      .map(|((id, name), (&priority, &phase))| {
        let phase = if phase == 0 { Phase::Stop } else { Phase::Destroy };
        TaskSpec::new(id, name, priority, phase, Vec::new())
      });
    self.manager.session().touch();
    let mut record = self.manager.session().record();
    record.reserve_tasks(count);
    record.register_many(specs).map_err(js_error)?;
    Ok(true)
  }

  /// JavaScript holds registrations it will send at the end of this turn (see `registerMany`): a report
  /// written before then (the loop never came back) says there are tasks it does not know.
  #[napi(catch_unwind)]
  pub fn note_unsent_tasks(&self) {
    self.manager.session().touch();
    self.manager.session().record().note_unsent_tasks();
  }

  #[napi(catch_unwind)]
  pub fn unregister(&self, id: String) -> napi::Result<bool, ErrorCode> {
    self.manager.session().touch();
    self.manager.session().record().unregister(&id).map_err(js_error)
  }

  #[napi(getter, catch_unwind)]
  pub fn state(&self) -> &'static str {
    self.manager.session().record().state().as_str()
  }

  /// Begins the shutdown (or picks up the one a signal began natively) and hands its first tasks over.
  /// `signal`: the owned signal JavaScript was told of, if that is what started it; the shutdown then counts
  /// from the instant the handler ran, whichever of JavaScript and the watchdog gets here first.
  /// `start_tasks: false` attaches without starting the first tasks (a shutdown delay comes first; see
  /// `startTasks`). `task_count`: how many tasks the facade holds; a different count natively refuses the
  /// shutdown before anything begins (`ERR_INTERNAL_ASSERTION`), as the plan names tasks by position.
  /// `start`: an `ArrayBuffer` where the figures and the plan's indexes go (`start_layout` in
  /// src/binding.rs), with room for `2 × task_count` indexes after the figures. Returns the shutdown's
  /// reason, or its details when the signal is not the one passed or a dependency is missing.
  #[napi(catch_unwind)]
  pub fn begin(
    &self,
    reason: String,
    budget_ms: f64,
    signal: Option<String>,
    start_tasks: bool,
    task_count: u32,
    #[napi(ts_arg_type = "ArrayBuffer")] start: Unknown,
  ) -> napi::Result<Either<String, RunDetails>, ErrorCode> {
    use start_layout::*;
    let (data, length) = array_buffer_bytes(start)?;
    let budget = budget(budget_ms)?;
    // Checked before anything begins: a shutdown attached and then refused would be left to the watchdog.
    let plan_len = task_count as usize;
    let needed = INDEXES_AT + 2 * plan_len * size_of::<u32>();
    if length < needed {
      return Err(napi::Error::new(
        ErrorCode("ERR_INTERNAL_ASSERTION"),
        format!(
          "begin was given {length} bytes, and {plan_len} tasks need {needed} (a bug in titan-lifecycle: \
           please report it)"
        ),
      ));
    }
    let signo = signal.as_deref().and_then(signal_number);
    let now = MonoTime::now();
    let attached = self
      .manager
      .begin(reason, budget, signo, start_tasks, plan_len, now)
      .map_err(js_error)?;
    let deadline = attached.deadline;
    self.release_run_handle();
    let handle = attach_handle(&self.manager);
    self.run_handle.set(Some(handle));
    let write = |at: usize, bytes: &[u8]| {
      debug_assert!(at + bytes.len() <= needed);
      // SAFETY: `data` holds `length` bytes of an ArrayBuffer (not a shared one: `array_buffer_bytes`),
      // alive and attached for this whole call (no JavaScript runs during it); every write lies within the
      // first `needed <= length` bytes (the layout's figures, then 2 × `plan_len` indexes, checked above);
      // and no Rust reference to these bytes exists, so a raw write aliases nothing.
      unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.add(at), bytes.len()) };
    };
    let figure = |at: usize, value: f64| write(at * size_of::<f64>(), &value.to_ne_bytes());
    figure(ELAPSED_MS, millis(deadline.elapsed(now)));
    figure(REMAINING_MS, millis(deadline.remaining(now)));
    figure(BUDGET_MS, millis(deadline.budget()));
    figure(HANDLE, f64::from(handle));
    figure(READY_COUNT, attached.ready.len() as f64);
    // The native count equals `task_count` (checked by `begin`), so both lists fit the room checked above.
    let plan = attached.registration_positions.iter().chain(&attached.ready);
    for (k, index) in plan.enumerate() {
      write(INDEXES_AT + k * size_of::<u32>(), &index.to_ne_bytes());
    }
    if attached.signal == signo && signo.is_some() == signal.is_some() && attached.missing.is_empty() {
      return Ok(Either::A(attached.reason));
    }
    Ok(Either::B(RunDetails {
      reason: attached.reason,
      signal: attached.signal.and_then(signals::name_of).map(str::to_owned),
      missing: attached
        .missing
        .into_iter()
        .map(|m| MissingDependency {
          task_id: m.task,
          depends_on: m.depends_on,
        })
        .collect(),
    }))
  }

  /// Starts the first tasks of a shutdown attached with `start_tasks: false`; returns them.
  #[napi(catch_unwind)]
  pub fn start_tasks(&self) -> Either<Vec<u32>, Uint32Array> {
    index_list(self.manager.start_tasks(MonoTime::now()))
  }

  /// Ends the stop phase now (the destroy phase's reserve of time has come): running stop tasks are recorded
  /// as timed out, those not started as skipped, and the destroy phase's first tasks start. Null if the stop
  /// phase is over already.
  #[napi(catch_unwind)]
  pub fn cut_stop_phase(&self) -> Option<StopPhaseCut> {
    self.manager.session().touch();
    let mut record = self.manager.session().record();
    let cut = record.cut_stop_phase(MonoTime::now())?;
    let finished = record.run().is_some_and(|r| r.plan.is_finished());
    Some(StopPhaseCut {
      timed_out: cut.timed_out,
      skipped: cut.skipped,
      ready: cut.ready,
      finished,
    })
  }

  /// Marks the shutdown finished. Unless the process is about to exit, stands the watchdog down, and
  /// lets go of JavaScript unless signals still need it.
  #[napi(catch_unwind)]
  pub fn finish(&self, exit_code: i32, exiting: bool) -> Option<Stall> {
    self.release_run_handle();
    self.manager.finish(exit_code, exiting).map(Stall::from)
  }

  /// A finished shutdown that did not exit is asked to exit after all (by a 'shutdown:complete' listener, a
  /// signal or `stop({ exit: true })`): a signal from now on exits with `exit_code`, and the deadline is
  /// armed again; false when that deadline has passed, and JavaScript exits at once.
  #[napi(catch_unwind)]
  pub fn exit_after_finish(&self, exit_code: i32) -> bool {
    self.manager.exit_after_finish(exit_code)
  }

  /// Every task of the shutdown, in plan order, with its status and duration.
  #[napi(catch_unwind)]
  pub fn task_states(&self) -> TaskStates {
    let now = MonoTime::now();
    let record = self.manager.session().record();
    let tasks = record.run().map_or(&[][..], |run| run.plan.tasks());
    let began = record.run().map(|run| run.deadline.start());
    TaskStates {
      statuses: Uint8Array::new(tasks.iter().map(|t| t.status as u8).collect()),
      durations_ms: Float64Array::new(tasks.iter().map(|t| millis(t.duration(now))).collect()),
      starts_ms: Float64Array::new(
        tasks
          .iter()
          .map(|t| match (t.started, began) {
            (Some(started), Some(began)) => millis(started.saturating_since(began)),
            _ => f64::NAN,
          })
          .collect(),
      ),
    }
  }

  /// Whether stacks and diagnostic reports can be had in this process, and if not, why.
  #[napi(catch_unwind)]
  pub fn stack_support(&self) -> StackSupport {
    let availability = js_stack::availability();
    StackSupport {
      stack: availability.is_ok(),
      diagnostic_report: js_stack::can_write_diagnostic_report(),
      reason: availability.err().map(str::to_owned),
    }
  }

  /// Makes the hard exit write Node's diagnostic report into `directory` (none: no report).
  #[napi(catch_unwind)]
  pub fn set_diagnostic_report(&self, target: Option<DiagnosticReportTarget>) -> napi::Result<(), ErrorCode> {
    let target = target
      .map(|t| {
        CString::new(t.for_node)
          .map(|for_node| js_stack::ReportTarget {
            for_node,
            shown: t.shown,
          })
          .map_err(|_| {
            napi::Error::new(
              ErrorCode("ERR_INVALID_ARG_VALUE"),
              "the diagnostic report directory contains a NUL character".to_string(),
            )
          })
      })
      .transpose()?;
    self.manager.session().set_report_target(target);
    Ok(())
  }

  /// JavaScript's answer to a stall probe: the stall it ended, if the loop took the threshold or more to
  /// answer.
  #[napi(catch_unwind)]
  pub fn answer_stall_probe(&self) -> Option<Stall> {
    self.manager.answer_stall_probe(MonoTime::now()).map(Stall::from)
  }

  /// Tells systemd what the shutdown is doing (`STATUS=`), if this manager owns the signals and systemd
  /// listens (`NOTIFY_SOCKET`).
  #[napi(catch_unwind)]
  pub fn notify_status(&self, text: String) {
    self.manager.notify_status(&text);
  }

  /// JavaScript's answer to the watchdog's probe: its event loop is free.
  #[napi(catch_unwind)]
  pub fn answer_probe(&self) {
    self.manager.session().touch();
    self.manager.session().probe.answer();
  }

  /// JavaScript has emitted its hard-exit events; the watchdog may exit now.
  #[napi(catch_unwind)]
  pub fn answer_deadline(&self) {
    self.manager.session().deadline_event.answer();
  }

  /// JavaScript exits on its own during a hard exit (user code at the deadline, or a 'shutdown:complete'
  /// listener, called `process.exit()`): lets the watchdog write its report and end the process first, waiting a bounded time.
  #[napi(catch_unwind)]
  pub fn wait_for_hard_exit(&self) {
    self.manager.wait_for_hard_exit();
  }

  /// Sets the function that receives the watchdog's events, unless one is already set. The session lets
  /// go of it once nothing can need it (see `finish` and `release_signals`); call again before the next need.
  #[napi(catch_unwind)]
  pub fn listen(&self, callback: Function<NativeEventJs, ()>) -> napi::Result<()> {
    if self.manager.session().has_notifier() {
      return Ok(());
    }
    let function: EventFunction = callback
      .build_threadsafe_function::<NativeEvent>()
      .weak::<true>()
      .build_callback(event_to_js)?;
    self
      .manager
      .session()
      .set_notifier(Arc::new(JsNotifier(function)));
    Ok(())
  }

  /// Takes ownership of the given signals for this manager. `dispatcher`: a module-level function that
  /// forwards a signal event to the manager owning the signals; it is called directly from the main loop
  /// (see `DirectCaller`).
  #[napi(catch_unwind)]
  pub fn own_signals(
    &self,
    env: Env,
    options: SignalOptions,
    dispatcher: Function<NativeEventJs, ()>,
  ) -> napi::Result<(), ErrorCode> {
    let SignalOptions {
      signals: signal_numbers,
      budget_ms,
      escalate,
      second_signal_code,
      exclusive,
    } = options;
    let (uv, event_loop) = libuv_for(&env)?;
    if !uv.is_main_loop(event_loop) {
      return Err(js_error(LifecycleError::NotMainThread));
    }
    let request = SignalRequest {
      signals: &signal_numbers,
      budget: budget(budget_ms)?,
      policy: signals::Policy {
        escalate,
        second_signal_exit: second_signal_code,
        exclusive,
      },
    };
    // SAFETY: a napi call runs on its environment's thread, and `event_loop` was just checked to be the
    // main loop, so this is the main thread with its live loop.
    unsafe { self.manager.own_signals(uv, event_loop, request) }.map_err(js_error)?;
    if DIRECT_CALLER.get().is_none()
      && let Some(caller) = make_direct_caller(&env, &dispatcher)
    {
      let _ = DIRECT_CALLER.set(caller);
    }
    main_loop::set_loop_signal_hook(Some(call_javascript_on_loop));
    // SAFETY: as above: the main thread, with its live main loop.
    unsafe { start_systemd_pings(&env, uv, event_loop) };
    install_teardown_hook(&env);
    Ok(())
  }

  /// Gives the signals back (to libuv, or Node's defaults). Does nothing if this manager does not own them.
  /// Returns the name of a signal that arrived before and that JavaScript has not heard of: it has begun
  /// (or joined) this manager's shutdown natively, and JavaScript must run it.
  #[napi(catch_unwind)]
  pub fn release_signals(&self) -> Option<String> {
    let undelivered = self.manager.release_signals(uv::api().ok());
    undelivered.and_then(signals::name_of).map(str::to_owned)
  }
}

/// At the main environment's teardown the pins must be closed (libuv aborts on open handles) and our
/// handler put straight back; see `signals::on_env_teardown`. Installed once per process.
fn install_teardown_hook(env: &Env) {
  static INSTALLED: AtomicBool = AtomicBool::new(false);
  add_cleanup_hook_once(&INSTALLED, env, || {
    main_loop::set_loop_signal_hook(None);
    let _ = watchdog::set_signal_owner(None);
    if let Ok(uv) = uv::api() {
      signals::on_env_teardown(uv);
    }
  });
}

/// Starts systemd's watchdog pings (if systemd asks for them, once per process) and, with them, the hook
/// that closes their timer at the main environment's teardown (libuv aborts on open handles). The pings'
/// own hook, not the signal owner's: `ready()` starts them in a process that may own no signal, whose exit
/// must not start the watchdog or touch the signal slots.
///
/// # Safety
/// Must run on the main thread, and `event_loop` must be its live libuv loop.
unsafe fn start_systemd_pings(env: &Env, uv: &'static uv::Uv, event_loop: *mut std::ffi::c_void) {
  // SAFETY: this function's contract.
  unsafe { systemd::start_pings(uv, event_loop.cast()) };
  static INSTALLED: AtomicBool = AtomicBool::new(false);
  add_cleanup_hook_once(&INSTALLED, env, || {
    if let Ok(uv) = uv::api() {
      systemd::on_env_teardown(uv);
    }
  });
}

/// Adds `hook` to the environment's cleanup hooks, unless `installed` says it was added already (the main
/// environment's hooks are per process; a failed add leaves it to the next call).
fn add_cleanup_hook_once(installed: &AtomicBool, env: &Env, hook: fn()) {
  if installed.swap(true, Ordering::AcqRel) {
    return;
  }
  if env.add_env_cleanup_hook((), move |()| hook()).is_err() {
    installed.store(false, Ordering::Release);
  }
}

/// The package's own JavaScript (files and directories): runs of frames in it are summed up in stacks.
#[napi(catch_unwind)]
pub fn set_package_paths(paths: Vec<String>) {
  js_stack::set_own_paths(paths);
}

/// Where `begin` writes what (`start_layout`), for the facade to read it by, so the layout has one source:
/// the index of each figure (a double), how many figures there are, and the byte offset of the indexes.
#[napi(object)]
pub struct StartBufferLayout {
  pub elapsed_ms: u32,
  pub remaining_ms: u32,
  pub budget_ms: u32,
  pub handle: u32,
  pub ready_count: u32,
  /// How many figures there are.
  pub figures: u32,
  /// The byte offset of the plan's indexes (32-bit), after the figures.
  pub indexes_at: u32,
}

/// The layout of what `begin` writes.
#[napi(catch_unwind)]
pub fn start_buffer_layout() -> StartBufferLayout {
  use start_layout::*;
  let index = |at: usize| at as u32;
  StartBufferLayout {
    elapsed_ms: index(ELAPSED_MS),
    remaining_ms: index(REMAINING_MS),
    budget_ms: index(BUDGET_MS),
    handle: index(HANDLE),
    ready_count: index(READY_COUNT),
    figures: index(FIGURES),
    indexes_at: index(INDEXES_AT),
  }
}

/// The signals a manager can own, by name: the one list the facade validates `signals` against.
#[napi(catch_unwind)]
pub fn ownable_signals() -> Vec<&'static str> {
  signals::OWNABLE.iter().map(|(_, name)| *name).collect()
}

/// Every code the native side's errors carry.
#[napi(catch_unwind)]
pub fn error_codes() -> Vec<&'static str> {
  LifecycleError::CODES.to_vec()
}

/// The message of one of the native side's conditions that carries no detail, for the facade to raise the
/// same condition in the same words.
#[napi(catch_unwind)]
pub fn error_message(code: String) -> Option<String> {
  LifecycleError::message_of(&code)
}

/// The signal the handler recorded last, if JavaScript has not been told of it (and marks it told): for the
/// signal owner when the event loop is about to end ('beforeExit'), which a signal in its last turn never
/// reaches through the pin (unref'd, it is not polled again). Main thread.
#[napi(catch_unwind)]
pub fn take_undelivered_signal() -> Option<String> {
  handler::take_undelivered()
    .and_then(signals::name_of)
    .map(str::to_owned)
}

/// Writes a line of the default logger to stderr without blocking on a terminal paused with Ctrl-S
/// (`exit_write::write_line_bounded`: 500 ms without progress, 2 s in all): 1 if all of it was written, 0
/// if not (the rest is lost), -1 if it could not be written without a flag on the description fd 2 shares
/// with other processes (nothing was written: Node's own write is left to do it).
#[napi(catch_unwind)]
pub fn write_stderr(text: String) -> i32 {
  match exit_write::write_line_bounded(text.as_bytes()) {
    Some(written) => i32::from(written),
    None => -1,
  }
}

/// Whether systemd listens (`NOTIFY_SOCKET` names a usable socket). The first call reads the environment,
/// which JavaScript may then clear for the children it spawns.
#[napi(catch_unwind)]
pub fn systemd_listening() -> bool {
  systemd::enabled()
}

/// Tells systemd the service is ready (`READY=1`), when it listens (`NOTIFY_SOCKET`): 1 if it went out, -1
/// if systemd's queue was full (try again later: systemd waits for it), 0 otherwise. Sent from the main
/// thread, it also starts the watchdog's pings (`WatchdogSec=`) if the signal owner has not: a service
/// whose manager owns no signals still answers for its own liveness once it has said it is ready. A
/// worker thread's manager says nothing under `WatchdogSec=`: the pings, which run on the main loop,
/// could not follow it, and systemd would end the service at its first missed ping. Nothing after the
/// process said it stops.
#[napi(catch_unwind)]
pub fn notify_ready(env: Env) -> i32 {
  let Ok((uv, event_loop)) = libuv_for(&env) else {
    return 0;
  };
  let main_thread = uv.is_main_loop(event_loop);
  if !main_thread && systemd::watchdog_interval().is_some() {
    return 0;
  }
  match systemd::ready() {
    systemd::Delivery::Sent => {
      if main_thread {
        // SAFETY: a napi call runs on its environment's thread, and `event_loop` was just checked to be
        // the main loop, so this is the main thread with its live loop.
        unsafe { start_systemd_pings(&env, uv, event_loop) };
      }
      1
    }
    systemd::Delivery::QueueFull => -1,
    systemd::Delivery::NotListening | systemd::Delivery::Failed => 0,
  }
}

/// Tracks a child process (or, with `group`, the process group it leads): the hard exit and the
/// second-signal exit kill it before `_exit`. Tracking is process-wide, like those exits.
#[napi(catch_unwind)]
pub fn track_child(pid: i32, group: bool) -> napi::Result<(), ErrorCode> {
  children::track(Target::of(pid, group).map_err(js_error)?).map_err(js_error)
}

/// Stops tracking a child (it exited and was reaped) or its group (it is empty); returns whether it was
/// tracked.
#[napi(catch_unwind)]
pub fn forget_child(pid: i32, group: bool) -> bool {
  Target::of(pid, group).is_ok_and(children::forget)
}

/// Whether a process of group `pgid` still runs (zombies do not count; see `children::group_alive`).
#[napi(catch_unwind)]
pub fn child_group_alive(pgid: i32) -> bool {
  children::group_alive(pgid)
}

/// Records how a task of the shutdown `handle` names (see `begin`) ended: `outcome` 0 succeeded, 1 failed,
/// 2 timed out (its handler still running), 3 timed out with its handler ended (it ended past its timeout,
/// which it kept from firing by blocking the loop). `calling_at_once`: JavaScript calls the handlers of the
/// tasks this starts right away, with nothing in between (see `Manager::settle`); otherwise it says when
/// (`handlers_calling`). Returns the tasks that start because of it, or 0 if none does, -1 if the task was
/// not running (a late settle after a timeout, or a shutdown already finished), -2 if it was the last. A number
/// in the common case: building an object per task was most of the cost of a shutdown with thousands of
/// tasks. A function rather than a method, for the same reason (see [`ATTACHED`]).
#[napi(catch_unwind)]
pub fn settle_task(
  handle: u32,
  index: u32,
  outcome_code: u32,
  calling_at_once: bool,
) -> napi::Result<Either<i32, Either<Vec<u32>, Uint32Array>>, ErrorCode> {
  let outcome = match outcome_code {
    0 => Outcome::Succeeded,
    1 => Outcome::Failed,
    2 => Outcome::TimedOut,
    3 => Outcome::EndedLate,
    _ => {
      return Err(napi::Error::new(
        ErrorCode("ERR_INVALID_ARG_VALUE"),
        format!("unknown outcome {outcome_code}"),
      ));
    }
  };
  let settlement = with_attached(handle, |manager| {
    manager.settle(index, outcome, MonoTime::now(), calling_at_once)
  });
  Ok(match settlement.unwrap_or(Settlement::NotRunning) {
    Settlement::NotRunning => Either::A(SETTLE_NOT_RUNNING),
    Settlement::Start(ready) => Either::B(index_list(ready)),
    Settlement::Nothing => Either::A(0),
    Settlement::Finished => Either::A(SETTLE_FINISHED),
  })
}

/// The handler of a task that timed out, of the shutdown `handle` names, has ended: a hard-exit report no
/// longer lists it as still running. A function, as `settle_task` is, for the same reason.
#[napi(catch_unwind)]
pub fn task_handler_ended(handle: u32, index: u32) {
  with_attached(handle, |manager| {
    manager.handler_ended_late(index, MonoTime::now())
  });
}

/// JavaScript begins calling the handlers of the tasks the shutdown `handle` names last handed it (see
/// `Plan::starting`): the listeners of what came before have run, and their running time counts from now.
/// A function, as `settle_task` is, for the same reason.
#[napi(catch_unwind)]
pub fn handlers_calling(handle: u32) {
  with_attached(handle, |manager| manager.handlers_calling(MonoTime::now()));
}

/// JavaScript has called the handlers of the tasks the shutdown `handle` names last handed it (see
/// `Plan::starting`): until then, a hard-exit report cannot say which of them were called. A function, as
/// `settle_task` is, for the same reason.
#[napi(catch_unwind)]
pub fn handlers_called(handle: u32) {
  with_attached(handle, Manager::handlers_called);
}

/// How many children and groups are tracked (process-wide).
#[napi(catch_unwind)]
pub fn tracked_child_count() -> u32 {
  children::count() as u32
}

/// The number of an ownable signal, or null.
#[napi(catch_unwind)]
pub fn ownable_signal_number(name: String) -> Option<i32> {
  signal_number(&name)
}

fn signal_number(name: &str) -> Option<i32> {
  signals::OWNABLE
    .iter()
    .find(|(_, n)| *n == name)
    .map(|(signo, _)| *signo)
}

/// Whether our handler is in the slot of the named signal right now (for diagnostics and tests).
#[napi(catch_unwind)]
pub fn is_signal_handler_installed(name: String) -> bool {
  signal_number(&name).is_some_and(signals::is_installed)
}
