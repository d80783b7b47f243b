'use strict'
// Zero-code adoption: `node --require titan-lifecycle/register app.js` (or `--import` for ES modules)
// makes the process's manager from environment variables, and the application adds its tasks to it.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { launch, kill, find, FIXTURES } = require('./helpers.cjs')

function startApp(flag, file, { env = {}, args = [] } = {}) {
  // From __test__, whose node_modules/titan-lifecycle links to this checkout, so `titan-lifecycle/register`
  // resolves by name as it does in an installed package (the extensionless `register` file, for both flags).
  return launch([process.execPath, flag, 'titan-lifecycle/register', path.join(FIXTURES, file), ...args], {
    cwd: __dirname,
    env,
  })
}

for (const [flag, file] of [
  ['--require', 'registered-app.cjs'],
  ['--import', 'registered-app.mjs'],
]) {
  test(`node ${flag} titan-lifecycle/register: SIGTERM runs the application's task, exit 0`, async () => {
    const app = startApp(flag, file, { env: { TITAN_LIFECYCLE_SIGNALS: 'SIGTERM' } })
    assert.ok(await app.ready, app.output().stderr)
    kill(app.child, 'SIGTERM')
    const result = await app.exited
    assert.equal(result.code, 0, result.stderr)
    assert.equal(find(result.lines, 'event', { event: 'shutdown:start' })?.reason, 'SIGTERM')
    assert.ok(find(result.lines, 'task-end', { id: 'work' }))
  })
}

test('the deadline comes from TITAN_LIFECYCLE_TIMEOUT: a blocked task ends at it with 124', async () => {
  const app = startApp('--require', 'registered-app.cjs', { env: { TITAN_LIFECYCLE_TIMEOUT: '300' }, args: ['block'] })
  await app.ready
  const sentAt = kill(app.child, 'SIGTERM')
  const result = await app.exited
  assert.equal(result.code, 124, result.stderr)
  assert.match(result.stderr, /did not finish within its 300\.0 ms deadline/)
  assert.ok(result.exitedAt - sentAt < 300 + 300)
})

test('only the signals in TITAN_LIFECYCLE_SIGNALS are owned', async () => {
  const app = startApp('--require', 'registered-app.cjs', { env: { TITAN_LIFECYCLE_SIGNALS: 'SIGINT' } })
  await app.ready
  kill(app.child, 'SIGTERM')
  const result = await app.exited
  assert.equal(result.signal, 'SIGTERM', 'SIGTERM kept its default action')
})

test('a bad value stops the process at start-up, naming the variable', async () => {
  const app = startApp('--require', 'registered-app.cjs', { env: { TITAN_LIFECYCLE_TIMEOUT: 'soon' } })
  const result = await app.exited
  assert.notEqual(result.code, 0)
  assert.match(result.stderr, /ERR_OUT_OF_RANGE|out of range/)
  assert.match(result.stderr, /from TITAN_LIFECYCLE_TIMEOUT="soon"/)
  // A wrong value (ERR_INVALID_ARG_VALUE) quotes the option differently from a wrong type; it is named too.
  const signals = startApp('--require', 'registered-app.cjs', { env: { TITAN_LIFECYCLE_SIGNALS: 'SIGTERM,sigint' } })
  const refused = await signals.exited
  assert.notEqual(refused.code, 0)
  assert.match(refused.stderr, /ERR_INVALID_ARG_VALUE/)
  assert.match(refused.stderr, /from TITAN_LIFECYCLE_SIGNALS="SIGTERM,sigint"/)
})
