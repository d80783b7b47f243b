'use strict'
// Zero-code adoption: `node --require titan-lifecycle/register app.js` (or `--import` for ES modules)
// makes the process's manager from environment variables, and the application adds its tasks to it.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const fs = require('node:fs')
const { execFileSync } = require('node:child_process')
const { launch, kill, find, scratchDirectory, copyPackage, FIXTURES } = require('./helpers.cjs')

function startApp(flag, file, { env = {}, args = [] } = {}) {
  // From __test__, whose node_modules/titan-lifecycle links to this checkout, so `titan-lifecycle/register`
  // resolves by name as it does in an installed package (the extensionless `register` file, for both flags).
  return launch([process.execPath, flag, 'titan-lifecycle/register', path.join(FIXTURES, file), ...args], {
    cwd: __dirname,
    env,
  })
}

/** Starts the application as startApp does and sends it SIGTERM once ready; its result, which must be exit 0. */
async function shutDownBySigterm(flag, file, options) {
  const app = startApp(flag, file, options)
  assert.ok(await app.ready, app.output().stderr)
  kill(app.child, 'SIGTERM')
  const result = await app.exited
  assert.equal(result.code, 0, result.stderr)
  return result
}

/** A copy of the package loaded by path (another copy than the checkout register resolves by name). */
function packageCopy(t, also = []) {
  const root = path.join(__dirname, '..')
  return copyPackage(scratchDirectory(t, 'copy'), [...also, ...fs.readdirSync(root).filter((f) => f.endsWith('.node'))])
}

for (const [flag, file] of [
  ['--require', 'registered-app.cjs'],
  ['--import', 'registered-app.mjs'],
]) {
  test(`node ${flag} titan-lifecycle/register: SIGTERM runs the application's task, exit 0`, async () => {
    const result = await shutDownBySigterm(flag, file, { env: { TITAN_LIFECYCLE_SIGNALS: 'SIGTERM' } })
    assert.equal(find(result.lines, 'event', { event: 'shutdown:start' })?.reason, 'SIGTERM')
    assert.ok(find(result.lines, 'task-end', { id: 'work' }))
  })
}

test("register loaded from one copy of the package, the application's own copy finds its manager", async (t) => {
  // A platform's NODE_OPTIONS names one copy, the application depends on another.
  const result = await shutDownBySigterm('--require', 'registered-app.cjs', {
    env: { TITAN_LIFECYCLE_SIGNALS: 'SIGTERM' },
    args: ['run', packageCopy(t)],
  })
  assert.ok(find(result.lines, 'task-end', { id: 'work' }), "the application's task ran")
})

test("register run by two copies of the package (a platform's and the service's own) makes one manager", async (t) => {
  const copy = packageCopy(t, ['register', 'register.js'])
  const result = await shutDownBySigterm('--require', 'registered-app.cjs', { args: ['own-register', copy] })
  assert.ok(find(result.lines, 'task-end', { id: 'work' }), "the application's task ran")
})

test('a worker thread started with argv under register starts and runs: only the main thread gets the manager', async () => {
  const result = await shutDownBySigterm('--require', 'registered-app.cjs', { args: ['worker'] })
  assert.equal(find(result.lines, 'worker-error'), undefined, JSON.stringify(result.lines))
  assert.deepEqual(find(result.lines, 'worker')?.message, ['--config', 'app.json'])
  assert.equal(find(result.lines, 'worker-exit')?.code, 0)
  assert.ok(find(result.lines, 'task-end', { id: 'work' }), "the main thread's manager ran the task")
})

test("disposing register's manager leaves processManager() empty, and the application's own takes the signals", async () => {
  const result = await shutDownBySigterm('--require', 'registered-app.cjs', { args: ['dispose'] })
  // Refused before, with the way to add tasks said.
  const refused = find(result.lines, 'refused')
  assert.equal(refused?.code, 'ERR_SIGNALS_OWNED')
  assert.match(refused.message, /the manager titan-lifecycle\/register made: add tasks to processManager\(\)/)
  assert.equal(find(result.lines, 'after-dispose')?.processManager, 'none')
  assert.ok(find(result.lines, 'task-end', { id: 'work' }), "the application's manager ran its task")
})

test('the deadline comes from TITAN_LIFECYCLE_TIMEOUT: a blocked task ends at it with 124', async () => {
  const app = startApp('--require', 'registered-app.cjs', { env: { TITAN_LIFECYCLE_TIMEOUT: '300' }, args: ['block'] })
  await app.ready
  const sentAt = kill(app.child, 'SIGTERM')
  const result = await app.exited
  assert.equal(result.code, 124, result.stderr)
  assert.match(result.stderr, /did not finish within its 300\.0 ms deadline/)
  assert.ok(result.exitedAt - sentAt < 300 + 300)
})

// NODE_OPTIONS puts register in every Node process; most never ask for the manager (processManager()), and
// those end as they would without register: a signal that Node would end them with still does (not exit 0,
// which a shell's `&&` or a job runner reads as success), their own listeners and IPC handler decide, and
// uncaught errors are Node's to print.
test("a process that never asks for register's manager dies by a signal, as without register", async () => {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    const app = startApp('--require', 'unclaimed-app.cjs', { args: ['none'] })
    assert.ok(await app.ready, app.output().stderr)
    kill(app.child, signal)
    const result = await app.exited
    assert.equal(result.signal, signal, `${signal}: ${result.code} ${result.stderr}`)
    assert.equal(result.stderr, '')
  }
})

test("a process that never asks for register's manager keeps its own signal listeners in charge", async () => {
  const app = startApp('--require', 'unclaimed-app.cjs', { args: ['listener'] })
  assert.ok(await app.ready, app.output().stderr)
  kill(app.child, 'SIGTERM')
  const result = await app.exited
  assert.equal(result.code, 7, result.stderr)
  assert.ok(find(result.lines, 'listener-done'), 'its own shutdown finished before the exit')
  // A listener that relays the signal to die by it (signal-exit, under execa and others) dies by it.
  const relaying = startApp('--require', 'unclaimed-app.cjs', { args: ['relay'] })
  assert.ok(await relaying.ready, relaying.output().stderr)
  kill(relaying.child, 'SIGTERM')
  const relayed = await relaying.exited
  assert.equal(relayed.signal, 'SIGTERM', `${relayed.code} ${relayed.stderr}`)
  assert.ok(find(relayed.lines, 'relay'))
  // A listener that does not end the process (a reload) leaves it running, past register's deadline too.
  const reloading = startApp('--require', 'unclaimed-app.cjs', {
    args: ['reload'],
    env: { TITAN_LIFECYCLE_TIMEOUT: '200' },
  })
  assert.ok(await reloading.ready, reloading.output().stderr)
  kill(reloading.child, 'SIGHUP')
  await new Promise((resolve) => setTimeout(resolve, 600))
  assert.ok(find(reloading.lines, 'reload'), 'its listener heard the signal')
  assert.equal(reloading.child.exitCode, null, `still running 600 ms later: ${reloading.output().stderr}`)
  kill(reloading.child, 'SIGTERM')
  const ended = await reloading.exited
  assert.equal(ended.signal, 'SIGTERM', ended.stderr)
})

test("a process that never asks for register's manager answers the supervisor's IPC message itself", async () => {
  const { fork } = require('node:child_process')
  const child = fork(path.join(FIXTURES, 'unclaimed-app.cjs'), ['message'], {
    cwd: __dirname,
    execArgv: ['--require', 'titan-lifecycle/register'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    stdout += chunk
    if (stdout.includes('"ready"') && child.connected) child.send('shutdown')
  })
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const [code] = await new Promise((resolve) => child.on('exit', (...args) => resolve(args)))
  clearTimeout(killer)
  assert.equal(code, 5, stderr)
  assert.match(stdout, /"kind":"message","at":[\d.]+,"message":"shutdown"/)
})

test("a process that never asks for register's manager leaves an uncaught error to Node", async () => {
  const app = startApp('--require', 'unclaimed-app.cjs', { args: ['throw'] })
  const result = await app.exited
  assert.equal(result.code, 1)
  // Node's own report of it, with the error's own properties, and nothing of the library's.
  assert.match(result.stderr, /Error: the database refused/)
  assert.match(result.stderr, /code: 'E_REFUSED'/)
  assert.doesNotMatch(result.stderr, /titan-lifecycle/)
})

test("a process that never asks for register's manager dies at once by a signal while its loop is blocked", async () => {
  // Nothing of the manager is in the way (no handler of its own holds the signal until the loop turns),
  // so a listener the process adds after the signal came hears nothing, as without register.
  const app = startApp('--require', 'unclaimed-app.cjs', { args: ['blocked'], env: { TITAN_LIFECYCLE_TIMEOUT: '500' } })
  assert.ok(await app.ready, app.output().stderr)
  const sentAt = kill(app.child, 'SIGTERM')
  const result = await app.exited
  assert.equal(result.signal, 'SIGTERM', `${result.code} ${result.stderr}`)
  assert.ok(result.exitedAt - sentAt < 1000, `${result.exitedAt - sentAt} ms`)
  assert.equal(find(result.lines, 'unblocked'), undefined)
})

test("a signal the process survived before it asked for register's manager leaves the manager to claim", async () => {
  const app = startApp('--require', 'unclaimed-app.cjs', { args: ['late-claim'] })
  assert.ok(await app.ready, app.output().stderr)
  kill(app.child, 'SIGHUP')
  while (!find(app.lines, 'claimed')) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.ok(find(app.lines, 'reload'), 'its own listener heard SIGHUP')
  assert.equal(find(app.lines, 'claimed').manager, true, 'processManager() still had the manager')
  kill(app.child, 'SIGTERM')
  const result = await app.exited
  assert.equal(result.code, 0, result.stderr)
  assert.ok(find(result.lines, 'task-end', { id: 'work' }), "the claimed manager ran the application's task")
})

test("a library's processManager({ claim: false }) leaves the process as it was; its task runs once claimed", async () => {
  const app = startApp('--require', 'unclaimed-app.cjs', { args: ['library'] })
  assert.ok(await app.ready, app.output().stderr)
  kill(app.child, 'SIGINT')
  const result = await app.exited
  assert.equal(result.signal, 'SIGINT', `${result.code} ${result.stderr}`)
  assert.equal(find(result.lines, 'task-start'), undefined, 'nothing ran the task')
  const claiming = startApp('--require', 'unclaimed-app.cjs', { args: ['library-then-claim'] })
  assert.ok(await claiming.ready, claiming.output().stderr)
  while (!find(claiming.lines, 'claimed')) await new Promise((resolve) => setTimeout(resolve, 20))
  kill(claiming.child, 'SIGTERM')
  const claimed = await claiming.exited
  assert.equal(claimed.code, 0, claimed.stderr)
  assert.ok(find(claimed.lines, 'task-end', { id: 'library' }), "the library's task ran")
  // Its option is checked in Node's style.
  const { processManager } = require('..')
  assert.throws(() => processManager(5), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => processManager({ claim: 'yes' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => processManager([]), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  // A misspelt option claims as no option would: it is named, as every unknown option is.
  const warned = new Promise((resolve) => process.once('warning', resolve))
  processManager({ clam: false })
  const warning = await warned
  assert.equal(warning.code, 'TITAN_LIFECYCLE_UNKNOWN_OPTION')
  assert.match(warning.message, /unknown option "options\.clam"; did you mean "claim"\?/)
})

test("a claim that cannot take the process's signals throws each time, not a manager that owns nothing", async () => {
  const app = startApp('--require', 'unclaimed-app.cjs', { args: ['claim-without-fds'] })
  const result = await app.exited
  const claims = find(result.lines, 'claims')
  assert.ok(claims, result.stderr)
  assert.match(claims.first, /^threw ERR_/)
  assert.equal(claims.second, claims.first)
  assert.equal(claims.third, 'a manager', 'a shortage that passed does not stay')
})

test('only the signals in TITAN_LIFECYCLE_SIGNALS are owned', async () => {
  const app = startApp('--require', 'registered-app.cjs', { env: { TITAN_LIFECYCLE_SIGNALS: 'SIGINT' } })
  await app.ready
  kill(app.child, 'SIGTERM')
  const result = await app.exited
  assert.equal(result.signal, 'SIGTERM', 'SIGTERM kept its default action')
  // And the one named is owned: SIGINT runs the shutdown.
  const owner = startApp('--require', 'registered-app.cjs', { env: { TITAN_LIFECYCLE_SIGNALS: 'SIGINT' } })
  await owner.ready
  kill(owner.child, 'SIGINT')
  const stopped = await owner.exited
  assert.equal(stopped.code, 0, stopped.stderr)
  assert.equal(find(stopped.lines, 'event', { event: 'shutdown:start' })?.reason, 'SIGINT')
})

test('a bad value stops the process at start-up, naming the variable', async () => {
  const app = startApp('--require', 'registered-app.cjs', { env: { TITAN_LIFECYCLE_TIMEOUT: '-5' } })
  const result = await app.exited
  assert.notEqual(result.code, 0)
  assert.match(result.stderr, /ERR_OUT_OF_RANGE|out of range/)
  assert.match(result.stderr, /from TITAN_LIFECYCLE_TIMEOUT="-5"/)
  // A wrong value (ERR_INVALID_ARG_VALUE) quotes the option differently from a wrong type; it is named too.
  const signals = startApp('--require', 'registered-app.cjs', { env: { TITAN_LIFECYCLE_SIGNALS: 'SIGTERM,sigint' } })
  const refused = await signals.exited
  assert.notEqual(refused.code, 0)
  assert.match(refused.stderr, /ERR_INVALID_ARG_VALUE/)
  assert.match(refused.stderr, /from TITAN_LIFECYCLE_SIGNALS="SIGTERM,sigint"/)
  // Set to no signal, or to a word the variable does not know: refused too, rather than a manager that
  // owns no signal (SIGTERM would end the process with no shutdown) or a log silently off.
  // A time that is not a decimal number: Number() alone made a blank value 0 (no destroy reserve) and
  // 0x10 a 16 ms deadline.
  for (const [variable, value] of [
    ['TITAN_LIFECYCLE_SIGNALS', ','],
    ['TITAN_LIFECYCLE_LOG', 'yes'],
    ['TITAN_LIFECYCLE_TIMEOUT', 'soon'],
    ['TITAN_LIFECYCLE_TIMEOUT', '0x10'],
    ['TITAN_LIFECYCLE_DESTROY_RESERVE', ' '],
    ['TITAN_LIFECYCLE_SHUTDOWN_DELAY', '1e3ms'],
  ]) {
    const app = startApp('--require', 'registered-app.cjs', { env: { [variable]: value } })
    const result = await app.exited
    assert.notEqual(result.code, 0, `${variable}=${value}`)
    assert.match(result.stderr, new RegExp(`The environment variable ${variable} .*Received "${value}"`))
    assert.match(result.stderr, /ERR_INVALID_ARG_VALUE/)
  }
})

test('a value with a line ending left by a .env file is read without it', async () => {
  const result = await shutDownBySigterm('--require', 'registered-app.cjs', {
    env: { TITAN_LIFECYCLE_LOG: '1\r', TITAN_LIFECYCLE_TIMEOUT: '20000\r' },
  })
  assert.ok(find(result.lines, 'task-end', { id: 'work' }))
})

// NODE_OPTIONS carries the flag to every Node process: a package manager's own (see npm-start.test.cjs for
// why it must get no manager) and one without a script get none; a service, whatever its name, gets one.
// Where none is made, register loads nothing more: npm lives as long as the service it started, and would
// carry the package and its native addon for nothing.
test('register makes no manager in a package manager, the REPL, node -e or node -; a service gets one', (t) => {
  const dir = scratchDirectory(t, 'register-names')
  // Whether register loaded the package (its index.js or any native addon), asked before this script loads it.
  const loaded = `Object.keys(require.cache).some((f) => f === ${JSON.stringify(require.resolve('..'))} || f.endsWith('.node'))`
  const manager = `require(${JSON.stringify(path.join(__dirname, '..'))}).processManager()`
  const report = `console.log((${loaded} ? 'loaded, ' : 'not loaded, ') + (${manager} ? 'made' : 'none'))`
  const run = (args, input) =>
    execFileSync(process.execPath, ['--require', 'titan-lifecycle/register', ...args], {
      cwd: __dirname,
      input,
      encoding: 'utf8',
      env: { ...process.env, TITAN_LIFECYCLE_SIGNALS: 'SIGTERM' },
    }).trim()
  const managerFor = (name) => {
    fs.writeFileSync(path.join(dir, name), report)
    return run([path.join(dir, name)])
  }
  const packageManagers = [
    'npm',
    'npm-cli.js',
    'npx-cli.js',
    'yarnpkg',
    'yarn.js',
    'yarn-4.5.1.cjs',
    'pnpm.cjs',
    'corepack',
  ]
  const services = ['server.js', 'npm-app.js', 'yarn-worker.cjs', 'index.js']
  assert.deepEqual(
    Object.fromEntries([...packageManagers, ...services].map((name) => [name, managerFor(name)])),
    Object.fromEntries([
      ...packageManagers.map((n) => [n, 'not loaded, none']),
      ...services.map((n) => [n, 'loaded, made']),
    ]),
  )
  assert.equal(run(['-e', report]), 'not loaded, none', 'node -e')
  assert.match(run(['-i'], `${report}\n.exit\n`), /\bnot loaded, none\b/, 'the REPL')
  assert.equal(run(['-'], report), 'not loaded, none', 'a script read from stdin (node -)')
})
