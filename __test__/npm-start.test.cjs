'use strict'
// Under `npm start`, one signal to the whole process group (systemd's KillMode=control-group, a killpg,
// Ctrl-C at a terminal) reaches the service twice: from the sender, and forwarded by npm, its parent when the
// script shell execs node (bash does). That forwarded copy is the same signal, not a second one. With sh as
// the script shell npm forwards to sh instead, sh dies, npm exits, and the terminal hangs up: the kernel's
// SIGHUP that follows is the terminal going away, not a second request either. A second Ctrl-C from the user
// still exits at once.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { launch, find, npmStart, needs, waitFor, isRunning, FIXTURES } = require('./helpers.cjs')
const { now } = require('./fixtures/report.cjs')

const APP = path.join(FIXTURES, 'npm-app')

function assertOneGracefulShutdown({ lines, text }, reason) {
  assert.doesNotMatch(text, /second SIG/, 'a forwarded copy or a hangup was taken as a second signal')
  assert.equal(find(lines, 'event', { event: 'shutdown:start' })?.reason, reason, text)
  assert.ok(find(lines, 'task-end', { id: 'drain' }), `the shutdown ran to its end\n${text}`)
  assert.equal(find(lines, 'exit')?.code, 0, `the service exited 0\n${text}`)
}

const isGone = (pid) => !isRunning(pid)

/**
 * Runs `npm start` in a pseudo-terminal and presses Ctrl-C `presses` times. The service reports to a file:
 * once npm exits the terminal is gone, and the service may still be finishing its shutdown.
 */
async function inTerminal(shell, presses, env = {}) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'titan-lifecycle-pty-')), 'report.jsonl')
  fs.writeFileSync(file, '')
  const terminal = launch(['python3', path.join(FIXTURES, 'pty-run.py'), String(presses), ...npmStart(shell)], {
    cwd: APP,
    env: { TITAN_REPORT_FILE: file, ...env },
  })
  const session = await terminal.exited
  const read = () =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
  const service = find(read(), 'ready')?.pid
  assert.ok(service, `the service started\n${session.stdout}${session.stderr}`)
  try {
    await waitFor(() => isGone(service), 5000, 'the service to exit')
  } finally {
    if (!isGone(service)) process.kill(service, 'SIGKILL')
  }
  return { lines: read(), text: session.stdout + session.stderr, session }
}

for (const shell of ['sh', 'bash']) {
  test(
    `npm start (script shell ${shell}): SIGTERM to the process group shuts down once, exit 0`,
    needs('npm', shell),
    async () => {
      const fixture = launch(npmStart(shell), { cwd: APP, detached: true })
      await fixture.ready
      process.kill(-fixture.child.pid, 'SIGTERM')
      const result = await fixture.exited
      assert.equal(result.killedByTimer, false, 'hung')
      assertOneGracefulShutdown({ lines: result.lines, text: result.stdout + result.stderr }, 'SIGTERM')
    },
  )

  test(
    `npm start (script shell ${shell}): Ctrl-C in a terminal shuts down once, exit 0`,
    needs('npm', shell, 'python3'),
    async () => {
      assertOneGracefulShutdown(await inTerminal(shell, 1), 'SIGINT')
    },
  )
}

test(
  'npm start (script shell bash): a second Ctrl-C still exits at once with 130',
  needs('npm', 'bash', 'python3'),
  async () => {
    // A drain of 3 s: the second press lands during it however slowly this machine runs the terminal.
    const { lines, text } = await inTerminal('bash', 2, { DRAIN_MS: '3000' })
    assert.match(text, /second SIGINT during shutdown, exiting now with code 130/)
    assert.ok(find(lines, 'task-start', { id: 'drain' }))
    assert.ok(!find(lines, 'task-end', { id: 'drain' }), 'the second Ctrl-C cut the shutdown short')
    assert.ok(!find(lines, 'exit'), 'it was the native exit, not the end of the shutdown')
  },
)

// NODE_OPTIONS carries `--require titan-lifecycle/register` to every Node process, npm's own included. npm
// must get no manager: one there would own SIGTERM and exit at once, without waiting for the service it
// forwarded the signal to, and a container whose first process is npm would end mid-shutdown.
test(
  'NODE_OPTIONS=--require titan-lifecycle/register under npm: SIGTERM to npm alone, npm waits for the shutdown',
  needs('npm', 'bash'),
  async () => {
    const register = path.join(__dirname, '..', 'register')
    // Detached, so that the kill timer reaches the service too if npm never passes the signal on.
    const fixture = launch(['npm', 'run', 'registered', '--silent', '--script-shell=bash'], {
      cwd: APP,
      detached: true,
      env: { NODE_OPTIONS: `--require ${JSON.stringify(register)}`, TITAN_LIFECYCLE_TIMEOUT: '5000' },
    })
    const npmExited = new Promise((resolve) => fixture.child.once('exit', (code) => resolve({ code, at: now() })))
    const service = (await fixture.ready)?.pid
    const output = () => fixture.output().stdout + fixture.output().stderr
    assert.ok(service, `the service started\n${output()}`)
    try {
      // npm alone, as a container's runtime signals its first process.
      process.kill(fixture.child.pid, 'SIGTERM')
      const npm = await npmExited
      const { lines, killedByTimer } = await fixture.exited
      assert.equal(killedByTimer, false, 'hung')
      assert.ok(find(lines, 'task-end', { id: 'drain' }), `the service's shutdown ran to its end\n${output()}`)
      const exit = find(lines, 'exit')
      assert.equal(exit?.code, 0, `the service exited 0\n${output()}`)
      assert.equal(exit.npmWaited, true, `npm exited before the service had shut down\n${output()}`)
      assert.ok(exit.at <= npm.at, `npm exited ${(exit.at - npm.at).toFixed(0)} ms before the service\n${output()}`)
      assert.equal(npm.code, 0, `npm's exit code follows the service's\n${output()}`)
    } finally {
      if (isRunning(service)) process.kill(service, 'SIGKILL')
    }
  },
)
