'use strict'
// One library (argv[2]) set up for one scenario (argv[3]), waiting for SIGTERM:
// - latency:   a single task that reports the moment it starts;
// - blocked:   a single task that reports its start, then blocks the event loop forever;
// - reference: the 12 reference tasks (reference-tasks.cjs), each reporting its start and end;
// - scale:     10 000 no-op tasks, reporting how long registering them took and what memory it added;
// - none:      no task (the setup's fixed cost, which the bench subtracts from scale's).
// The deadline is argv[4] ms. Lines are JSON with CLOCK_MONOTONIC times, as the tests' fixtures write them.

const { adapters } = require('../adapters.cjs')
const { TASKS } = require('../reference-tasks.cjs')
const { report, keepAlive, ready } = require('../../__test__/fixtures/report.cjs')

const [library, scenario, deadline = '30000'] = process.argv.slice(2)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function tasksFor(scenario) {
  switch (scenario) {
    case 'latency':
      return [{ id: 'first', priority: 0, dependsOn: [], run: async () => report('task-start', { id: 'first' }) }]
    case 'blocked':
      return [
        {
          id: 'spin',
          priority: 0,
          dependsOn: [],
          run: async () => {
            report('task-start', { id: 'spin' })
            while (true) {}
          },
        },
      ]
    case 'reference':
      return TASKS.map((t) => ({
        ...t,
        run: async () => {
          report('task-start', { id: t.id })
          await sleep(t.ms)
          report('task-end', { id: t.id })
        },
      }))
    case 'none':
      return []
    case 'scale': {
      let started = 0
      let ended = 0
      return Array.from({ length: 10_000 }, (_, i) => ({
        id: `t${i}`,
        priority: 50,
        dependsOn: [],
        run: async () => {
          if (started++ === 0) report('first-start')
          if (++ended === 10_000) report('last-end')
        },
      }))
    }
  }
  throw new Error(`unknown scenario ${scenario}`)
}

async function main() {
  const tasks = tasksFor(scenario)
  const rssBefore = process.memoryUsage.rss()
  const heapBefore = process.memoryUsage().heapUsed
  const started = process.hrtime.bigint()
  await adapters[library].setup({ tasks, deadlineMs: Number(deadline) })
  const setupMs = Number(process.hrtime.bigint() - started) / 1e6
  report('setup', {
    setupMs,
    rssAddedKb: (process.memoryUsage.rss() - rssBefore) / 1024,
    heapAddedKb: (process.memoryUsage().heapUsed - heapBefore) / 1024,
  })
  keepAlive()
  ready()
}

main()
