'use strict'
// The handlers we chain to are published as one snapshot: a library that re-installs its handler again and
// again is adopted once, not once per re-install, and every handler in the chain runs once per signal. The
// fixture's loop turns every 50 ms, so its per-turn check takes each displacement back at once; the guard's
// timing with an idle loop is the reliability matrix's native-neighbour scenario.

const test = require('node:test')
const assert = require('node:assert/strict')
const { start, kill, find, waitFor, needs, onLinux, neighbourAfterFixture } = require('./helpers.cjs')

test('a native neighbour that re-installs its handler three times still runs once per signal', {
  ...needs('gcc'),
  ...onLinux('LD_PRELOAD'),
}, async () => {
  const fixture = start('neighbour.cjs', ['busy'], {
    env: {
      ...neighbourAfterFixture(300),
      NEIGHBOUR_REPEAT: '3',
      NEIGHBOUR_INTERVAL_MS: '300',
    },
  })
  await fixture.ready
  await waitFor(() => /neighbour: done installing/.test(fixture.output().stderr), 5000, 'the neighbour')
  const warnings = () => fixture.lines.filter((l) => l.kind === 'warn').length
  await waitFor(() => warnings() >= 3, 2000, 'the guard to take the signal back after each install')
  kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  assert.equal(result.code, 0, result.stderr)
  assert.equal(result.stderr.split('neighbour: handler ran').length - 1, 1, 'the neighbour ran once')
  assert.equal(result.lines.filter((l) => l.kind === 'foreign-listener').length, 1, 'JavaScript heard it once')
  assert.equal(warnings(), 3, 'one warning per displacement, not one per guard round')
  for (const warning of result.lines.filter((l) => l.kind === 'warn')) {
    assert.match(warning.message, /native code replaced the SIGTERM handler/)
  }
  assert.ok(find(result.lines, 'task-end', { id: 'drain' }))
})
