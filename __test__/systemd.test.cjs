'use strict'
// systemd's Type=notify, natively: READY=1 on manager.ready(); STOPPING=1, a STATUS= line naming the phase
// and EXTEND_TIMEOUT_USEC when a shutdown starts, re-sent while it runs; WATCHDOG=1 while the event loop
// answers, and not while it is blocked. A Python listener stands in for systemd, on a path socket and on
// an abstract one.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const readline = require('node:readline')
const test = require('node:test')
const assert = require('node:assert/strict')
const { start, launch, kill, needs, onLinux, waitFor } = require('./helpers.cjs')

/**
 * Starts the listener at `address` (`fullForMs`: with its queue full for that long first); resolves once it
 * is bound, with the datagrams it receives so far.
 */
async function listen(address, fullForMs) {
  const options = fullForMs === undefined ? [] : ['--full-for', String(fullForMs)]
  const listener = spawn('python3', [path.join(__dirname, 'fixtures', 'notify-listener.py'), ...options, address], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const datagrams = []
  const lines = readline.createInterface({ input: listener.stdout })
  await new Promise((resolve, reject) => {
    listener.once('error', reject)
    // A listener that cannot bind exits before 'listening'; one that hangs is given up on.
    listener.once('exit', (code) => reject(new Error(`notify-listener.py exited (${code}) before listening`)))
    setTimeout(() => reject(new Error('notify-listener.py did not listen within 5 s')), 5000).unref()
    lines.on('line', (line) => {
      if (line === 'listening') resolve()
      else datagrams.push(JSON.parse(line))
    })
  })
  return { datagrams, stop: () => listener.kill('SIGKILL') }
}

/** A listener on a path socket in a scratch directory, both gone when test `t` ends. */
async function listenAtPath(t, fullForMs) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-notify-'))
  const address = path.join(dir, 'notify')
  const systemd = await listen(address, fullForMs)
  t.after(() => {
    systemd.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  return { address, systemd }
}

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const texts = (datagrams) => datagrams.map((d) => d.text)

/**
 * notify-service.cjs in `mode` under a listener with WatchdogSec's variables (a ping every 100 ms), once
 * it is ready and has had 450 ms to ping; a manager in a child it spawned must not speak for the service.
 */
async function pingingService(t, mode) {
  const { address, systemd } = await listenAtPath(t)
  const service = start('notify-service.cjs', [mode], { env: { NOTIFY_SOCKET: address, WATCHDOG_USEC: '200000' } })
  const { childSpeaksTo, ownSocket } = await service.ready
  assert.equal(childSpeaksTo, '', 'a manager in a child does not speak for the service')
  assert.equal(ownSocket, address, "the service's own code still has NOTIFY_SOCKET (an sd-notify of its own)")
  await wait(450)
  return { service, systemd }
}

/** The pings of about 450 ms at one per 100 ms, loose for 2 noisy cores. */
function assertPingRate(sent) {
  const pings = sent.filter((text) => text === 'WATCHDOG=1').length
  assert.ok(pings >= 3 && pings <= 8, `${pings} pings in about 450 ms at one per 100 ms`)
}

test(
  'a graceful shutdown: READY, watchdog pings, then STOPPING with the stop phase, the destroy phase, in order',
  needs('python3'),
  async (t) => {
    const { service, systemd } = await pingingService(t, 'graceful')
    kill(service.child, 'SIGTERM')
    const { code, stderr } = await service.exited
    assert.equal(code, 0, stderr)
    await wait(100)
    const sent = texts(systemd.datagrams)
    assert.equal(
      sent.find((text) => text !== 'WATCHDOG=1'),
      'READY=1\nSTATUS=ready',
      'READY comes first',
    )
    const stopping = sent.findIndex((text) => text.startsWith('STOPPING=1\n'))
    assert.ok(stopping > 0, sent.join(' | '))
    assertPingRate(sent.slice(0, stopping))
    const [, status, extend] = sent[stopping].split('\n')
    assert.equal(status, 'STATUS=shutting down (SIGTERM): stop phase')
    // What remains of the 3000 ms deadline plus a second's margin.
    const usec = Number(extend.replace('EXTEND_TIMEOUT_USEC=', ''))
    assert.ok(usec > 3_500_000 && usec <= 4_000_000, extend)
    assert.ok(sent.slice(stopping).includes('STATUS=shutting down (SIGTERM): destroy phase'), sent.join(' | '))
  },
)

test('a blocked loop: the pings stop, the stop timeout is re-extended until the hard exit (abstract socket)', {
  ...needs('python3'),
  ...onLinux('an abstract socket'),
}, async (t) => {
  const address = `@titan-lifecycle-test-${process.pid}`
  const systemd = await listen(address)
  t.after(() => systemd.stop())
  const service = start('notify-service.cjs', ['block', '2500'], {
    env: { NOTIFY_SOCKET: address, WATCHDOG_USEC: '200000' },
  })
  await service.ready
  await wait(300)
  const sentAt = kill(service.child, 'SIGTERM')
  const { code, stderr } = await service.exited
  assert.equal(code, 124, stderr)
  await wait(100)
  const sent = systemd.datagrams
  const stopping = sent.findIndex((d) => d.text.startsWith('STOPPING=1\n'))
  assert.ok(stopping > 0, texts(sent).join(' | '))
  assert.equal(sent.find((d) => d.text !== 'WATCHDOG=1').text, 'READY=1\nSTATUS=ready', 'READY comes first')
  assert.ok(texts(sent.slice(0, stopping)).includes('WATCHDOG=1'), 'pings while the loop answered')
  // The task blocks the loop at once: no ping after STOPPING (one may have been on its way).
  const lateNotices = sent.slice(stopping + 1)
  const pingsAfter = lateNotices.filter((d) => d.text === 'WATCHDOG=1' && d.at > sent[stopping].at + 150)
  assert.deepEqual(pingsAfter, [], 'no ping while the loop is blocked')
  // Re-extended by the watchdog thread 2 s in, to what remains (about 0.5 s) plus the margin. Measured from
  // the signal (the shutdown begins on its arrival; CLOCK_MONOTONIC, shared with the listener), since the
  // listener may receive STOPPING late on a busy machine.
  const extensions = lateNotices.filter((d) => d.text.startsWith('EXTEND_TIMEOUT_USEC='))
  assert.equal(extensions.length, 1, texts(lateNotices).join(' | '))
  const after = extensions[0].at - sentAt
  assert.ok(after > 1800 && after < 2500, `re-extended ${after} ms after SIGTERM`)
  const usec = Number(extensions[0].text.split('=')[1])
  assert.ok(usec > 1_000_000 && usec < 1_800_000, extensions[0].text)
})

test(
  'a manager that owns no signals: ready() starts the watchdog pings, and children inherit nothing',
  needs('python3'),
  async (t) => {
    const { service, systemd } = await pingingService(t, 'no-signals')
    kill(service.child, 'SIGKILL')
    await service.exited
    await wait(100)
    const sent = texts(systemd.datagrams)
    assert.equal(sent[0], 'READY=1\nSTATUS=ready', sent.join(' | '))
    assertPingRate(sent)
  },
)

test(
  "READY=1 is sent again while systemd's queue is full, and reaches it once there is room",
  needs('python3'),
  async (t) => {
    // systemd waits for READY=1 to finish starting the unit: dropped, the unit would fail its start timeout.
    const { address, systemd } = await listenAtPath(t, 400)
    const service = start('notify-service.cjs', ['no-signals'], {
      env: { NOTIFY_SOCKET: address, WATCHDOG_USEC: '200000' },
    })
    const { childSpeaksTo } = await service.ready
    await waitFor(() => texts(systemd.datagrams).includes('READY=1\nSTATUS=ready'), 5000, 'READY=1')
    // Once it went out, the pings of a service whose manager owns no signals start, and it speaks for the
    // service (until then it did not, and a child's manager could).
    await waitFor(() => texts(systemd.datagrams).includes('WATCHDOG=1'), 2000, 'the pings')
    assert.equal(childSpeaksTo, address, 'a child spawned before READY went out could speak, as none did yet')
    kill(service.child, 'SIGKILL')
  },
)

test(
  'a disposed manager stops sending READY=1 again, and sends nothing from a later ready()',
  needs('python3'),
  async (t) => {
    const { address, systemd } = await listenAtPath(t, 400)
    const service = start('notify-service.cjs', ['dispose-after-ready'], { env: { NOTIFY_SOCKET: address } })
    await service.ready
    await wait(1000)
    assert.deepEqual(texts(systemd.datagrams), [], 'nothing reached the listener once it had room')
    kill(service.child, 'SIGKILL')
    const later = await listenAtPath(t)
    const disposed = start('notify-service.cjs', ['ready-after-dispose'], {
      env: { NOTIFY_SOCKET: later.address, WATCHDOG_USEC: '200000' },
    })
    await disposed.ready
    await wait(400)
    assert.deepEqual(texts(later.systemd.datagrams), [], 'no READY=1, and no pings')
    kill(disposed.child, 'SIGKILL')
  },
)

/**
 * notify-service.cjs in `mode` (with `env` besides NOTIFY_SOCKET) exits 0 having told systemd it stops,
 * and never that it is ready.
 */
async function assertStopsWithoutReady(t, mode, env = {}) {
  const { address, systemd } = await listenAtPath(t)
  const service = start('notify-service.cjs', [mode], { env: { NOTIFY_SOCKET: address, ...env } })
  const { code, stderr } = await service.exited
  assert.equal(code, 0, stderr)
  await wait(100)
  const sent = texts(systemd.datagrams)
  assert.ok(
    sent.some((text) => text.startsWith('STOPPING=1\n')),
    sent.join(' | '),
  )
  assert.ok(!sent.some((text) => text.startsWith('READY=1')), sent.join(' | '))
}

test('ready() after a shutdown began sends nothing: STOPPING stays the last word', needs('python3'), (t) =>
  assertStopsWithoutReady(t, 'ready-after-stop'),
)

// A component's manager (no signals) still running when the service's shutdown has begun: READY=1 after
// STOPPING=1 would take a unit still starting to running while it stops.
test("another manager's ready() after the signal owner's shutdown began sends nothing", needs('python3'), (t) =>
  assertStopsWithoutReady(t, 'other-ready-after-stop'),
)

// The main thread owns the signals (its pings and STOPPING=1 go out); a worker's READY=1 would leave
// systemd expecting pings that thread could not keep up.
test(
  "under WatchdogSec a worker thread's ready() says nothing to systemd, whose pings it could not keep up",
  needs('python3'),
  (t) => assertStopsWithoutReady(t, 'worker-ready', { WATCHDOG_USEC: '200000' }),
)

test(
  "without WatchdogSec a worker thread's ready() tells systemd the service is ready",
  needs('python3'),
  async (t) => {
    const { address, systemd } = await listenAtPath(t)
    const service = start('notify-service.cjs', ['worker-ready'], { env: { NOTIFY_SOCKET: address } })
    const { code, stderr } = await service.exited
    assert.equal(code, 0, stderr)
    await wait(100)
    const sent = texts(systemd.datagrams).filter((text) => !text.startsWith('STATUS=') && !text.startsWith('EXTEND'))
    assert.equal(sent[0], 'READY=1\nSTATUS=ready', sent.join(' | '))
    assert.ok(sent[1]?.startsWith('STOPPING=1\n'), sent.join(' | '))
  },
)

test('without NOTIFY_SOCKET nothing is sent and ready() is harmless', onLinux('/proc/<pid>/fd'), async () => {
  const service = start('notify-service.cjs', ['graceful'], { env: { NOTIFY_SOCKET: '', WATCHDOG_USEC: '200000' } })
  await service.ready
  // No socket is made: the service holds no Unix datagram socket.
  const fds = fs.readdirSync(`/proc/${service.child.pid}/fd`).map((fd) => {
    try {
      return fs.readlinkSync(`/proc/${service.child.pid}/fd/${fd}`)
    } catch {
      return ''
    }
  })
  const sockets = fs.readFileSync(`/proc/${service.child.pid}/net/unix`, 'utf8')
  kill(service.child, 'SIGTERM')
  const { code, stderr } = await service.exited
  assert.equal(code, 0, stderr)
  const inodes = fds.filter((link) => link.startsWith('socket:')).map((link) => link.slice(8, -1))
  // Type 0002 is SOCK_DGRAM in /proc/net/unix.
  const datagramSockets = sockets
    .split('\n')
    .filter((line) => / 0002 /.test(line) && inodes.some((inode) => line.includes(` ${inode}`)))
  assert.deepEqual(datagramSockets, [])
})

// NODE_OPTIONS puts register in a launcher as well as in the service it starts: a process that never asks
// for register's manager must not speak for the unit (its TITAN_LIFECYCLE_NOTIFY_PID would silence the
// service's own READY=1), nor send STOPPING=1 for a signal it survives or dies by.
test("a process that never asks for register's manager says nothing to systemd", needs('python3'), async (t) => {
  const { address, systemd } = await listenAtPath(t)
  const app = launch(
    [process.execPath, '--require', 'titan-lifecycle/register', path.join(__dirname, 'fixtures', 'unclaimed-app.cjs')],
    { cwd: __dirname, env: { NOTIFY_SOCKET: address, WATCHDOG_USEC: '200000' } },
  )
  const ready = await app.ready
  assert.ok(ready, app.output().stderr)
  assert.equal(ready.notifyPid, null, 'it did not claim to speak for the service')
  await wait(300)
  kill(app.child, 'SIGTERM')
  const result = await app.exited
  assert.equal(result.signal, 'SIGTERM', result.stderr)
  await wait(100)
  assert.deepEqual(texts(systemd.datagrams), [])
})

test(
  "a library's ready() on register's unclaimed manager waits for the application's claim",
  needs('python3'),
  async (t) => {
    const { address, systemd } = await listenAtPath(t)
    const run = (args) =>
      launch(
        [
          process.execPath,
          '--require',
          'titan-lifecycle/register',
          path.join(__dirname, 'fixtures', 'unclaimed-app.cjs'),
          ...args,
        ],
        { cwd: __dirname, env: { NOTIFY_SOCKET: address } },
      )
    // Never claimed (a launcher): nothing is said for the unit, and the service it would start is not silenced.
    const launcher = run(['library-ready'])
    assert.ok(await launcher.ready, launcher.output().stderr)
    await wait(300)
    assert.deepEqual(texts(systemd.datagrams), [])
    kill(launcher.child, 'SIGTERM')
    assert.equal((await launcher.exited).signal, 'SIGTERM')
    // Claimed later: the claim sends the READY=1 asked for before it.
    const service = run(['library-ready', 'claim'])
    assert.ok(await service.ready, service.output().stderr)
    await waitFor(() => texts(systemd.datagrams).includes('READY=1\nSTATUS=ready'), 5000)
    kill(service.child, 'SIGTERM')
    assert.equal((await service.exited).code, 0)
  },
)
