'use strict'
// Supervisor messages: the IPC message PM2 sends instead of a signal ('shutdown') starts the shutdown, with
// reason 'signal' and the message named in the start event; manager.ready() answers PM2's wait_ready. The
// manager's listener never keeps the process alive on its own.

const path = require('node:path')
const { fork } = require('node:child_process')
const test = require('node:test')
const assert = require('node:assert/strict')
const { find, eventNames, waitFor } = require('./helpers.cjs')
const { ShutdownManager } = require('..')

/** Forks the IPC fixture the way PM2 starts an app; collects its report lines and IPC messages. */
function forkService(args, { env = {} } = {}) {
  const child = fork(path.join(__dirname, 'fixtures', 'ipc-service.cjs'), args, {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, ...env },
  })
  const lines = []
  const messages = []
  let stderr = ''
  let markReady
  let failReady
  const readyLine = new Promise((resolve, reject) => {
    markReady = resolve
    failReady = reject
  })
  let pending = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    pending += chunk
    let newline
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = JSON.parse(pending.slice(0, newline))
      pending = pending.slice(newline + 1)
      lines.push(line)
      if (line.kind === 'ready') markReady(line)
    }
  })
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    stderr += chunk
  })
  child.on('message', (message) => messages.push(message))
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(killer)
      failReady(new Error(`the fixture exited (${code ?? signal}) before it was ready\n${stderr}`)) // no-op once ready
      resolve({ code, signal })
    }),
  )
  return { child, lines, messages, ready: readyLine, exited, stderr: () => stderr }
}

test("the 'shutdown' message starts the shutdown: reason 'signal', the message named, tasks run, exit 0", async () => {
  const service = forkService([])
  await service.ready
  service.child.send('shutdown')
  const { code, signal } = await service.exited
  assert.equal(signal, null)
  assert.equal(code, 0, service.stderr())
  const start = find(service.lines, 'event', { event: 'shutdown:start' })
  assert.equal(start.reason, 'signal')
  assert.equal(start.message, 'shutdown')
  assert.equal(start.signal, undefined)
  assert.deepEqual(eventNames(service.lines), ['shutdown:start', 'shutdown:task:complete', 'shutdown:complete'])
})

test("a signal that began the shutdown before the supervisor's message was heard: shutdown:start names no message", async () => {
  const service = forkService(['default', 'busy'])
  await service.ready
  service.child.send('block')
  await waitFor(() => find(service.lines, 'blocking'), 5000, 'the loop blocked')
  // Both arrive while the loop is blocked: the watchdog begins the shutdown for the signal at once, and the
  // message is heard after it, when the loop is back.
  await new Promise((resolve) => setTimeout(resolve, 50))
  service.child.kill('SIGTERM')
  service.child.send('shutdown')
  const { code } = await service.exited
  assert.equal(code, 0, service.stderr())
  const start = find(service.lines, 'event', { event: 'shutdown:start' })
  assert.equal(start.reason, 'SIGTERM')
  assert.equal(start.signal, 'SIGTERM')
  assert.equal(start.message, undefined)
})

test('ipcMessage names another message; other messages are ignored', async () => {
  const service = forkService(['"graceful-stop"'])
  await service.ready
  service.child.send('shutdown')
  service.child.send({ type: 'graceful-stop' })
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(find(service.lines, 'event', { event: 'shutdown:start' }), undefined, 'nothing started')
  service.child.send('graceful-stop')
  const { code } = await service.exited
  assert.equal(code, 0, service.stderr())
  assert.equal(find(service.lines, 'event', { event: 'shutdown:start' }).message, 'graceful-stop')
})

test('ipcMessage: false hears no message', async () => {
  const service = forkService(['false'])
  await service.ready
  service.child.send('shutdown')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(find(service.lines, 'event', { event: 'shutdown:start' }), undefined)
  service.child.kill('SIGTERM')
  const { code } = await service.exited
  assert.equal(code, 0, service.stderr())
  assert.equal(find(service.lines, 'event', { event: 'shutdown:start' }).reason, 'SIGTERM')
})

test("the manager's IPC listener does not keep an otherwise finished process alive", async () => {
  const service = forkService(['"shutdown"', 'idle'])
  await service.ready
  const { code } = await service.exited // the parent keeps its end of the channel open all along
  assert.equal(code, 0, service.stderr())
  assert.equal(find(service.lines, 'event', { event: 'shutdown:start' }), undefined, 'it ended on its own')
})

test("removeAllListeners('message') by another library: the service's own listener keeps it alive, the message is still heard", async () => {
  const service = forkService(['"shutdown"', 'removed'])
  await service.ready
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(
    service.child.exitCode,
    null,
    "the service's 'message' listener keeps the channel, and the process, alive",
  )
  service.child.send('shutdown')
  const { code } = await service.exited
  assert.equal(code, 0, service.stderr())
  assert.equal(find(service.lines, 'app-message')?.message, 'shutdown')
  assert.equal(find(service.lines, 'event', { event: 'shutdown:start' })?.message, 'shutdown', 'the manager heard it')
})

test("a manager disposed while another library had removed its 'message' listener leaves the channel unref'd", async () => {
  const service = forkService(['"shutdown"', 'removed-then-dispose'])
  const { code } = await service.exited // the parent keeps its end of the channel open all along
  assert.equal(code, 0, service.stderr())
  assert.ok(find(service.lines, 'exit'), 'it ended on its own')
})

test("a library that removes the 'message' listener as often as it is put back cannot stall the event loop", async () => {
  const service = forkService(['"shutdown"', 'fight'])
  const { code } = await service.exited
  assert.equal(code, 0, service.stderr())
  assert.ok(find(service.lines, 'timer-ran'), 'a timer ran: the loop was not held in a tick-by-tick fight')
  assert.ok(
    service.lines.some(
      (l) => l.kind === 'log' && /removes the manager's 'message' listener as soon as it is back/.test(l.message),
    ),
    JSON.stringify(service.lines),
  )
})

test("manager.ready() answers PM2's wait_ready with 'ready' under PM2, and sends nothing elsewhere", async () => {
  const pm2 = forkService([], { env: { pm_id: '0' } })
  await pm2.ready
  const plain = forkService([])
  await plain.ready
  for (const service of [pm2, plain]) service.child.send('shutdown')
  const exits = await Promise.all([pm2.exited, plain.exited])
  assert.deepEqual(
    exits.map(({ code }) => code),
    [0, 0],
    `${pm2.stderr()}${plain.stderr()}`,
  )
  assert.deepEqual(pm2.messages, ['ready'])
  assert.deepEqual(plain.messages, [])
})

test('manager.ready() on a channel the supervisor closed unheard is no uncaught error', async () => {
  const service = forkService(['default', 'disconnected'], { env: { pm_id: '0' } })
  await service.ready
  service.child.disconnect()
  const { code } = await service.exited
  assert.equal(code, 0, service.stderr())
  assert.ok(find(service.lines, 'alive'), 'the service ran on after the failed send')
  assert.equal(find(service.lines, 'event', { event: 'shutdown:start' }), undefined, 'no shutdown began')
})

test('bad ipcMessage values are refused in Node style', () => {
  assert.throws(() => new ShutdownManager({ signals: [], ipcMessage: 5 }), {
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
  })
  assert.throws(() => new ShutdownManager({ signals: [], ipcMessage: true }), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => new ShutdownManager({ signals: [], ipcMessage: '' }), { code: 'ERR_INVALID_ARG_VALUE' })
})
