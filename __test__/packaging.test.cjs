'use strict'
// What a user installs works: the root package and this platform's binary package are packed, installed
// from their tarballs into a scratch project (no registry involved), required by name, and a real SIGTERM
// runs the shutdown through the installed copy.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync, spawn, spawnSync } = require('node:child_process')
const url = require('node:url')
const { needs, onLinux, scratchDirectory, copyPackage, loadedAddonFile } = require('./helpers.cjs')

const root = path.join(__dirname, '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

/** The build this process loads (a checkout may hold several): its file name and platform. */
function loadedBuild() {
  const addon = path.basename(loadedAddonFile())
  const platform = addon.slice('titan-lifecycle.'.length, -'.node'.length)
  assert.match(platform, /^(linux|darwin)-(x64|arm64)(-gnu|-musl)?$/)
  return { addon, platform }
}

/**
 * Writes `app.cjs` into `directory`: it requires the checkout, stops a manager with one task and prints
 * `{ exitCode }`. With `reportLoadError`, an error from `require` is printed as `{ code, message, cause }`
 * (its cause's code) instead of ending the app. Returns the file's path.
 */
function writeStoppingApp(directory, { reportLoadError = false } = {}) {
  const stop = `const { ShutdownManager } = require(${JSON.stringify(root)})
    const manager = new ShutdownManager({ signals: [], logger: { info() {}, warn() {}, error() {} } })
    manager.registerTask({ id: 'a', handler() {} })
    manager.stop().then((result) => console.log(JSON.stringify({ exitCode: result.exitCode })))`
  const app = path.join(directory, 'app.cjs')
  fs.writeFileSync(
    app,
    reportLoadError
      ? `try { ${stop} } catch (error) {
           console.log(JSON.stringify({ code: error.code, message: error.message, cause: error.cause?.code }))
         }`
      : stop,
  )
  return app
}

function pack(dir, into) {
  const out = execFileSync(npm, ['pack', '--silent', '--pack-destination', into], { cwd: dir, encoding: 'utf8' })
  return path.join(into, out.trim().split('\n').at(-1))
}

test('the packed package installs, loads its platform binary and shuts down on SIGTERM', needs('npm'), async (t) => {
  const scratch = scratchDirectory(t, 'pack')
  const { addon, platform } = loadedBuild()
  const platformDir = path.join(scratch, 'platform')
  fs.cpSync(path.join(root, 'npm', platform), platformDir, { recursive: true })
  fs.copyFileSync(path.join(root, addon), path.join(platformDir, addon))

  const tarballs = [pack(root, scratch), pack(platformDir, scratch)]
  const contents = execFileSync('tar', ['-tzf', tarballs[0]], { encoding: 'utf8' }).split('\n').filter(Boolean)
  assert.deepEqual(contents.sort(), [
    'package/LICENSE',
    'package/README.md',
    'package/binding.d.ts',
    'package/index.d.ts',
    'package/index.js',
    'package/lib/children.js',
    'package/lib/cluster.js',
    'package/lib/drain.js',
    'package/lib/handles.js',
    'package/lib/run.js',
    'package/lib/validate.js',
    'package/package.json',
    'package/register',
    'package/register.d.ts',
    'package/register.js',
  ])

  const app = path.join(scratch, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), '{"name":"app","private":true}')
  execFileSync(npm, ['install', '--offline', '--no-audit', '--no-fund', '--silent', ...tarballs], { cwd: app })
  fs.writeFileSync(
    path.join(app, 'server.mjs'),
    `import { ShutdownManager } from 'titan-lifecycle'
     const manager = new ShutdownManager({ gracefulShutdownTimeout: 2000 })
     manager.registerTask({ id: 'bye', handler: () => console.log('task ran') })
     setInterval(() => {}, 1000)
     console.log('ready')`,
  )
  const { code, signal, out, err } = await runUntilSigterm(app, ['server.mjs'])
  assert.equal(signal, null, err)
  assert.equal(code, 0, err)
  assert.match(out, /task ran/)
  const installed = fs.readdirSync(path.join(app, 'node_modules')).sort()
  assert.deepEqual(
    installed.filter((n) => n.startsWith('titan-lifecycle')),
    ['titan-lifecycle', `titan-lifecycle-${platform}`],
  )

  // The register subpath, with no "exports": the extensionless `register` file serves both flags.
  const registered = `processManager().registerTask({ id: 'work', handler: () => console.log('registered task ran') })
     setInterval(() => {}, 1000)
     console.log('ready')`
  fs.writeFileSync(path.join(app, 'registered.mjs'), `import { processManager } from 'titan-lifecycle'\n${registered}`)
  fs.writeFileSync(
    path.join(app, 'registered.cjs'),
    `const { processManager } = require('titan-lifecycle')\n${registered}`,
  )
  for (const [flag, file] of [
    ['--import', 'registered.mjs'],
    ['--require', 'registered.cjs'],
  ]) {
    const run = await runUntilSigterm(app, [flag, 'titan-lifecycle/register', file])
    assert.equal(run.code, 0, `${flag}: ${run.err}`)
    assert.match(run.out, /registered task ran/, `${flag}: the application's task ran in the registered manager`)
  }
})

/** Runs `node ...args` in `cwd` until it prints 'ready', then sends SIGTERM; its exit and output. */
async function runUntilSigterm(cwd, args) {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  let out = ''
  let err = ''
  child.stderr.on('data', (chunk) => (err += chunk))
  const closed = new Promise((resolve) => child.on('close', (...codes) => resolve(codes)))
  // Settled by the close too: a copy that cannot load its addon exits before it is ready.
  await Promise.race([
    new Promise((resolve) => child.stdout.on('data', (chunk) => (out += chunk).includes('ready') && resolve())),
    closed,
  ])
  assert.match(out, /ready/, `node ${args.join(' ')} did not start\n${err}`)
  process.kill(child.pid, 'SIGTERM')
  const [code, signal] = await closed
  clearTimeout(killer)
  return { code, signal, out, err }
}

test('the platform packages are in step with the root, which names each as an optional dependency', () => {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'sync-versions.js'), '--check'])
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  const platforms = fs.readdirSync(path.join(root, 'npm'))
  assert.deepEqual(Object.keys(pkg.optionalDependencies).sort(), platforms.map((p) => `titan-lifecycle-${p}`).sort())
  // index.js opens titan-lifecycle.<platform>.node in the package's directory without reading its manifest.
  for (const p of platforms) {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'npm', p, 'package.json'), 'utf8'))
    assert.equal(manifest.main, `titan-lifecycle.${p}.node`, p)
    assert.deepEqual(manifest.files, [`titan-lifecycle.${p}.node`], p)
  }
  // The root's os and cpu are what the platform packages cover together.
  const covered = (field) =>
    [
      ...new Set(
        platforms.flatMap((p) => JSON.parse(fs.readFileSync(path.join(root, 'npm', p, 'package.json'), 'utf8'))[field]),
      ),
    ].sort()
  assert.deepEqual([...pkg.os].sort(), covered('os'))
  assert.deepEqual([...pkg.cpu].sort(), covered('cpu'))
})

/**
 * Requires a copy of the package's JavaScript (no native build beside it) in a child; returns its error.
 * `files` fakes what the child's `fs` sees at some paths: `true`/`false` for whether one exists, a string
 * for its content (the file then exists).
 */
function loadError(platformOverride, files = {}, { report, addon } = {}) {
  const scratch = copyPackage(fs.mkdtempSync(path.join(os.tmpdir(), 'titan-lifecycle-load-')))
  try {
    if (addon) fs.writeFileSync(path.join(scratch, addon.name), addon.content)
    const override = platformOverride
      ? `Object.defineProperty(process, 'platform', { value: ${JSON.stringify(platformOverride)} });`
      : ''
    // Node's report as the loader sees it: one from a glibc or a musl Node, or none to be had.
    const fakeReport = {
      gnu: `process.report.getReport = () => ({ header: { glibcVersionRuntime: '2.36' } });`,
      musl: `process.report.getReport = () => ({ header: {} });`,
      throws: `process.report.getReport = () => { throw new Error('no report') };`,
    }
    const reportOverride = report ? fakeReport[report] : ''
    const fake = `const files = ${JSON.stringify(files)}, fs = require('node:fs'), { existsSync, readFileSync } = fs;
      fs.existsSync = (p) => (p in files ? files[p] !== false : existsSync(p));
      fs.readFileSync = (p, ...rest) => {
        if (!(p in files)) return readFileSync(p, ...rest);
        if (typeof files[p] === 'string') return files[p];
        throw Object.assign(new Error('ENOENT: ' + p), { code: 'ENOENT' });
      };`
    const code = `${override} ${reportOverride} ${fake} try { require(${JSON.stringify(scratch)}) } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, cause: e.cause?.code })) }`
    return JSON.parse(execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' }))
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}

test('the loader finds the platform package where Node would: its own node_modules, beside it, further up', (t) => {
  // index.js opens the first two places itself (cheaper than resolving the package by name) and leaves
  // the rest to `require`: each layout below must load the binary Node's resolution would pick.
  const scratch = scratchDirectory(t, 'layout')
  const { addon, platform } = loadedBuild()
  /** A platform package in `into`; without its package.json `require` cannot resolve it by name. */
  const platformPackage = (into, { resolvable }) => {
    const dir = path.join(into, `titan-lifecycle-${platform}`)
    fs.mkdirSync(dir, { recursive: true })
    if (resolvable) fs.copyFileSync(path.join(root, 'npm', platform, 'package.json'), path.join(dir, 'package.json'))
    fs.copyFileSync(path.join(root, addon), path.join(dir, addon))
    return path.join(dir, addon)
  }
  const titanPackage = (into) => copyPackage(path.join(into, 'titan-lifecycle'))
  /** The file the copy in `dir` loaded its addon from, or its error's code, in a child. */
  const loadedFrom = (dir) =>
    execFileSync(
      process.execPath,
      [
        '-e',
        `try { process.stdout.write(require(${JSON.stringify(dir)}).nativeFile) } catch (e) { process.stdout.write(e.code) }`,
      ],
      { encoding: 'utf8' },
    )

  // Beside it (npm's and pnpm's usual place); and its own node_modules, which Node looks in first. Neither
  // can be resolved by name here, so the loader found them itself.
  const flat = path.join(scratch, 'flat', 'node_modules')
  const flatCopy = titanPackage(flat)
  const beside = platformPackage(flat, { resolvable: false })
  assert.equal(loadedFrom(flatCopy), beside)
  const own = platformPackage(path.join(flatCopy, 'node_modules'), { resolvable: false })
  assert.equal(loadedFrom(flatCopy), own, 'its own node_modules comes before the one beside it')

  // Nested under another package, with the platform package hoisted further up: found by `require`.
  const hoisted = path.join(scratch, 'hoisted', 'node_modules')
  const up = platformPackage(hoisted, { resolvable: true })
  const nestedCopy = titanPackage(path.join(hoisted, 'a-dependency', 'node_modules'))
  assert.equal(loadedFrom(nestedCopy), up)

  // Not in a node_modules (a workspace, `npm link`): what sits beside it is not installed, and not loaded.
  const workspace = path.join(scratch, 'workspace', 'packages')
  const linkedCopy = titanPackage(workspace)
  platformPackage(workspace, { resolvable: false })
  assert.equal(loadedFrom(linkedCopy), 'ERR_NATIVE_UNAVAILABLE')
})

test('the addon is in require.cache and initialized once, however often index.js runs again', () => {
  // A test runner that clears the package from require.cache evaluates index.js again; as with
  // `require(file)`, the addon it opened itself comes from the cache then, not from a second dlopen.
  const code = `const first = require(${JSON.stringify(root)})
    const file = first.nativeFile
    const cachedFirst = require.cache[file]?.exports === first.native
    delete require.cache[require.resolve(${JSON.stringify(root)})]
    const again = require(${JSON.stringify(root)})
    console.log(JSON.stringify({ cachedFirst, sameAddon: again.native === first.native, byRequire: require(file) === first.native }))`
  const out = JSON.parse(execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' }))
  assert.deepEqual(out, { cachedFirst: true, sameAddon: true, byRequire: true })
})

test('the package loads under a module loader hook that supplies CommonJS source itself', (t) => {
  // Node then runs index.js with a `require` of the ES module loader's making, which has no require.cache
  // (as loaders such as tsx do): the addon must come through that `require`, and a manager must work.
  const scratch = scratchDirectory(t, 'hook')
  fs.writeFileSync(
    path.join(scratch, 'hook.mjs'),
    `import { readFileSync } from 'node:fs'
     export async function load(url, context, next) {
       const result = await next(url, context)
       if (result.format === 'commonjs' && result.source == null) return { ...result, source: readFileSync(new URL(url)) }
       return result
     }`,
  )
  fs.writeFileSync(
    path.join(scratch, 'register.mjs'),
    `import { register } from 'node:module'\nregister('./hook.mjs', import.meta.url)`,
  )
  fs.writeFileSync(
    path.join(scratch, 'app.mjs'),
    `import titan from ${JSON.stringify(path.join(root, 'index.js'))}
     const manager = new titan.ShutdownManager({ signals: [], logger: { info() {}, warn() {}, error() {} } })
     manager.registerTask({ id: 'a', handler() {} })
     const result = await manager.stop()
     console.log(JSON.stringify({ exitCode: result.exitCode }))`,
  )
  const out = execFileSync(process.execPath, ['--import', './register.mjs', 'app.mjs'], {
    cwd: scratch,
    encoding: 'utf8',
  })
  assert.equal(JSON.parse(out).exitCode, 0)
})

test("index.js loads when run by a module system that is not Node's, as Jest runs modules", () => {
  // Jest wraps each file itself and hands it a plain `module` object and a `require` of its own making;
  // index.js must then leave the addon to that `require` rather than build a Node Module around it.
  const code = `const vm = require('node:vm'), fs = require('node:fs')
    const file = ${JSON.stringify(path.join(root, 'index.js'))}
    const run = vm.compileFunction(fs.readFileSync(file, 'utf8'), ['exports', 'require', 'module', '__filename', '__dirname'])
    const plainModule = { exports: {}, children: [], loaded: false }
    const ownRequire = (id) => require(id.startsWith('.') ? require('node:path').join(${JSON.stringify(root)}, id) : id)
    ownRequire.cache = Object.create(null)
    ownRequire.resolve = require.resolve
    run(plainModule.exports, ownRequire, plainModule, file, ${JSON.stringify(root)})
    console.log(typeof plainModule.exports.native.NativeShutdown)`
  assert.equal(execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' }).trim(), 'function')
})

test(
  "under Node 20's --experimental-policy, the addon's integrity is checked before it is opened",
  process.allowedNodeEnvironmentFlags.has('--experimental-policy') ? {} : { skip: 'this Node has no policies' },
  (t) => {
    // The loader's own process.dlopen would skip the check that `require` makes under a policy.
    const scratch = scratchDirectory(t, 'policy')
    const addon = loadedAddonFile()
    const app = writeStoppingApp(scratch)
    const digest = `sha384-${require('node:crypto').createHash('sha384').update(fs.readFileSync(addon)).digest('base64')}`
    const runUnder = (integrity) => {
      const manifest = path.join(scratch, `policy-${integrity.length}.json`)
      fs.writeFileSync(
        manifest,
        JSON.stringify({
          scopes: { 'file:': { integrity: true, dependencies: true } },
          resources: { [url.pathToFileURL(addon).href]: { integrity, dependencies: true } },
        }),
      )
      const child = spawnSync(process.execPath, [`--experimental-policy=${manifest}`, app], {
        encoding: 'utf8',
        timeout: 30_000,
      })
      return { status: child.status, stdout: child.stdout, stderr: child.stderr }
    }
    const trusted = runUnder(digest)
    assert.equal(trusted.status, 0, trusted.stderr)
    assert.equal(JSON.parse(trusted.stdout).exitCode, 0)
    const tampered = runUnder('sha384-bm90IHRoZSBhZGRvbg==')
    assert.notEqual(tampered.status, 0, 'an addon that does not match the policy was opened')
    assert.match(tampered.stderr, /ERR_MANIFEST_ASSERT_INTEGRITY/)
    assert.ok(tampered.stderr.includes(url.pathToFileURL(addon).href), tampered.stderr)
  },
)

test('the package is CommonJS wherever it is, also under --experimental-default-type=module', (t) => {
  // Node 20's flag makes a .js file ESM when its package says no "type" and it is outside node_modules:
  // the checkout, and a package reached by `npm link` or a workspace, whose real path is outside too.
  const scratch = scratchDirectory(t, 'default-type')
  const run = (...argv) =>
    execFileSync(process.execPath, ['--experimental-default-type=module', ...argv], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    })
  // Whether this Node's flag (if it has one) does that to a package that says no "type".
  const typeless = path.join(scratch, 'typeless')
  fs.mkdirSync(typeless)
  fs.writeFileSync(path.join(typeless, 'package.json'), '{ "name": "typeless" }\n')
  fs.writeFileSync(path.join(typeless, 'index.js'), 'module.exports = 1\n')
  fs.writeFileSync(path.join(scratch, 'typeless.cjs'), `require(${JSON.stringify(typeless)})`)
  let flagApplies = false
  try {
    if (process.allowedNodeEnvironmentFlags.has('--experimental-default-type')) run(path.join(scratch, 'typeless.cjs'))
  } catch {
    flagApplies = true
  }
  if (!flagApplies) {
    t.skip('this Node loads a package that says no "type" as CommonJS under the flag, or has no such flag')
    return
  }
  const app = writeStoppingApp(scratch)
  assert.deepEqual(JSON.parse(run(app)), { exitCode: 0 })
  fs.writeFileSync(
    path.join(scratch, 'registered.cjs'),
    `console.log(typeof require(${JSON.stringify(root)}).processManager())`,
  )
  assert.equal(run('--require', path.join(root, 'register'), path.join(scratch, 'registered.cjs')).trim(), 'object')
})

/** This Node's permission-model flag, where it has one with --allow-addons (Node 20's is still experimental). */
const PERMISSION = process.allowedNodeEnvironmentFlags.has('--allow-addons')
  ? ['--permission', '--experimental-permission'].find((flag) => process.allowedNodeEnvironmentFlags.has(flag))
  : undefined
const WITH_PERMISSION_MODEL = PERMISSION ? {} : { skip: 'this Node has no permission model with --allow-addons' }

/** Runs the app writeStoppingApp wrote under Node `flags`; what it printed, parsed. */
function runStoppingApp(app, flags) {
  return JSON.parse(
    execFileSync(process.execPath, [...flags, app], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 30_000,
    }),
  )
}

test(
  'with addons disabled (--no-addons, the permission model), the refusal is ERR_NATIVE_UNAVAILABLE',
  WITH_PERMISSION_MODEL,
  (t) => {
    const app = writeStoppingApp(scratchDirectory(t, 'permission'), { reportLoadError: true })
    assert.deepEqual(runStoppingApp(app, [PERMISSION, '--allow-fs-read=*', '--allow-addons']), { exitCode: 0 })
    for (const flags of [[PERMISSION, '--allow-fs-read=*'], ['--no-addons']]) {
      const refused = runStoppingApp(app, flags)
      assert.equal(refused.code, 'ERR_NATIVE_UNAVAILABLE', flags.join(' '))
      assert.equal(refused.cause, 'ERR_DLOPEN_DISABLED')
      assert.match(
        refused.message,
        /disables native addons \(--no-addons, or the permission model without --allow-addons\)/,
      )
    }
  },
)

test(
  'under the permission model, reading only where the service and the package live is enough to load it',
  WITH_PERMISSION_MODEL,
  (t) => {
    // The loader looks at the system's dynamic loaders to tell glibc from musl; with reads allowed only where
    // the service lives, looking throws ERR_ACCESS_DENIED, and Node's own report must answer instead.
    const scratch = scratchDirectory(t, 'permission-scoped')
    const app = writeStoppingApp(scratch, { reportLoadError: true })
    const flags = [PERMISSION, '--allow-addons', `--allow-fs-read=${root}`, `--allow-fs-read=${scratch}`]
    assert.deepEqual(runStoppingApp(app, flags), { exitCode: 0 })
  },
)

test("a missing platform package is named in the loader's error, with the command that installs it", () => {
  const error = loadError()
  assert.equal(error.code, 'ERR_NATIVE_UNAVAILABLE')
  const { platform } = loadedBuild()
  assert.match(error.message, new RegExp(`npm install titan-lifecycle-${platform}@\\d+\\.\\d+\\.\\d+`))
})

test(
  'a binary that is there but cannot be opened is said in our terms, with what to reinstall',
  onLinux('libc'),
  () => {
    const { addon, platform } = loadedBuild()
    const error = loadError(undefined, {}, { addon: { name: addon, content: 'not an ELF file' } })
    assert.equal(error.code, 'ERR_NATIVE_UNAVAILABLE')
    assert.equal(error.cause, 'ERR_DLOPEN_FAILED')
    assert.match(
      error.message,
      new RegExp(`addon for ${platform} cannot be opened: reinstall titan-lifecycle-${platform} `),
    )
    assert.match(
      error.message,
      new RegExp(`${addon.replaceAll('.', '\\.')}`),
      "the dynamic loader's words name the file",
    )
  },
)

test(
  'the C library is told by its dynamic loader, then by ldd, then by Node where neither can tell',
  onLinux('libc'),
  () => {
    const arch = process.arch === 'x64' ? 'x86_64' : 'aarch64'
    const musl = `/lib/ld-musl-${arch}.so.1`
    const glibc = process.arch === 'x64' ? '/lib64/ld-linux-x86-64.so.2' : '/lib/ld-linux-aarch64.so.1'
    const ldd = '/usr/bin/ldd'
    const cases = [
      ['glibc alone', { [musl]: false, [glibc]: true, [ldd]: 'musl' }, 'gnu'],
      ['musl alone (Alpine)', { [musl]: true, [glibc]: false, [ldd]: 'glibc' }, 'musl'],
      ['both, ldd of glibc (musl installed beside it)', { [musl]: true, [glibc]: true, [ldd]: 'GNU libc' }, 'gnu'],
      ['both, ldd of musl (gcompat)', { [musl]: true, [glibc]: true, [ldd]: 'musl libc' }, 'musl'],
      // With neither the loaders nor ldd to go by, Node's report decides (faked here, both ways), and
      // without a report glibc is assumed.
      ['both, no ldd, a glibc Node', { [musl]: true, [glibc]: true, [ldd]: false }, 'gnu', 'gnu'],
      ['neither, no ldd (NixOS), a musl Node', { [musl]: false, [glibc]: false, [ldd]: false }, 'musl', 'musl'],
      ['neither, no ldd, a glibc Node', { [musl]: false, [glibc]: false, [ldd]: false }, 'gnu', 'gnu'],
      ['both, no ldd, a musl Node', { [musl]: true, [glibc]: true, [ldd]: false }, 'musl', 'musl'],
      ['neither, no ldd, no report', { [musl]: false, [glibc]: false, [ldd]: false }, 'gnu', 'throws'],
    ]
    // Where the loaders decide, ldd says the opposite: reading it would pick the other build. Where ldd
    // decides, the report (faked as the other C library's) would pick the other.
    for (const [what, files, expected, report = expected === 'gnu' ? 'musl' : 'gnu'] of cases) {
      const error = loadError(undefined, files, { report })
      assert.equal(error.code, 'ERR_NATIVE_UNAVAILABLE', what)
      assert.match(error.message, new RegExp(`addon for linux-${process.arch}-${expected} is missing`), what)
    }
  },
)

test('an unsupported platform is said to be unsupported, not missing a package', () => {
  const error = loadError('win32')
  assert.equal(error.code, 'ERR_NATIVE_UNAVAILABLE')
  assert.match(error.message, new RegExp(`does not support win32-${process.arch}`))
  assert.doesNotMatch(error.message, /npm install/)
})

test('the shipped JavaScript is one-byte text, so V8 keeps each source in half the memory', () => {
  // One character above U+00FF anywhere in a file (an ellipsis in a comment) makes V8 hold the whole source
  // as two-byte text and scan it as such: lib/run.js cost the first manager 30 KB more heap that way.
  // Write such characters in strings as escapes ('\u2026').
  const files = [
    'index.js',
    'register.js',
    'register',
    ...fs.readdirSync(path.join(root, 'lib')).map((f) => `lib/${f}`),
  ]
  for (const file of files) {
    const text = fs.readFileSync(path.join(root, file), 'utf8')
    const wide = [...text].findIndex((ch) => ch.codePointAt(0) > 0xff)
    assert.equal(
      wide,
      -1,
      `${file} has a character above U+00FF at ${wide}: ${JSON.stringify(text.slice(wide - 20, wide + 20))}`,
    )
  }
})
