'use strict'
// trackCluster: the primary asks both workers at once with the IPC message their managers hear; each drains
// its 1 s requests while the other does; not one request in flight fails. Workers deaf to the message are
// SIGKILLed at the timeout. trackCluster is refused outside a primary.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const test = require('node:test')
const assert = require('node:assert/strict')
const { start, launch, kill, find, isRunning, waitFor } = require('./helpers.cjs')

/** A GET on a connection of its own; resolves with { status, body } or { error }. */
function get(port) {
  return new Promise((resolve) => {
    const request = http.get({ port, host: '127.0.0.1', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode, body }))
      res.on('error', (error) => resolve({ error: error.code ?? error.message }))
    })
    request.on('error', (error) => resolve({ error: error.code ?? error.message }))
  })
}

test('SIGTERM to the primary: both workers drain at once and all 10 requests in flight succeed', async () => {
  const primary = start('cluster-service.cjs', ['graceful'])
  const { port, workers } = await primary.ready
  const requests = Array.from({ length: 10 }, () => get(port))
  const inHand = () => primary.lines.filter((l) => l.kind === 'request').length === 10
  await waitFor(inHand, 5000, "every request to be in a worker's hands")
  const signalledAt = Date.now()
  kill(primary.child, 'SIGTERM')
  const responses = await Promise.all(requests)
  const { code, lines, stderr } = await primary.exited
  const tookMs = Date.now() - signalledAt
  assert.equal(code, 0, stderr)
  assert.deepEqual(
    responses.filter((r) => r.status !== 200),
    [],
    'no request in flight failed',
  )
  const servedBy = new Set(responses.map((r) => r.body.replace('done by ', '')))
  assert.equal(servedBy.size, 2, 'both workers served requests')
  assert.ok(tookMs < 3000, `${tookMs} ms`)
  const asked = lines.filter((l) => l.kind === 'worker-shutdown')
  assert.deepEqual(
    asked.map((l) => l.message),
    ['shutdown', 'shutdown'],
  )
  // Asked at once, not one after the other (which would put a drain of up to 1 s between them); `at` is
  // CLOCK_MONOTONIC, shared by the processes (loose for 2 noisy cores).
  const apart = Math.abs(asked[0].at - asked[1].at)
  assert.ok(apart < 500, `the workers began their shutdowns ${apart} ms apart`)
  assert.ok(find(lines, 'event', { event: 'shutdown:task:complete', taskId: 'cluster' }))
  assert.deepEqual(workers.filter(isRunning), [])
})

test('workers deaf to the message get SIGKILL at the timeout; the task fails with ERR_CHILD_KILLED', async () => {
  const primary = start('cluster-service.cjs', ['stubborn', '500'])
  const { workers } = await primary.ready
  kill(primary.child, 'SIGTERM')
  const { code, lines, stderr } = await primary.exited
  assert.equal(code, 1, stderr)
  const failed = find(lines, 'event', { event: 'shutdown:task:error', taskId: 'cluster' })
  assert.equal(failed.error.code, 'ERR_CHILD_KILLED')
  assert.match(failed.error.message, /^2 of 2 cluster workers had not exited in time and were sent SIGKILL/)
  assert.ok(failed.durationMs >= 490 && failed.durationMs < 2000, `${failed.durationMs} ms`)
  assert.deepEqual(workers.filter(isRunning), [])
})

/**
 * Runs the fixture in a `mode` whose primary unregisters the cluster's task, then SIGTERMs it and ends the
 * workers it left running (as it should have); the primary exited 0 and said the task was there to remove.
 */
async function unregisteredRun(mode) {
  const primary = start('cluster-service.cjs', [mode])
  const { workers } = await primary.ready
  kill(primary.child, 'SIGTERM')
  const { code, lines, stderr } = await primary.exited
  for (const pid of workers.filter(isRunning)) process.kill(pid, 'SIGKILL')
  assert.equal(code, 0, stderr)
  const unregistered = find(lines, 'unregistered')
  assert.equal(unregistered.removed, true)
  return { lines, unregistered }
}

test("unregistering the cluster's task untracks its workers and those forked later", async () => {
  const { lines, unregistered } = await unregisteredRun('unregistered')
  assert.equal(unregistered.trackedBefore, 2, 'both workers were tracked natively')
  assert.equal(unregistered.trackedAfter, 0, 'neither they nor the worker forked later are tracked')
  assert.ok(find(lines, 'event', { event: 'shutdown:complete' }), 'the shutdown completed')
  assert.equal(find(lines, 'event', { event: 'shutdown:task:complete', taskId: 'cluster' }), undefined)
  assert.equal(find(lines, 'event', { event: 'shutdown:task:error', taskId: 'cluster' }), undefined)
})

test('a worker forked in the tick that tracks the cluster is tracked once, and unregistering untracks it', async () => {
  // cluster.fork() puts the worker in cluster.workers at once and emits 'fork' on the next tick: both found it.
  const { unregistered } = await unregisteredRun('fork-first')
  assert.equal(unregistered.trackedBefore, 1, 'the worker was tracked once natively')
  assert.equal(unregistered.trackedAfter, 0, 'and is not tracked after its task was unregistered')
})

test('trackCluster outside a primary is refused with ERR_NOT_CLUSTER_PRIMARY', async () => {
  const { spawnSync } = require('node:child_process')
  const script = `
    const cluster = require('node:cluster')
    if (cluster.isPrimary) { cluster.fork().on('exit', (code) => process.exit(code)) } else {
      const { ShutdownManager } = require(${JSON.stringify(require.resolve('..'))})
      const manager = new ShutdownManager()
      try { manager.trackCluster(); process.exit(3) } catch (error) {
        process.exit(error.code === 'ERR_NOT_CLUSTER_PRIMARY' ? 0 : 4)
      }
    }`
  // cluster.fork() runs the primary's script file again, so the script needs a file.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'titan-cluster-')), 'main.cjs')
  fs.writeFileSync(file, script)
  const result = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 10_000 })
  fs.rmSync(path.dirname(file), { recursive: true, force: true })
  assert.equal(result.status, 0, result.stderr)
})

for (const mode of ['starting', 'starting-tracked-late']) {
  test(`workers still starting are not left deaf: one without a manager yet ends, one not listening yet shuts down${
    mode === 'starting' ? '' : ' (forked before trackCluster)'
  }`, async () => {
    // The message reaches only a worker whose manager exists: one still starting (an async bootstrap, an ES
    // module still loading) would have waited for SIGKILL at the timeout. A worker not listening yet gets
    // SIGTERM instead: its manager owns it if it has one, and without one the worker ends at once. Workers
    // forked before trackCluster were always sent the message, whatever their state.
    const primary = start('cluster-service.cjs', [mode, '3000'])
    const { workers } = await primary.ready
    const signalledAt = Date.now()
    kill(primary.child, 'SIGTERM')
    const { code, lines, stderr } = await primary.exited
    const tookMs = Date.now() - signalledAt
    assert.equal(code, 0, stderr)
    assert.ok(tookMs < 2000, `the primary took ${tookMs} ms, as long as its 3 s timeout would be`)
    assert.ok(!find(lines, 'event', { event: 'shutdown:task:error' }), 'no worker needed SIGKILL')
    const shutdowns = lines.filter((l) => l.kind === 'worker-shutdown')
    assert.deepEqual(
      shutdowns.map((l) => l.reason),
      ['SIGTERM'],
      'the worker with a manager shut down on SIGTERM; the one without ended',
    )
    assert.deepEqual(workers.filter(isRunning), [])
  })
}

for (const [keys, signal, signals] of [
  ['Ctrl-C', 'SIGINT', undefined],
  ['Ctrl-backslash', 'SIGQUIT', 'SIGQUIT,SIGTERM'],
]) {
  test(`${keys} to the whole group: a worker still starting whose manager exists finishes its shutdown`, async () => {
    // The terminal's signal reaches the workers too; the primary sends a worker not listening yet the same
    // signal, which the worker's manager takes for a copy of the first (SIGTERM would be a second signal and
    // end it at once, its task cut short). SIGQUIT's shutdown has the reason 'signal', not the signal's name.
    const primary = launch([process.execPath, path.join(__dirname, 'fixtures', 'cluster-service.cjs'), 'starting'], {
      detached: true,
      env: signals ? { CLUSTER_SIGNALS: signals } : {},
    })
    const { workers } = await primary.ready
    process.kill(-primary.child.pid, signal)
    const { code, lines, stderr } = await primary.exited
    for (const pid of workers.filter(isRunning)) process.kill(pid, 'SIGKILL')
    assert.equal(code, 0, stderr)
    assert.doesNotMatch(stderr, /second SIG/)
    const shutdowns = lines.filter((l) => l.kind === 'worker-shutdown')
    assert.deepEqual(
      shutdowns.map((l) => l.signal),
      [signal],
      `the worker with a manager shut down on ${signal}; the one without ended`,
    )
    assert.ok(find(lines, 'worker-task-done'), "the worker's task ran to its end")
    assert.ok(find(lines, 'event', { event: 'shutdown:task:complete', taskId: 'cluster' }), stderr)
  })
}
