'use strict'
// Acceptance 4: SIGTERM starts the graceful shutdown even after other code added its own listener, removed
// every SIGTERM listener, or removed every listener of every event; a foreign listener still gets it once.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const test = require('node:test')
const assert = require('node:assert/strict')
const { start, launch, needs, onLinux, kill, find, eventNames } = require('./helpers.cjs')

async function sigterm(variant) {
  const fixture = start('foreign-listeners.cjs', [variant])
  const readyLine = await fixture.ready
  if (variant !== 'same-tick') kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  return { ...result, readyLine }
}

function assertGraceful({ code, signal, lines, stderr }) {
  assert.equal(signal, null, `died by ${signal}: the signal reached Node's default action\n${stderr}`)
  assert.equal(code, 0, stderr)
  assert.ok(find(lines, 'task-end', { id: 'drain' }), 'the shutdown task ran')
  assert.deepEqual(eventNames(lines), ['shutdown:start', 'shutdown:task:complete', 'shutdown:complete'])
  assert.equal(find(lines, 'event', { event: 'shutdown:start' }).reason, 'SIGTERM')
}

test("another library's SIGTERM listener runs once and the shutdown still runs", async () => {
  const result = await sigterm('listener')
  assertGraceful(result)
  assert.equal(result.readyLine.sigtermListeners, 1)
  assert.equal(result.lines.filter((l) => l.kind === 'foreign-listener').length, 1)
})

test("process.removeAllListeners('SIGTERM') does not stop the shutdown", async () => {
  const result = await sigterm('remove-signal')
  assertGraceful(result)
  assert.equal(result.readyLine.sigtermListeners, 0)
  assert.ok(!find(result.lines, 'foreign-listener'))
})

test('process.removeAllListeners() with no argument does not stop the shutdown', async () => {
  const result = await sigterm('remove-all')
  assertGraceful(result)
  assert.ok(!find(result.lines, 'foreign-listener'))
})

test('a self-kill in the same tick as removeAllListeners is still a graceful shutdown', async () => {
  const result = await sigterm('same-tick')
  assertGraceful(result)
  assert.ok(find(result.lines, 'survived-self-kill'), 'process.kill returned: the signal did not kill the process')
})

// At a natural exit the main loop's handles must close, and libuv resets the slot of a signal whose last
// handle closes to SIG_DFL: a SIGTERM in that moment killed the exiting process by signal (seen once in 60
// runs of the reliability matrix's exit-race). strace shows every change of the slots, so the moment is
// checked directly rather than hit by chance.
test('at a natural exit the owned signals never fall back to the default action', {
  ...needs('strace'),
  ...onLinux('strace'),
}, async () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-slots-'))
  const owned = /rt_sigaction\(SIG(TERM|INT|HUP), \{sa_handler=SIG_DFL/
  const traced = async (name, args) => {
    const trace = path.join(scratch, name)
    const run = launch([
      'strace',
      '-f',
      '-qq',
      '-o',
      trace,
      '-e',
      'trace=rt_sigaction,write',
      process.execPath,
      ...args,
    ])
    const { code, signal, stderr } = await run.exited
    assert.equal(signal, null, stderr)
    assert.equal(code, 0, stderr)
    return fs.readFileSync(trace, 'utf8').split('\n')
  }
  try {
    const calls = await traced('manager', [path.join(__dirname, 'fixtures', 'exit-race.cjs'), '0'])
    const readyAt = calls.findIndex((line) => /write\(1, "\{\\"kind\\":\\"ready\\"/.test(line))
    assert.ok(readyAt > 0, 'the trace shows the ready line')
    const resets = calls.slice(readyAt).filter((line) => owned.test(line))
    assert.deepEqual(resets, [], 'an owned slot was reset to SIG_DFL after the manager took it')
    // The check can see a reset: without the package, removing the last listener makes libuv reset the slot.
    const bare = await traced('bare', ['-e', "process.on('SIGTERM', () => {}); process.removeAllListeners('SIGTERM')"])
    assert.ok(
      bare.some((line) => owned.test(line)),
      `the trace shows libuv's reset:\n${bare.join('\n')}`,
    )
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
})
