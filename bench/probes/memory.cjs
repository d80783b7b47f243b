'use strict'
// Memory one library retains for argv[3] registered tasks (run with --expose-gc): the growth of the
// JavaScript heap in use after full collections, and of native memory (what the C allocator has handed out,
// read by the bench's floor addon, argv[4]; V8's heap is not allocated that way). The tasks, their ids and
// their one shared handler exist before the first reading, as a service's own would; what is counted is
// what the library keeps for them. The bench subtracts a run with no task, so the library's fixed cost
// (its first manager, its code) is not spread over the tasks.
const { adapters } = require('../adapters.cjs')
const { report } = require('../../__test__/fixtures/report.cjs')

const [library, count, floorAddon] = process.argv.slice(2)
const { mallocInUse } = require(floorAddon)
const run = async () => {}
const tasks = Array.from({ length: Number(count) }, (_, i) => ({ id: `task-${i}`, priority: 50, dependsOn: [], run }))

function settledUsage() {
  for (let i = 0; i < 4; i++) globalThis.gc()
  return { heapUsed: process.memoryUsage().heapUsed, native: mallocInUse() }
}

async function main() {
  const before = settledUsage()
  await adapters[library].setup({ tasks, deadlineMs: 30_000 })
  // Work a library defers to the end of the turn (a batched registration) is part of what it retains.
  await new Promise((resolve) => setImmediate(resolve))
  const after = settledUsage()
  report('memory', {
    heapBytes: after.heapUsed - before.heapUsed,
    nativeBytes: after.native - before.native,
  })
  process.exit(0)
}

main()
