//! The errors the core reports. Each carries the stable `code` that JavaScript sees on the thrown error, so
//! callers can branch on `err.code` rather than on message text.

use std::fmt;

use crate::text::Quoted;

/// Every condition of our own that the public API can report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleError {
  /// A task with this id is already registered.
  TaskExists { id: String },
  /// Registering this task would make the shutdown order impossible. `detail` names the cycle.
  TaskCycle { id: String, detail: String },
  /// Tasks cannot be added or removed while a shutdown runs.
  ShutdownInProgress,
  /// The shutdown is already run by JavaScript (or ran): it cannot be taken over again.
  ShutdownRunning,
  /// The manager has already shut down; it runs its tasks once.
  ShutdownCompleted,
  /// Another manager (possibly in another copy of the package) owns the process signals.
  SignalsOwned,
  /// Signals and the watchdog are process-wide: only the main thread may own them.
  NotMainThread,
  /// The signal cannot be owned (unknown, uncatchable, or reserved by Node).
  UnsupportedSignal { signal: i32 },
  /// The host lacks something the native side needs (a libuv symbol, a pipe).
  NativeUnavailable { what: String },
  /// This pid cannot be a child of ours (1 or below: `kill` would reach more than one process).
  InvalidChild { pid: i32 },
  /// The table of tracked children (`children::CAPACITY`) is full.
  TooManyChildren { capacity: usize },
  /// The facade and the native record disagree on how many tasks there are as a shutdown begins: a bug of
  /// ours. The plan names tasks by position, so nothing begins rather than run the wrong handlers.
  TaskCountMismatch { facade: usize, native: usize },
}

impl LifecycleError {
  /// Every code [`LifecycleError::code`] can return. JavaScript reads it (`errorCodes`), and a test checks
  /// the README's table of errors against it and the facade's own codes.
  pub const CODES: [&'static str; 10] = [
    "ERR_TASK_EXISTS",
    "ERR_TASK_CYCLE",
    "ERR_SHUTDOWN_IN_PROGRESS",
    "ERR_SHUTDOWN_COMPLETED",
    "ERR_SIGNALS_OWNED",
    "ERR_NOT_MAIN_THREAD",
    "ERR_INVALID_ARG_VALUE",
    "ERR_NATIVE_UNAVAILABLE",
    "ERR_TOO_MANY_CHILDREN",
    "ERR_INTERNAL_ASSERTION",
  ];

  /// The message of a condition that carries no detail, by its code: JavaScript builds the errors it raises
  /// itself for these conditions from the same text.
  pub fn message_of(code: &str) -> Option<String> {
    [
      Self::ShutdownInProgress,
      Self::ShutdownCompleted,
      Self::SignalsOwned,
      Self::NotMainThread,
    ]
    .into_iter()
    .find(|e| e.code() == code)
    .map(|e| e.to_string())
  }

  /// The Node-style error code JavaScript sees as `err.code`.
  pub fn code(&self) -> &'static str {
    match self {
      Self::TaskExists { .. } => "ERR_TASK_EXISTS",
      Self::TaskCycle { .. } => "ERR_TASK_CYCLE",
      Self::ShutdownInProgress | Self::ShutdownRunning => "ERR_SHUTDOWN_IN_PROGRESS",
      Self::ShutdownCompleted => "ERR_SHUTDOWN_COMPLETED",
      Self::SignalsOwned => "ERR_SIGNALS_OWNED",
      Self::NotMainThread => "ERR_NOT_MAIN_THREAD",
      Self::UnsupportedSignal { .. } | Self::InvalidChild { .. } => "ERR_INVALID_ARG_VALUE",
      Self::TooManyChildren { .. } => "ERR_TOO_MANY_CHILDREN",
      Self::NativeUnavailable { .. } => "ERR_NATIVE_UNAVAILABLE",
      Self::TaskCountMismatch { .. } => "ERR_INTERNAL_ASSERTION",
    }
  }
}

impl fmt::Display for LifecycleError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      Self::TaskExists { id } => write!(f, "a shutdown task with id {} is already registered", Quoted(id)),
      Self::TaskCycle { id, detail } => write!(f, "cannot register shutdown task {}: {detail}", Quoted(id)),
      Self::ShutdownInProgress => f.write_str("tasks cannot be changed while a shutdown is in progress"),
      Self::ShutdownRunning => f.write_str("the shutdown is already being run"),
      Self::ShutdownCompleted => f.write_str("the manager has already shut down"),
      Self::SignalsOwned => f.write_str(
        "another ShutdownManager already owns the process signals; dispose() it first or pass signals: []",
      ),
      Self::NotMainThread => f.write_str(
        "signals and the hard-exit watchdog belong to the whole process and can only be owned from the main \
         thread; pass signals: [] in a worker",
      ),
      Self::UnsupportedSignal { signal } => write!(f, "signal {signal} cannot be owned"),
      Self::NativeUnavailable { what } => write!(f, "the native side is unavailable: {what}"),
      Self::InvalidChild { pid } => write!(f, "pid {pid} cannot be a tracked child"),
      Self::TooManyChildren { capacity } => write!(
        f,
        "cannot track more than {capacity} child processes and groups at once"
      ),
      Self::TaskCountMismatch { facade, native } => write!(
        f,
        "the manager has {facade} tasks and its native record {native}, so the shutdown did not begin (a bug \
         in titan-lifecycle: please report it)"
      ),
    }
  }
}

impl std::error::Error for LifecycleError {}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn every_error_has_a_node_style_code_and_a_message() {
    let all = [
      LifecycleError::TaskExists { id: "db".into() },
      LifecycleError::TaskCycle {
        id: "a".into(),
        detail: "a -> b -> a".into(),
      },
      LifecycleError::ShutdownInProgress,
      LifecycleError::ShutdownRunning,
      LifecycleError::ShutdownCompleted,
      LifecycleError::SignalsOwned,
      LifecycleError::NotMainThread,
      LifecycleError::UnsupportedSignal { signal: 9 },
      LifecycleError::NativeUnavailable {
        what: "uv_signal_init".into(),
      },
      LifecycleError::InvalidChild { pid: 1 },
      LifecycleError::TooManyChildren { capacity: 256 },
      LifecycleError::TaskCountMismatch { facade: 3, native: 2 },
    ];
    for err in &all {
      assert!(
        LifecycleError::CODES.contains(&err.code()),
        "{err:?} has a code CODES does not list"
      );
      assert!(!err.to_string().is_empty());
    }
    for code in LifecycleError::CODES {
      assert!(
        all.iter().any(|e| e.code() == code),
        "{code} is listed but no error has it"
      );
    }
    assert_eq!(
      LifecycleError::message_of("ERR_SIGNALS_OWNED"),
      Some(LifecycleError::SignalsOwned.to_string())
    );
    assert_eq!(
      LifecycleError::message_of("ERR_TASK_EXISTS"),
      None,
      "it needs an id"
    );
    assert!(
      LifecycleError::TaskExists { id: "db".into() }
        .to_string()
        .contains("'db'")
    );
  }
}
