'use strict'
// Nothing is lost: 100 000 register/unregister cycles on one manager, and 1 000 stop() runs on fresh
// managers (each arming the native watchdog and creating, then releasing, its threadsafe function), keep
// RSS, the JavaScript heap and the active handles flat. Each phase warms up first, so the allocator's and
// V8's high-water marks are reached before the "before" figure is taken.
//
// Prints one JSON line per phase and exits 1 if a bound is passed. Run with --expose-gc (re-execs itself).

if (typeof global.gc !== 'function') {
  const { spawnSync } = require('node:child_process')
  const run = spawnSync(process.execPath, ['--expose-gc', __filename, ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(run.status ?? 1)
}

const { ShutdownManager } = require('..')

// Bounds: loose for a noisy machine, but a leak of a few hundred bytes per cycle would pass them.
const BOUNDS = { rssMb: 8, heapMb: 2 }

async function settle() {
  for (let i = 0; i < 3; i++) {
    global.gc()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function snapshot() {
  const memory = process.memoryUsage()
  return { rss: memory.rss, heap: memory.heapUsed, handles: process.getActiveResourcesInfo().length }
}

async function measure(phase, cycles, work) {
  await work(cycles) // warm-up, as long as the measured run
  await settle()
  const before = snapshot()
  await work(cycles)
  await settle()
  const after = snapshot()
  const mb = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10
  const figures = {
    kind: 'leak',
    phase,
    cycles,
    rssBeforeMb: mb(before.rss),
    rssAfterMb: mb(after.rss),
    heapBeforeMb: mb(before.heap),
    heapAfterMb: mb(after.heap),
    handlesBefore: before.handles,
    handlesAfter: after.handles,
  }
  process.stdout.write(JSON.stringify(figures) + '\n')
  const problems = []
  if (after.rss - before.rss > BOUNDS.rssMb * 2 ** 20) problems.push(`RSS grew by more than ${BOUNDS.rssMb} MB`)
  if (after.heap - before.heap > BOUNDS.heapMb * 2 ** 20)
    problems.push(`the heap grew by more than ${BOUNDS.heapMb} MB`)
  if (after.handles !== before.handles) problems.push(`active handles went from ${before.handles} to ${after.handles}`)
  return problems
}

async function registerUnregister(cycles) {
  const manager = new ShutdownManager({ disableGracefulShutdown: true })
  for (let i = 0; i < cycles; i++) {
    manager.registerTask({ id: `task-${i % 64}`, dependsOn: [`task-${(i + 1) % 64}`], handler: () => {} })
    manager.unregisterTask(`task-${i % 64}`)
  }
}

async function freshStops(cycles) {
  for (let i = 0; i < cycles; i++) {
    // Default hardExit, so each stop() arms the native watchdog; no signals, so managers can coexist.
    const manager = new ShutdownManager({ signals: [], handleUncaughtErrors: false, gracefulShutdownTimeout: 5000 })
    manager.registerTask({ id: 'a', handler: () => new Promise((resolve) => setImmediate(resolve)) })
    manager.registerTask({ id: 'b', phase: 'destroy', handler: () => {} })
    const result = await manager.stop({ exit: false })
    if (result.exitCode !== 0) throw new Error(`stop() returned exit code ${result.exitCode}`)
  }
}

async function main() {
  const problems = [
    ...(await measure('register/unregister', 100_000, registerUnregister)),
    ...(await measure('stop() on fresh managers', 1_000, freshStops)),
  ]
  if (problems.length) {
    console.error(problems.join('\n'))
    process.exitCode = 1
  }
}

main()
