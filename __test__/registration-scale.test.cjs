'use strict'
// Registration stays near-linear for every graph shape: the cycle check must not walk the whole graph for
// each task. 20 000 tasks of each shape register well within a bound that a quadratic check (about 11 s for
// the alternating chain below, before the fix) cannot meet; cargo test counts the check's steps exactly.

const test = require('node:test')
const assert = require('node:assert/strict')
const { ShutdownManager } = require('..')

const N = 20_000
const BOUND_MS = 2000

/** Each shape: the order of registration, and what each task depends on. */
const shapes = {
  'chain, forward': (n) => [...Array(n).keys()].map((i) => [i, i > 0 ? [i - 1] : []]),
  'chain, reverse': (n) => [...Array(n).keys()].reverse().map((i) => [i, i > 0 ? [i - 1] : []]),
  'chain to the next, reverse': (n) => [...Array(n).keys()].reverse().map((i) => [i, i < n - 1 ? [i + 1] : []]),
  // Every other link first, then the rest from the far end: each task joins two long chains.
  'chain, alternating from the far end': (n) => [
    ...[...Array(n).keys()].filter((i) => i % 2 === 0).map((i) => [i, i + 1 < n ? [i + 1] : []]),
    ...[...Array(n).keys()]
      .filter((i) => i % 2 === 1)
      .reverse()
      .map((i) => [i, i + 1 < n ? [i + 1] : []]),
  ],
  'chain, shuffled': (n) => shuffle([...Array(n).keys()]).map((i) => [i, i > 0 ? [i - 1] : []]),
  'fan-in, hub last': (n) => [...[...Array(n - 1).keys()].map((i) => [i + 1, [0]]), [0, []]],
  'fan-out': (n) => [
    ...[...Array(n - 1).keys()].map((i) => [i + 1, []]),
    [0, [...Array(n - 1).keys()].map((i) => i + 1)],
  ],
  'fan-in, hub first': (n) => [[0, []], ...[...Array(n - 1).keys()].map((i) => [i + 1, [0]])],
  // Task 0 (registered first) depends on every other, and each of those on task 1: all land in one gap.
  'every task between the same two': (n) => [
    [0, [...Array(n - 2).keys()].map((i) => i + 2)],
    [1, []],
    ...[...Array(n - 2).keys()].map((i) => [i + 2, [1]]),
  ],
  'binary tree, leaves first': (n) => [...Array(n).keys()].reverse().map((i) => [i, i > 0 ? [(i - 1) >> 1] : []]),
  'random graph, three edges each': (n) =>
    shuffle([...Array(n).keys()]).map((i) => [i, i > 2 ? [0, 1, 2].map(() => Math.floor(random() * i)) : []]),
}

let seed = 42
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
function shuffle(items) {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[items[i], items[j]] = [items[j], items[i]]
  }
  return items
}

for (const [shape, make] of Object.entries(shapes)) {
  test(`${N} tasks, ${shape}: registered in under ${BOUND_MS} ms and stopped in order`, async () => {
    const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
    const order = []
    const plan = make(N)
    const started = performance.now()
    for (const [i, deps] of plan) {
      manager.registerTask({
        id: `t${i}`,
        dependsOn: [...new Set(deps)].map((d) => `t${d}`),
        handler: () => order.push(i),
      })
    }
    const elapsed = performance.now() - started
    assert.ok(elapsed < BOUND_MS, `${shape}: ${elapsed.toFixed(0)} ms`)
    // A dependent stops before what it depends on.
    await manager.stop({ timeout: 60_000 })
    const position = new Map(order.map((task, index) => [task, index]))
    assert.equal(position.size, N)
    for (const [i, deps] of plan)
      for (const d of deps) assert.ok(position.get(i) < position.get(d), `t${i} before t${d}`)
  })
}

test('a cycle closed by the last registration of a long chain is still refused', () => {
  const manager = new ShutdownManager({ disableGracefulShutdown: true })
  for (let i = 0; i < N; i++) manager.registerTask({ id: `t${i}`, dependsOn: [`t${i + 1}`], handler() {} })
  assert.throws(() => manager.registerTask({ id: `t${N}`, dependsOn: ['t0'], handler() {} }), {
    code: 'ERR_TASK_CYCLE',
  })
  manager.registerTask({ id: `t${N}`, handler() {} })
})
