'use strict'

// Child processes a manager is responsible for (`trackChild`, and the workers of `trackCluster`). At
// shutdown: the signal (or a worker's message), a wait for the exit, SIGKILL at the timeout. The native side
// keeps every tracked pid or group too, so the exits that run no JavaScript (the watchdog's hard exit, a
// second signal) kill them before `_exit`; a process 'exit' hook covers the exits that do (`process.exit()`
// anywhere). A child is forgotten once it has exited, so nothing is ever sent to a pid the system has given
// to another process.

const { native, lifecycleError, invalidArgValue } = require('./validate')
// Loaded with the first manager already; a child is tracked only through one.
const { monotonicMs } = require('./run')

/** How often an emptying process group is checked during a shutdown: a group has no exit event. */
const GROUP_POLL_MS = 100
/** How often, outside a shutdown, a group whose leader exited is checked until it is empty. */
const ORPHANED_GROUP_POLL_MS = 1000
/**
 * How long the wait after SIGKILL lasts at most. The kernel ends the process at once, but one stuck in an
 * uninterruptible sleep (a dead network mount) goes only when that ends: the task reports it and stays
 * tracked, so the process's own exit sends SIGKILL again.
 */
const KILLED_WAIT_MS = 1000

/**
 * The trackers of this thread whose children (or groups) are still there. The 'exit' hook kills only
 * these: a worker thread's manager ending with its thread must not touch the main thread's children.
 * @type {Set<ChildTracker>}
 */
const live = new Set()
let exitHookInstalled = false

function installExitHook() {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // SIGKILL: the process (or this thread) is exiting now and cannot wait for a graceful stop. Children
  // already stopped by their task are gone from `live`, so this only reaches what a shutdown did not.
  // First of the 'exit' listeners: one that throws ends the event, and the listeners after it never run.
  process.prependListener('exit', () => {
    for (const tracker of live) tracker.kill()
  })
}

/** Whether a process of group `pgid` still runs; members that exited but were not reaped do not count. */
function groupAlive(pgid) {
  return native.childGroupAlive(pgid)
}

/**
 * Whether group `pgid` exists at all, an exited but unreaped leader included: whether a child spawned with
 * `detached: true` leads it. A group's id is its leader's pid, which the system does not give to another
 * process while the group exists.
 */
function groupExists(pgid) {
  try {
    process.kill(-pgid, 0)
    return true
  } catch (error) {
    return error?.code === 'EPERM'
  }
}

/** An AbortSignal that aborts when the first of `signals` does (AbortSignal.any is Node 20.3 and later). */
function firstOf(signals) {
  const controller = new AbortController()
  for (const signal of signals) {
    if (signal.aborted) controller.abort()
    else signal.addEventListener('abort', () => controller.abort(), { once: true, signal: controller.signal })
  }
  return controller.signal
}

class ChildTracker {
  #child
  #pid
  #group
  #signal
  /** How the child is asked to stop, if not by `#signal` (a cluster worker gets an IPC message). */
  #ask
  #askedWith
  #forgotten = false
  #onGone

  /**
   * @param {import('node:child_process').ChildProcess} child
   * @param {{ signal?: NodeJS.Signals, group: boolean, ask?: { how: string, send(): string | void }, onGone?: () => void }} options
   *   `ask`: asks the child to stop instead of sending `signal` (`how` says what it sent, for errors, unless `send` returns what it sent instead);
   *   `onGone`: called once nothing tracked is left (the child exited and, with `group`, its group is empty)
   */
  constructor(child, { signal = 'SIGTERM', group, ask, onGone }) {
    this.#child = child
    this.#pid = child.pid
    this.#group = group
    this.#signal = signal
    this.#ask = ask?.send
    this.#askedWith = ask?.how ?? signal
    this.#onGone = onGone
    const exited = this.#hasExited()
    // A leader that exited but was not reaped yet still holds its group; one reaped may leave members.
    if (group && !exited && !groupExists(this.#pid)) {
      throw invalidArgValue(
        'options.group',
        group,
        `needs a child that leads a process group (spawned with detached: true); child ${this.#pid} does not`,
      )
    }
    if (exited && !(group && groupAlive(this.#pid))) {
      this.#forgotten = true
      onGone?.()
      return
    }
    native.trackChild(this.#pid, group)
    live.add(this)
    installExitHook()
    if (exited) {
      this.#pollOrphanedGroup()
      return
    }
    // First among the 'exit' listeners: one added earlier that throws would stop the event before it
    // reached this one, and the reaped pid would stay tracked natively.
    child.prependOnceListener('exit', () => {
      if (!this.#gone() && group) this.#pollOrphanedGroup()
    })
  }

  /** Whether the child itself has exited and been reaped (Node sets these before its 'exit' event). */
  #hasExited() {
    return this.#child.exitCode !== null || this.#child.signalCode !== null
  }

  /**
   * The group's other members outlive its leader: it stays tracked until it is empty, checked now and then
   * (unref'd: this never keeps the process alive), so its pgid is not held once it may be reused.
   */
  #pollOrphanedGroup() {
    const poll = setInterval(() => {
      if (this.#gone()) clearInterval(poll)
    }, ORPHANED_GROUP_POLL_MS)
    poll.unref()
  }

  get pid() {
    return this.#pid
  }

  /**
   * Whether nothing tracked is left: the child exited, and with `group`, the group is empty. The first
   * time it is, the child (or group) is forgotten natively and `onGone` is called.
   */
  #gone() {
    if (this.#forgotten) return true
    if (!this.#hasExited() || (this.#group && groupAlive(this.#pid))) return false
    this.#forgotten = true
    live.delete(this)
    native.forgetChild(this.#pid, this.#group)
    this.#onGone?.()
    return true
  }

  #send(signal) {
    try {
      if (this.#group) process.kill(-this.#pid, signal)
      else this.#child.kill(signal)
    } catch {
      // ESRCH: it went meanwhile. Nothing else can fail here: the signal was validated.
    }
  }

  /**
   * SIGKILL now (the process or this thread is exiting), and forget it: this thread's loop will never
   * reap it or see it exit, and a worker thread's ending must not leave a native entry behind.
   */
  kill() {
    if (this.#gone()) return
    this.#send('SIGKILL')
    this.#forgotten = true
    live.delete(this)
    native.forgetChild(this.#pid, this.#group)
  }

  /**
   * Stops tracking the child (its task was unregistered): it is forgotten natively, and no exit path kills
   * it any more. It is not signalled.
   */
  untrack() {
    if (this.#forgotten) return
    this.#forgotten = true
    live.delete(this)
    native.forgetChild(this.#pid, this.#group)
  }

  /** Resolves once nothing tracked is left (or `abortSignal` aborts, which gives up the wait). */
  #whenGone(abortSignal) {
    return new Promise((resolve) => {
      if (this.#gone() || abortSignal?.aborted) return resolve()
      let poll = null
      const done = () => {
        if (poll) clearInterval(poll)
        this.#child.removeListener('exit', check)
        abortSignal?.removeEventListener('abort', done)
        resolve()
      }
      const check = () => {
        if (this.#gone()) done()
      }
      // First, for the reason the constructor's listener is (an earlier one that throws would stop it).
      this.#child.prependListener('exit', check)
      abortSignal?.addEventListener('abort', done, { once: true })
      // The leader's exit event says nothing of the rest of its group.
      if (this.#group) poll = setInterval(check, GROUP_POLL_MS)
    })
  }

  /**
   * Stops the child: its signal (or message), a wait of `timeoutMs` for it (and with `group`, its whole
   * group) to exit, then SIGKILL and a wait for that. Rejects with ERR_CHILD_KILLED when SIGKILL was
   * needed; an aborted task (its own timeout) sends SIGKILL at once.
   */
  async stop({ timeoutMs, abortSignal }) {
    if (this.#gone()) return
    const sentAt = monotonicMs()
    // `ask` may say what it sent instead (a cluster worker still starting gets a signal).
    if (this.#ask) this.#askedWith = this.#ask() || this.#askedWith
    else this.#send(this.#signal)
    const timedOut = new AbortController()
    const timer = Number.isFinite(timeoutMs) ? setTimeout(() => timedOut.abort(), timeoutMs) : null
    try {
      await this.#whenGone(abortSignal ? firstOf([abortSignal, timedOut.signal]) : timedOut.signal)
    } finally {
      if (timer) clearTimeout(timer)
      timedOut.abort() // releases the listeners firstOf added
    }
    if (this.#gone()) return
    const killedAt = monotonicMs()
    this.#send('SIGKILL')
    // SIGKILL cannot be caught: the wait is for the kernel and libuv's reaping, bounded by the task's own
    // timeout through `abortSignal` and by KILLED_WAIT_MS.
    const killWait = new AbortController()
    const killTimer = setTimeout(() => killWait.abort(), KILLED_WAIT_MS)
    try {
      await this.#whenGone(abortSignal ? firstOf([abortSignal, killWait.signal]) : killWait.signal)
    } finally {
      clearTimeout(killTimer)
      killWait.abort()
    }
    const what = this.#group ? `process group ${this.#pid}` : `child ${this.#pid}`
    const still = this.#gone() ? '' : `, and was still there ${Math.round(monotonicMs() - killedAt)} ms later`
    throw lifecycleError(
      'ERR_CHILD_KILLED',
      `${what} had not exited ${Math.round(killedAt - sentAt)} ms after ${this.#askedWith}; it was sent SIGKILL${still}`,
    )
  }
}

module.exports = { ChildTracker }
