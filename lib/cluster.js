'use strict'

// trackCluster(): at shutdown a cluster primary asks every worker to shut down, all at once, with the IPC
// message the workers' managers hear (`ipcMessage`; a signal for a worker still starting, see #ask), so each
// drains its own connections while the others do; a worker not gone by the timeout gets SIGKILL. Workers
// are child processes tracked like trackChild's (lib/children.js), so the primary's hard exit and
// second-signal exit kill them too.

const cluster = /** @type {import('node:cluster').Cluster} */ (/** @type {unknown} */ (require('node:cluster')))
const { ChildTracker } = require('./children')
const { lifecycleError } = require('./validate')
const { monotonicMs } = require('./run')

/**
 * How long after its fork a worker that does not listen yet counts as still starting (see #ask): an ES
 * module graph, or a bootstrap that awaits a database, takes seconds. One forked longer ago that does not
 * listen is taken for a worker that never will (a job worker, a sticky-session one), which hears the message.
 */
const STARTING_MS = 10_000

/**
 * The signals that reach a whole process group (a terminal's Ctrl-C, Ctrl-\ and hangup, a service
 * manager's stop): a worker still starting is sent the one that began the primary's shutdown (see #ask).
 * Any other (SIGUSR2, say) reached the primary alone, and a worker's manager may not own it: SIGTERM.
 */
const GROUP_SIGNALS = ['SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGTERM']

/**
 * Whether a worker listens: `state` is the primary's own record of it ('online', then 'listening'), kept by
 * node:cluster as its 'listening' event comes (not in Node's typings).
 * @param {import('node:cluster').Worker} worker
 */
const isListening = (worker) => /** @type {any} */ (worker).state === 'listening'

class ClusterTracker {
  /** worker.id -> ChildTracker, for the workers alive. */
  #trackers = new Map()
  #message
  #onError
  /** The stop's options once the shutdown has asked the workers, for workers forked after that. */
  #stopping = null
  /** The signal a worker still starting is sent (see #ask). */
  #startingSignal = 'SIGTERM'
  /** Every worker's stop, as started. */
  #stops = []
  #stopped = false
  #onFork = (worker) => this.#add(worker, monotonicMs())
  /**
   * worker.id -> when the 'fork' event came, or, for a worker forked before trackCluster and not listening
   * yet then, when it was tracked (it may be starting as well: see #ask).
   */
  #forkedAt = new Map()

  /** @param {{ message: string, onError: (error: unknown) => void }} options `onError`: a worker that could not be tracked, or a late one's failed stop */
  constructor({ message, onError }) {
    this.#message = message
    this.#onError = onError
    // One not listening yet may still be starting: it counts as forked now (one that never listens, a
    // queue consumer say, is sent a signal instead of the message for STARTING_MS, which its manager hears
    // the same way).
    const now = monotonicMs()
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker) this.#add(worker, isListening(worker) ? null : now)
    }
    cluster.on('fork', this.#onFork)
  }

  /** Stops tracking workers forked from now on (the manager is disposed). */
  dispose() {
    cluster.removeListener('fork', this.#onFork)
  }

  /** Stops tracking every worker, and those forked from now on (its task was unregistered). */
  untrack() {
    this.dispose()
    for (const tracker of this.#trackers.values()) tracker.untrack()
    this.#trackers.clear()
  }

  /**
   * @param {import('node:cluster').Worker} worker
   * @param {number | null} forkedAt when its 'fork' event came, if it came after trackCluster
   */
  #add(worker, forkedAt) {
    const child = worker.process
    // A worker forked in the tick that made this tracker is in cluster.workers at once and has its 'fork'
    // event on the next tick: tracked once (twice, untrack() would forget one and the exit kill it), with
    // the fork's time.
    if (this.#trackers.has(worker.id)) {
      if (forkedAt !== null) this.#forkedAt.set(worker.id, forkedAt)
      return
    }
    let tracker
    let gone = false
    try {
      tracker = new ChildTracker(child, {
        group: false,
        ask: { how: `the '${this.#message}' message`, send: () => this.#ask(worker) },
        onGone: () => {
          gone = true
          this.#trackers.delete(worker.id)
          this.#forkedAt.delete(worker.id)
        },
      })
    } catch (error) {
      // A fork that failed (no pid), or too many children: this worker is not tracked; say so.
      this.#onError(error)
      return
    }
    // A worker that had exited already is gone as it is tracked (onGone ran in the constructor): nothing
    // to keep.
    if (gone) return
    if (forkedAt !== null) this.#forkedAt.set(worker.id, forkedAt)
    this.#trackers.set(worker.id, tracker)
    // A worker forked during the shutdown (a restart-on-exit handler, say) is asked at once.
    if (this.#stopping) {
      const stop = tracker.stop(this.#stopping)
      if (this.#stopped)
        stop.catch(this.#onError) // nobody waits for it any more
      else this.#stops.push(stop)
    }
  }

  /**
   * Sends the message, and returns what was sent. A worker that cannot hear it gets a signal instead
   * (SIGTERM, or the one that began the shutdown: see below): one whose channel is closed, and one still
   * starting (not listening yet, forked, or tracked if forked earlier, less than STARTING_MS ago). A message
   * reaches only a worker whose manager exists, and Node drops it unheard before: a worker still starting
   * (an async bootstrap, an ES module still loading, a restart forked during the shutdown) would wait deaf
   * for SIGKILL at the timeout.
   * The signal is heard by its manager if it has one, and ends it at once if not (it serves nothing yet).
   * The message stays the way for the rest: one that reaches a shutdown already running (Ctrl-C reaches
   * the whole group) joins it.
   * A worker still starting is sent the signal that began the primary's shutdown, when one did: Ctrl-C (or
   * a signal to the group) reached the worker too, and a copy of the same signal from its parent joins its
   * shutdown (so would one signal of any kind from its parent, however late; the same signal as the
   * group's also ends at once a worker that has no manager yet, as the group's signal did).
   */
  #ask(worker) {
    const signal = this.#startingSignal
    const fallBack = () => worker.process.kill(signal)
    const forkedAt = this.#forkedAt.get(worker.id)
    const isStarting = !isListening(worker) && forkedAt !== undefined && monotonicMs() - forkedAt < STARTING_MS
    if (!worker.isConnected() || isStarting) {
      fallBack()
      return signal
    }
    // A send that fails reports to its callback (and not as an 'error' event nobody listens to).
    worker.send(this.#message, undefined, (error) => {
      if (error) fallBack()
    })
    return `the '${this.#message}' message`
  }

  /**
   * Asks every worker at once and waits for all; rejects with ERR_CHILD_KILLED if any needed SIGKILL.
   * `signal`: the one that began the shutdown, if one did.
   */
  async stop({ timeoutMs, abortSignal, signal }) {
    if (GROUP_SIGNALS.includes(signal)) this.#startingSignal = signal
    this.#stopping = { timeoutMs, abortSignal }
    for (const tracker of this.#trackers.values()) this.#stops.push(tracker.stop(this.#stopping))
    const failures = []
    // Workers forked while waiting add stops of their own: wait for those too.
    for (let waited = 0; waited < this.#stops.length; ) {
      const batch = this.#stops.slice(waited)
      waited = this.#stops.length
      for (const outcome of await Promise.allSettled(batch)) {
        if (outcome.status === 'rejected') failures.push(outcome.reason)
      }
    }
    this.#stopped = true
    if (failures.length > 0) {
      throw lifecycleError(
        'ERR_CHILD_KILLED',
        `${failures.length} of ${this.#stops.length} cluster worker${this.#stops.length === 1 ? '' : 's'} ` +
          `had not exited in time and ${failures.length === 1 ? 'was' : 'were'} sent SIGKILL: ` +
          failures.map((failure) => failure.message).join('; '),
      )
    }
  }
}

module.exports = { ClusterTracker }
