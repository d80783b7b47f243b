'use strict'

/** Why a shutdown started. The values are what events and results report. */
const ShutdownReason = Object.freeze({
  Manual: 'manual',
  SIGTERM: 'SIGTERM',
  SIGINT: 'SIGINT',
  SIGHUP: 'SIGHUP',
  Signal: 'signal',
  UncaughtException: 'uncaughtException',
  UnhandledRejection: 'unhandledRejection',
  Timeout: 'timeout',
  Error: 'error',
  Reload: 'reload',
  Upgrade: 'upgrade',
  Maintenance: 'maintenance',
})

/** Lower numbers run first. Any finite number is allowed; these are the names for the usual steps. */
const ShutdownPriority = Object.freeze({
  First: 0,
  VeryHigh: 10,
  High: 25,
  AboveNormal: 40,
  Normal: 50,
  BelowNormal: 60,
  Low: 75,
  VeryLow: 90,
  Last: 100,
})

/** Every step of a shutdown is observable as one of these events on the manager. */
const ShutdownEvent = Object.freeze({
  ShutdownStart: 'shutdown:start',
  ShutdownTaskComplete: 'shutdown:task:complete',
  ShutdownTaskError: 'shutdown:task:error',
  ShutdownComplete: 'shutdown:complete',
  ShutdownError: 'shutdown:error',
  /** The event loop did not answer for `stallThreshold` or more while the shutdown ran. */
  ShutdownStall: 'shutdown:stall',
  /** A shutdown that did not exit finished `stillAliveReportDelay` ago, and the process is still alive. */
  ShutdownStillAlive: 'shutdown:still-alive',
})

/** Every 'stop' task settles before any 'destroy' task starts. */
const ShutdownPhase = Object.freeze({
  Stop: 'stop',
  Destroy: 'destroy',
})

const DEFAULT_SIGNALS = Object.freeze(['SIGTERM', 'SIGINT', 'SIGHUP'])

const DEFAULT_EXIT_CODES = Object.freeze({
  success: 0,
  failure: 1,
  error: 1,
  hardExit: 124,
  secondSignal: 'signal',
})

/** The largest delay setTimeout honours; beyond it Node fires after 1 ms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/** The destroy phase's default reserve, as a share of the shutdown's budget (see `destroyReserve`). */
const DEFAULT_DESTROY_RESERVE = 0.1
/** The share of the budget a shutdown delay must leave to the tasks, beyond the destroy phase's reserve. */
const MIN_TASK_SHARE = 0.1

module.exports = {
  ShutdownReason,
  ShutdownPriority,
  ShutdownEvent,
  ShutdownPhase,
  DEFAULT_SIGNALS,
  DEFAULT_EXIT_CODES,
  MAX_TIMEOUT_MS,
  DEFAULT_DESTROY_RESERVE,
  MIN_TASK_SHARE,
}
