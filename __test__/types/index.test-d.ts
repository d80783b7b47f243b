// Type tests for index.d.ts, compiled with `tsc --noEmit` by __test__/types.test.cjs. The lines under an
// expect-error directive must fail to compile, so typings that became too loose fail the test.
import {
  ShutdownManager,
  ShutdownReason,
  ShutdownPriority,
  ShutdownEvent,
  ApplicationEvent,
  type ShutdownResult,
  type ShutdownContext,
  type ShutdownSummary,
  type ActiveHandle,
  type LogFields,
} from 'titan-lifecycle'
// The register subpath resolves to its typings (register.d.ts) without "exports", and exports nothing.
import * as registerModule from 'titan-lifecycle/register'
// @ts-expect-error register exports nothing
void registerModule.processManager

const manager = new ShutdownManager({
  gracefulShutdownTimeout: 30_000,
  signals: ['SIGTERM', 'SIGINT', 'SIGHUP'],
  exitCodes: { hardExit: 124, secondSignal: 'signal' },
  logger: console,
})

const id: string = manager.registerTask({
  id: 'db',
  priority: ShutdownPriority.Low,
  phase: 'destroy',
  dependsOn: [],
  timeout: 5000,
  handler: async ({ reason, abortSignal, deadline }: ShutdownContext) => {
    const r: ShutdownReason = reason
    abortSignal.throwIfAborted()
    return [r, deadline]
  },
})
manager.registerShutdownTask({ id: 'sync', handler: () => {} })
const removed: boolean = manager.unregisterTask(id)

manager.on(ShutdownEvent.ShutdownComplete, ({ exitCode, hardExit }) => {
  const code: number = exitCode
  const hard: boolean = hardExit
  return [code, hard]
})
manager.on(ApplicationEvent.ShutdownTaskError, ({ taskId, timedOut }) => [taskId.length, timedOut])
// EventEmitter's own events are there too.
manager.on('newListener', (event: string | symbol) => void event)
// @ts-expect-error an event the manager never emits
manager.on('shutdown:finished', () => {})
// @ts-expect-error nor is it emitted
manager.emit('shutdown:finished')
// @ts-expect-error an event is emitted with its own payload
manager.emit('shutdown:complete', { nonsense: true })
const completeListeners: ((event: import('../..').ShutdownCompleteEvent) => unknown)[] =
  manager.listeners('shutdown:complete')
void completeListeners
// An application's own symbol-named events still go through.
const own = Symbol('own')
manager.on(own, (n: number) => void n)
manager.once(own, () => {})
manager.off(own, () => {})
manager.emit(own, 1)
void manager.listeners(own).length

async function stop(): Promise<number> {
  const result: ShutdownResult = await manager.stop({ reason: ShutdownReason.Maintenance, timeout: 1000, exit: false })
  return result.tasks.filter((t) => t.status === 'timedOut').length + result.exitCode
}

const state: 'running' | 'stopping' | 'stopped' = manager.state
void [removed, stop, state]

// @ts-expect-error an unknown signal is not ownable
new ShutdownManager({ signals: ['SIGUSR1'] })
// @ts-expect-error the handler is required
manager.registerTask({ id: 'x' })
// @ts-expect-error reasons are a closed set
void manager.stop({ reason: 'bored' })
// @ts-expect-error the phase is 'stop' or 'destroy'
manager.registerTask({ id: 'y', phase: 'cleanup', handler: () => {} })
// A plain object's handler runs as a function (no `this`); a class instance's as its method.
manager.registerTask({
  id: 'z',
  handler() {
    // @ts-expect-error a plain object's handler has no `this`
    return this.id
  },
})
class CacheTask {
  id = 'cache'
  closed = false
  handler() {
    this.closed = true
  }
}
manager.registerTask(new CacheTask())
const level: ShutdownPriority = ShutdownPriority.High
void level

// Draining and readiness.
import * as http from 'node:http'
import * as http2 from 'node:http2'
import * as net from 'node:net'
const drained = new ShutdownManager({ shutdownDelay: 5000, destroyReserve: 3000 })
const web = http.createServer(drained.readinessHandler())
// HTTP/2 servers take it too (its compatibility API's request and response).
void http2.createServer(drained.readinessHandler())
const drainId: string = drained.trackServer(web, {
  id: 'web',
  priority: ShutdownPriority.High,
  drainTimeout: 10_000,
  closeUpgraded: (socket, request) => socket.end(`bye ${request.url}`),
})
drained.trackServer(http2.createServer(), { id: 'h2' })
drained.trackServer(net.createServer(), { id: 'tcp' })
const ready: boolean = drained.isReady
const skipped: boolean = ([] as ShutdownResult['tasks']).some((t) => t.status === 'skipped')
void [drainId, ready, skipped]
// @ts-expect-error a server is required
drained.trackServer({})
// @ts-expect-error the drain timeout is a number of milliseconds
drained.trackServer(web, { drainTimeout: '10s' })

// Child processes.
import { spawn } from 'node:child_process'
const worker = spawn('node', ['worker.js'], { detached: true })
const childId: string = drained.trackChild(worker, { signal: 'SIGINT', timeout: 5000, group: true })
drained.trackChild(worker, { id: 'w', priority: ShutdownPriority.Low })
void childId
const clusterId: string = drained.trackCluster({ timeout: 10_000, priority: ShutdownPriority.High })
void clusterId
// @ts-expect-error the timeout is a number of milliseconds
drained.trackCluster({ timeout: '10s' })
// @ts-expect-error a ChildProcess is required, not a pid
drained.trackChild(worker.pid)
// @ts-expect-error the signal is a signal name
drained.trackChild(worker, { signal: 'SIGNOPE' })
// @ts-expect-error the child must be able to handle it (the runtime refuses SIGKILL and SIGSTOP)
drained.trackChild(worker, { signal: 'SIGKILL' })
// Lists written `as const` are read-only: accepted where the package only reads them.
new ShutdownManager({ signals: ['SIGTERM', 'SIGINT'] as const })
drained.registerTask({ id: 'after', dependsOn: ['db'] as const, handler: () => {} })

// Where it was stuck, stalls, the summary, what keeps the process alive, pino-style loggers.
const explained = new ShutdownManager({
  diagnosticReport: '/var/reports',
  stallThreshold: 500,
  stillAliveReportDelay: 2000,
  logger: { info: (fields, message) => [fields.summary, message.length], error: (fields: LogFields) => fields.err },
})
explained.on(ShutdownEvent.ShutdownStall, ({ taskId, blockedMs, stack }) => [taskId?.length, blockedMs, stack?.length])
explained.on(ShutdownEvent.ShutdownStillAlive, ({ afterMs, handles }) =>
  handles.map((h) => `${h.type} ${h.detail} ${afterMs}`),
)
explained.on(ShutdownEvent.ShutdownComplete, ({ summary }) => summary.tasks.map((t) => (t.startMs ?? 0) + t.durationMs))
const handles: ActiveHandle[] = explained.activeHandles()
async function summarize(): Promise<ShutdownSummary> {
  const { summary } = await explained.stop()
  return summary
}
void [handles, summarize, new ShutdownManager({ diagnosticReport: true })]
// @ts-expect-error the directory is a path or true
new ShutdownManager({ diagnosticReport: 1 })
// @ts-expect-error a logger method takes the fields first
new ShutdownManager({ logger: { warn: (message: string, fields: number) => [message, fields] } })

// Under exactOptionalPropertyTypes (this folder's tsconfig), an option passed as undefined is taken, as
// the runtime takes it: unset.
const configured: number | undefined = undefined
const quiet = new ShutdownManager({
  gracefulShutdownTimeout: configured,
  logger: undefined,
  exitCodes: { success: undefined },
})
void quiet.stop({ timeout: configured, reason: undefined })
quiet.registerTask({ id: 'z', timeout: configured, priority: undefined, handler: () => {} })
