'use strict'
// The reference shutdown: 12 tasks in 3 priorities, some with dependencies, 50-200 ms each. Every library
// runs these same tasks its own way (see adapters.cjs).
//
//   priority 10   http 120   websocket 150   grpc 80
//   priority 50   api 100 -> cache 60 -> db 50      scheduler 70 -> queue-consumer 200
//   priority 90   tracer 120 -> logger 80           metrics 50   audit 90
//
// (a -> b: a depends on b, so a stops first.) The critical path is 150 + 270 + 200 = 620 ms; run one after
// another the tasks take 1170 ms.

const TASKS = [
  { id: 'http', priority: 10, ms: 120 },
  { id: 'websocket', priority: 10, ms: 150 },
  { id: 'grpc', priority: 10, ms: 80 },
  { id: 'api', priority: 50, ms: 100, dependsOn: ['cache'] },
  { id: 'cache', priority: 50, ms: 60, dependsOn: ['db'] },
  { id: 'db', priority: 50, ms: 50 },
  { id: 'scheduler', priority: 50, ms: 70, dependsOn: ['queue-consumer'] },
  { id: 'queue-consumer', priority: 50, ms: 200 },
  { id: 'tracer', priority: 90, ms: 120, dependsOn: ['logger'] },
  { id: 'logger', priority: 90, ms: 80 },
  { id: 'metrics', priority: 90, ms: 50 },
  { id: 'audit', priority: 90, ms: 90 },
].map((t) => ({ dependsOn: [], ...t }))

/** The shortest possible shutdown: per priority, the longest dependency chain, summed. */
function criticalPathMs(tasks = TASKS) {
  const byId = new Map(tasks.map((t) => [t.id, t]))
  const chain = (t) => t.ms + Math.max(0, ...t.dependsOn.map((d) => chain(byId.get(d))))
  const priorities = [...new Set(tasks.map((t) => t.priority))]
  return priorities.reduce((sum, p) => sum + Math.max(...tasks.filter((t) => t.priority === p).map(chain)), 0)
}

/** Whether `a` must end before `b` starts: a lower priority, or `a` depends on `b`. */
function mustPrecede(a, b) {
  return a.priority < b.priority || a.dependsOn.includes(b.id)
}

/** A sequential order that respects every constraint: by priority, dependents before dependencies. */
function sequentialOrder(tasks) {
  // Who depends on each task, found once: a scan of every task for each (10 000 in the scale section) took
  // half a second, which counted as lightship's registration.
  const dependents = new Map()
  for (const o of tasks) {
    for (const id of o.dependsOn) {
      const list = dependents.get(id)
      if (list) list.push(o)
      else dependents.set(id, [o])
    }
  }
  const ordered = []
  const placed = new Set()
  const place = (t) => {
    if (placed.has(t.id)) return
    // Everything that depends on t (and has its priority) stops before t.
    for (const d of dependents.get(t.id) ?? []) if (d.priority === t.priority) place(d)
    placed.add(t.id)
    ordered.push(t)
  }
  for (const t of [...tasks].sort((a, b) => a.priority - b.priority)) place(t)
  return ordered
}

module.exports = { TASKS, criticalPathMs, mustPrecede, sequentialOrder }
