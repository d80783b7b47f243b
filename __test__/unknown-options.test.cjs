'use strict'
// A typo in an option name passes silently in plain JavaScript. Unknown names emit one process warning in
// Node's style, with the package's own code and the closest known name; they never throw.

const test = require('node:test')
const assert = require('node:assert/strict')
const { ShutdownManager } = require('..')

async function warningsOf(fn) {
  const warnings = []
  const onWarning = (warning) => warnings.push(warning)
  process.on('warning', onWarning)
  try {
    await fn()
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    process.off('warning', onWarning)
  }
  return warnings.filter((w) => w.code === 'TITAN_LIFECYCLE_UNKNOWN_OPTION')
}

test('a misspelt manager option is warned about, naming the closest known one', async () => {
  const warnings = await warningsOf(
    () => new ShutdownManager({ disableGracefulShutdown: true, gracefulShutdownTimout: 5000 }),
  )
  assert.equal(warnings.length, 1)
  assert.equal(warnings[0].name, 'TitanLifecycleWarning')
  assert.match(
    warnings[0].message,
    /unknown option "options\.gracefulShutdownTimout"; did you mean "gracefulShutdownTimeout"\?/,
  )
})

test('an unknown option name is escaped in the warning, so it cannot forge a line or colour a terminal', async () => {
  const key = 'x\n(node:1) Warning: forged\x1b[31m'
  const warnings = await warningsOf(() => new ShutdownManager({ disableGracefulShutdown: true, [key]: 1 }))
  assert.equal(warnings.length, 1)
  assert.equal(warnings[0].message, 'unknown option "options.x\\n(node:1) Warning: forged\\x1b[31m"')
})

test('an unknown option name of megabytes is warned about at once, without a guess', async () => {
  // Its distance to every known name is at least their difference in length: none is compared.
  const key = 'x'.repeat(2 ** 21)
  const started = performance.now()
  const warnings = await warningsOf(() => new ShutdownManager({ disableGracefulShutdown: true, [key]: 1 }))
  const tookMs = performance.now() - started
  assert.equal(warnings.length, 1)
  assert.doesNotMatch(warnings[0].message, /did you mean/)
  // Comparing it letter by letter with the 15 known names took 3 s; without, a few milliseconds.
  assert.ok(tookMs < 500, `took ${tookMs} ms`)
})

test('a misspelt task field and stop() option are warned about; known ones are not', async () => {
  const manager = new ShutdownManager({ disableGracefulShutdown: true })
  const warnings = await warningsOf(async () => {
    manager.registerTask({ id: 'a', prority: 10, handler() {} })
    manager.registerTask({ id: 'b', priority: 10, name: 'b', phase: 'stop', dependsOn: [], timeout: 5, handler() {} })
    // A known field set to undefined is neither warned about nor hides a misspelt one next to it.
    manager.registerTask({ id: 'c', name: undefined, timeout: undefined, handler() {} })
    manager.registerTask({ id: 'd', name: undefined, tiemout: 5, handler() {} })
    // Inherited fields count as the task's, known and unknown alike.
    manager.registerTask(Object.assign(Object.create({ handler() {}, dependOn: [] }), { id: 'e' }))
    // A plain object made in a vm context is a plain object too, not a class instance.
    manager.registerTask(require('node:vm').runInNewContext("({ id: 'f', handler() {}, prioirty: 10 })"))
    await manager.stop({ exti: true, timeout: 1000 })
  })
  assert.deepEqual(
    warnings.map((w) => w.message.match(/"([^"]+)"; did you mean "([^"]+)"/).slice(1)),
    [
      ['task.prority', 'priority'],
      ['task.tiemout', 'timeout'],
      ['task.dependOn', 'dependsOn'],
      ['task.prioirty', 'priority'],
      ['options.exti', 'exit'],
    ],
  )
})

test("a class instance's own fields are its state, not options, and are not warned about", async () => {
  class CacheTask {
    id = 'cache'
    client = { quit() {} }
    closed = false
    timeoutMs = 500 // a name close to `timeout`: still the class's own field
    handler() {
      this.client.quit()
      this.closed = true
    }
  }
  class FlushTask extends CacheTask {
    id = 'flush'
    pending = []
  }
  const manager = new ShutdownManager({ disableGracefulShutdown: true })
  const warnings = await warningsOf(async () => {
    manager.registerTask(new CacheTask())
    manager.registerTask(new FlushTask())
    await manager.stop()
  })
  assert.deepEqual(
    warnings.map((w) => w.message),
    [],
  )
})

test('the same unknown name is warned about once, and a name far from every option gets no guess', async () => {
  const manager = new ShutdownManager({ disableGracefulShutdown: true })
  const warnings = await warningsOf(() => {
    for (let i = 0; i < 100; i++) manager.registerTask({ id: `t${i}`, priorty: 1, handler() {} })
    manager.registerTask({ id: 'x', somethingElseEntirely: true, handler() {} })
  })
  assert.equal(warnings.length, 2)
  assert.match(warnings[1].message, /unknown option "task\.somethingElseEntirely"\.?$/)
  assert.doesNotMatch(warnings[1].message, /did you mean/)
})

test("the same typo in the manager's options and in stop()'s is warned about in each", async () => {
  const warnings = await warningsOf(async () => {
    const manager = new ShutdownManager({ disableGracefulShutdown: true, timout: 1 })
    await manager.stop({ timout: 1 })
  })
  assert.equal(warnings.length, 2)
  for (const warning of warnings) assert.match(warning.message, /"options\.timout"/)
})

test('exitCodes fields are checked too', async () => {
  const warnings = await warningsOf(
    () => new ShutdownManager({ disableGracefulShutdown: true, exitCodes: { hardexit: 3 } }),
  )
  assert.match(warnings[0]?.message ?? '', /"options\.exitCodes\.hardexit"; did you mean "hardExit"\?/)
})

test('a key added to Object.prototype is warned about once, and every task still registers', async () => {
  const manager = new ShutdownManager({ disableGracefulShutdown: true })
  Object.prototype.injectedKey = 1
  let warnings
  try {
    warnings = await warningsOf(() => {
      for (let i = 0; i < 3; i++) manager.registerTask({ id: `t${i}`, handler() {} })
    })
  } finally {
    delete Object.prototype.injectedKey
  }
  assert.deepEqual(
    warnings.map((w) => w.message),
    ['unknown option "task.injectedKey"'],
  )
  const result = await manager.stop({ timeout: 1000 })
  assert.deepEqual(result.tasks.map((t) => [t.id, t.status]).sort(), [
    ['t0', 'succeeded'],
    ['t1', 'succeeded'],
    ['t2', 'succeeded'],
  ])
})
