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
  process.on('exit', () => {
    for (const tracker of live) tracker.kill()
  })
}

/** Whether a process of group `pgid` still runs; members that exited but were not reaped do not count. */
function groupAlive(pgid) {
  return native.childGroupAlive(pgid)
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
  #exited
  #forgotten = false
  #onGone

  /**
   * @param {import('node:child_process').ChildProcess} child
   * @param {{ signal?: NodeJS.Signals, group: boolean, ask?: { how: string, send(): void }, onGone?: () => void }} options
   *   `ask`: asks the child to stop instead of sending `signal` (`how` says what it sent, for errors);
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
    this.#exited = child.exitCode !== null || child.signalCode !== null
    if (this.#exited) {
      this.#forgotten = true
      onGone?.()
      return
    }
    if (group && !groupAlive(this.#pid)) {
      throw invalidArgValue(
        'options.group',
        group,
        `needs a child that leads a process group (spawned with detached: true); child ${this.#pid} does not`,
      )
    }
    native.trackChild(this.#pid, group)
    live.add(this)
    installExitHook()
    child.once('exit', () => {
      this.#exited = true
      if (this.#gone() || !group) return
      // The group's other members outlive its leader: it stays tracked until it is empty, checked now and
      // then (unref'd: this never keeps the process alive), so its pgid is not held once it may be reused.
      const poll = setInterval(() => {
        if (this.#gone()) clearInterval(poll)
      }, ORPHANED_GROUP_POLL_MS)
      poll.unref()
    })
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
    if (!this.#exited || (this.#group && groupAlive(this.#pid))) return false
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
      this.#child.on('exit', check)
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
    if (this.#ask) this.#ask()
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
    this.#send('SIGKILL')
    // SIGKILL cannot be caught: the wait is for the kernel and libuv's reaping, bounded by the task's own
    // timeout through `abortSignal`.
    await this.#whenGone(abortSignal)
    const what = this.#group ? `process group ${this.#pid}` : `child ${this.#pid}`
    throw lifecycleError(
      'ERR_CHILD_KILLED',
      `${what} had not exited ${Math.round(monotonicMs() - sentAt)} ms after ${this.#askedWith}; it was sent SIGKILL`,
    )
  }
}

module.exports = { ChildTracker }
