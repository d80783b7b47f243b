'use strict'
// Installs titan-lifecycle as a user would, from a registry: a local npm registry (verdaccio, a dev
// dependency of this folder) on the loopback, the platform packages that have a build (npm/<platform>/) and
// the root package published to it, then, in a fresh project with no Rust on PATH, a plain
// `npm install titan-lifecycle`. The installed package is used from a CommonJS script, an ES module with
// named imports and `--require titan-lifecycle/register`, each shut down by a real SIGTERM; and from a
// TypeScript file checked with `tsc --strict --noEmit` on TypeScript 5 and the current major (7), with no
// types loaded implicitly (`"types": []`), so the typings must reference what they need, with
// `@types/node` 20 and again with the latest. Type tests also check that misuse is rejected. pnpm and Yarn (dev dependencies too) install it into projects of their own,
// pnpm with its symlinked store and Yarn with Plug'n'Play, and a CommonJS script there checks where the
// addon was opened from. The npm-installed app is also bundled with esbuild and with webpack (dev dependencies
// too), titan-lifecycle inside the bundle, and run beside its node_modules and alone; and run under Bun and
// Deno (from npm, dev dependencies too), which must refuse a manager cleanly. Platforms without a build are
// published as their manifest alone, as Yarn resolves every optional dependency.
//
//   node registry/run.cjs            (npm run test:registry)
//
// Other packages (typescript, @types/node) come through the registry from npmjs. verdaccio's dependencies
// ask for node-fetch by the dist-tag `cjs`, which the npm mirror reachable here lacks; package.json pins it.

const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { execFileSync, spawn, spawnSync } = require('node:child_process')
const { launch, kill, find } = require('../__test__/helpers.cjs')
const { npmInstall, retried } = require('../scripts/fetch.cjs')

const ROOT = path.join(__dirname, '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-lifecycle-registry-'))
const results = []

function check(name, fn) {
  return Promise.resolve()
    .then(fn)
    .then(
      (observed) => results.push({ name, ok: true, observed }),
      (error) =>
        results.push({
          name,
          ok: false,
          observed: String(error?.message ?? error)
            .split('\n')
            .slice(0, 6)
            .join(' | '),
        }),
    )
    .then(() => {
      const r = results.at(-1)
      console.error(`${r.ok ? 'pass' : 'FAIL'}  ${name}: ${r.observed}`)
    })
}

/** verdaccio, pnpm, Yarn, esbuild, webpack, Bun and Deno: this folder's dev dependencies. */
function ensureTools() {
  const tools = Object.keys(require('./package.json').devDependencies)
  if (tools.every((tool) => fs.existsSync(path.join(__dirname, 'node_modules', tool)))) return
  console.error(`registry: installing ${tools.join(', ')} (registry/package.json)`)
  npmInstall(tools.join(', '), [], { cwd: __dirname })
}

function freePort() {
  return new Promise((resolve) => {
    const probe = http.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

function request(port, method, pathname, body) {
  return new Promise((resolve, reject) => {
    const data = body ? JSON.stringify(body) : undefined
    const req = http.request(
      { host: '127.0.0.1', port, method, path: pathname, headers: data ? { 'content-type': 'application/json' } : {} },
      (res) => {
        let text = ''
        res
          .setEncoding('utf8')
          .on('data', (c) => (text += c))
          .on('end', () => resolve({ status: res.statusCode, text }))
      },
    )
    req.on('error', reject)
    // A registry that takes the connection and never answers would otherwise hold the run until CI's limit.
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${pathname}: no answer in 10 s`)))
    req.end(data)
  })
}

async function startRegistry() {
  const port = await freePort()
  const config = path.join(scratch, 'config.yaml')
  fs.writeFileSync(
    config,
    [
      `storage: ${path.join(scratch, 'storage')}`,
      'auth:',
      '  htpasswd:',
      `    file: ${path.join(scratch, 'htpasswd')}`,
      '    max_users: 10',
      'uplinks:',
      '  npmjs:',
      '    url: https://registry.npmjs.org/',
      '    timeout: 60s',
      // verdaccio's defaults mark the uplink down for 5 minutes after two failed requests, which made npm's
      // own retries fail at once after a single hiccup of the network.
      '    max_fails: 10',
      '    fail_timeout: 10s',
      'packages:',
      "  'titan-lifecycle':",
      '    access: $all',
      '    publish: $authenticated',
      "  'titan-lifecycle-*':",
      '    access: $all',
      '    publish: $authenticated',
      "  '**':",
      '    access: $all',
      '    proxy: npmjs',
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  )
  const child = spawn(
    process.execPath,
    [
      path.join(__dirname, 'node_modules', 'verdaccio', 'bin', 'verdaccio'),
      '--config',
      config,
      '--listen',
      `127.0.0.1:${port}`,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  child.stdout.on('data', (c) => (output += c))
  child.stderr.on('data', (c) => (output += c))
  // A registry that failed to start is not left running (its pipes would keep this process alive).
  try {
    const giveUp = Date.now() + 60_000
    for (;;) {
      try {
        if ((await request(port, 'GET', '/-/ping')).status === 200) break
      } catch {}
      if (Date.now() > giveUp || child.exitCode !== null) throw new Error(`verdaccio did not start:\n${output}`)
      await new Promise((r) => setTimeout(r, 200))
    }
    // A user, whose token publishes.
    const user = await request(port, 'PUT', '/-/user/org.couchdb.user:ci', { name: 'ci', password: 'ci-password' })
    const token = JSON.parse(user.text).token
    if (!token) throw new Error(`no token from verdaccio: ${user.text}`)
    const npmrc = path.join(scratch, 'npmrc')
    fs.writeFileSync(npmrc, `registry=http://127.0.0.1:${port}/\n//127.0.0.1:${port}/:_authToken=${token}\n`)
    return { child, port, npmrc }
  } catch (error) {
    child.kill('SIGKILL')
    throw error
  }
}

/** Runs npm against the local registry; what it printed is shown only if it fails. */
function npmRun(args, { cwd, npmrc, env = {} }) {
  try {
    return execFileSync(npm, [...args, '--userconfig', npmrc, '--no-audit', '--no-fund'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_userconfig: npmrc, ...env },
      timeout: 300_000,
    })
  } catch (error) {
    throw new Error(`npm ${args.join(' ')} failed: ${error.stdout ?? ''}${error.stderr ?? ''}`)
  }
}

const REQUIRE = "const { ShutdownManager, ShutdownPriority } = require('titan-lifecycle')"

/**
 * What installAndRun expects of each package manager: the layout it installs (`layout`), where the addon
 * is opened from in it (`addon`), and whether the loader gets there by resolving the platform package by
 * name (its fallback) rather than by its own search (`byName`).
 */
const PACKAGE_MANAGERS = {
  pnpm: {
    layout: "pnpm store's symlinked layout",
    addon: /\/node_modules\/\.pnpm\/titan-lifecycle-[^/]+\/node_modules\/titan-lifecycle-[^/]+\/[^/]+\.node$/,
    byName: false,
  },
  yarn: {
    layout: "unplugged folder of Plug'n'Play",
    addon: /\/\.yarn\/unplugged\/titan-lifecycle-[^/]+\/node_modules\/titan-lifecycle-[^/]+\/[^/]+\.node$/,
    byName: true,
  },
}

/**
 * The bundlers `bundle` knows. 'esbuild-esm' makes an ES module, with `require` from `createRequire` in a
 * banner (esbuild's users' way to keep CommonJS working inside one), and no `__dirname`.
 */
const BUNDLERS = ['esbuild', 'esbuild-esm', 'webpack']

/**
 * Bundles `entry` (in `app`) with esbuild or webpack (dev dependencies of this folder), titan-lifecycle
 * inside the bundle, as a service bundles its code for a container image, into `baseName` (with `.mjs` for
 * an ES module, `.js` otherwise) in a folder of its own; returns the bundle's path and what the bundler
 * warned of.
 */
async function bundle(bundler, app, entry, baseName) {
  const outdir = path.join(app, `bundle-${bundler}-${path.basename(entry, '.cjs')}`)
  const esm = bundler === 'esbuild-esm'
  const name = `${baseName}${esm ? '.mjs' : '.js'}`
  if (bundler.startsWith('esbuild')) {
    const { warnings } = await require('esbuild').build({
      entryPoints: [path.join(app, entry)],
      bundle: true,
      platform: 'node',
      outfile: path.join(outdir, name),
      logLevel: 'silent',
      ...(esm && {
        format: 'esm',
        banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
      }),
    })
    return { file: path.join(outdir, name), warnings: warnings.map((w) => w.text) }
  }
  const config = {
    mode: 'production',
    target: 'node',
    context: app,
    entry: `./${entry}`,
    output: { path: outdir, filename: name },
    optimization: { minimize: false },
    infrastructureLogging: { level: 'none' },
  }
  const stats = await new Promise((resolve, reject) =>
    require('webpack')(config, (error, result) => (error ? reject(error) : resolve(result))),
  )
  const { errors, warnings } = stats.toJson({ all: false, errors: true, warnings: true })
  if (errors.length > 0) throw new Error(`webpack: ${errors.map((e) => e.message).join(' | ')}`)
  return { file: path.join(outdir, name), warnings: warnings.map((w) => w.message.split('\n')[0]) }
}

/** Starts a script of the installed app, sends it SIGTERM and checks its task ran and it exited 0. */
async function shutdownBySigterm(argv, { cwd, env }) {
  const child = launch(argv, { cwd, env })
  if (!(await child.ready)) throw new Error(`${argv.at(-1)} did not start: ${child.output().stderr}`)
  kill(child.child, 'SIGTERM')
  const result = await child.exited
  if (result.code !== 0 || !find(result.lines, 'task-ran')) throw new Error(`exit ${result.code}: ${result.stderr}`)
  return result.lines
}

/**
 * Installs titan-lifecycle with pnpm or Yarn (dev dependencies of this folder) into a fresh project, runs
 * `body` there, shuts it down with SIGTERM and checks where the addon was opened from, and that it was
 * opened once.
 */
async function installAndRun(tool, { registry, env, body }) {
  const project = path.join(scratch, tool)
  fs.mkdirSync(project)
  fs.writeFileSync(path.join(project, 'package.json'), `{ "name": "${tool}-app", "private": true }\n`)
  const url = `http://127.0.0.1:${registry.port}/`
  let cli
  let argv
  if (tool === 'pnpm') {
    cli = path.join(__dirname, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs')
    // Its store and its metadata cache in the scratch directory: nothing is left in the home directory.
    fs.writeFileSync(
      path.join(project, '.npmrc'),
      `registry=${url}\nstore-dir=${path.join(scratch, 'pnpm-store')}\ncache-dir=${path.join(scratch, 'pnpm-cache')}\n`,
    )
    argv = [process.execPath, 'app.cjs']
  } else {
    cli = path.join(__dirname, 'node_modules', '@yarnpkg', 'cli-dist', 'bin', 'yarn.js')
    fs.writeFileSync(
      path.join(project, '.yarnrc.yml'),
      [
        'nodeLinker: pnp',
        `npmRegistryServer: "${url}"`,
        'unsafeHttpWhitelist: ["127.0.0.1"]',
        'enableGlobalCache: false',
        // Its own folder, so no metadata from an earlier run (with the registry on another port) is reused.
        `globalFolder: "${path.join(scratch, 'yarn-global')}"`,
        'enableTelemetry: false',
        // Yarn holds back versions published in the last days; these were published a moment ago.
        'npmMinimalAgeGate: 0',
        '',
      ].join('\n'),
    )
    fs.writeFileSync(path.join(project, 'yarn.lock'), '')
    argv = [process.execPath, '--require', './.pnp.cjs', 'app.cjs']
  }
  try {
    execFileSync(process.execPath, [cli, 'add', 'titan-lifecycle'], {
      cwd: project,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env, COREPACK_ENABLE_STRICT: '0', YARN_IGNORE_PATH: '1' },
      timeout: 300_000,
    })
  } catch (error) {
    throw new Error(`${tool} add failed: ${error.stdout ?? ''}${error.stderr ?? ''}`)
  }
  // The app notes each resolution of a platform package by name: the loader's fallback, which reaches the
  // same file in pnpm's layout, so the file alone would not tell which way it went.
  fs.writeFileSync(
    path.join(project, 'app.cjs'),
    `const Module = require('node:module')
const byName = []
const resolve = Module._resolveFilename
Module._resolveFilename = function (request, ...rest) {
  if (request.startsWith('titan-lifecycle-')) byName.push(request)
  return resolve.call(this, request, ...rest)
}
${body}
const { nativeFile } = require('titan-lifecycle')
const opened = Object.keys(require.cache).filter((key) => key.endsWith('.node'))
console.log(JSON.stringify({ kind: 'addon', nativeFile, opened, byName }))
`,
  )
  const lines = await shutdownBySigterm(argv, { cwd: project, env })
  const { nativeFile, opened, byName } = find(lines, 'addon')
  const expected = PACKAGE_MANAGERS[tool]
  if (!expected.addon.test(nativeFile)) throw new Error(`the addon was opened from ${nativeFile}`)
  if (opened.length !== 1 || opened[0] !== fs.realpathSync(nativeFile)) {
    throw new Error(`addons in require.cache: ${opened.join(', ')}; expected ${nativeFile} once`)
  }
  if (byName.length > 0 !== expected.byName) {
    throw new Error(
      `the platform package was resolved by name ${byName.length} times; expected ${expected.byName ? 'some' : 'none'}`,
    )
  }
  const how = expected.byName ? 'resolved by name' : 'found by the loader'
  return `SIGTERM ran the task, exit 0; the addon ${how}, from ${path.relative(project, nativeFile)}`
}

async function main() {
  ensureTools()
  const registry = await startRegistry()
  try {
    // The local platform's build, unless the cross build has put a newer one there (an older one, left
    // by an earlier cross build, would be published in place of the code under test).
    const local = fs.readdirSync(ROOT).find((f) => /^titan-lifecycle\.(.+)\.node$/.test(f))
    if (local) {
      const staged = path.join(ROOT, 'npm', local.slice('titan-lifecycle.'.length, -'.node'.length), local)
      if (!fs.existsSync(staged) || fs.statSync(staged).mtimeMs < fs.statSync(path.join(ROOT, local)).mtimeMs) {
        fs.copyFileSync(path.join(ROOT, local), staged)
      }
    }
    const published = []
    const placeholders = []
    for (const platform of fs.readdirSync(path.join(ROOT, 'npm'))) {
      let dir = path.join(ROOT, 'npm', platform)
      if (fs.existsSync(path.join(dir, `titan-lifecycle.${platform}.node`))) {
        published.push(platform)
      } else {
        // The public registry has every platform's package, and Yarn resolves each optional dependency
        // before it looks at os, cpu and libc. Platforms without a build here get their manifest alone,
        // which no install on this machine picks.
        const manifest = path.join(dir, 'package.json')
        dir = path.join(scratch, 'placeholders', platform)
        fs.mkdirSync(dir, { recursive: true })
        fs.copyFileSync(manifest, path.join(dir, 'package.json'))
        placeholders.push(platform)
      }
      npmRun(['publish'], { cwd: dir, npmrc: registry.npmrc })
    }
    npmRun(['publish'], { cwd: ROOT, npmrc: registry.npmrc })
    console.error(
      `registry: published titan-lifecycle and ${published.join(', ')} (manifests alone: ${placeholders.join(', ') || 'none'})`,
    )

    const app = path.join(scratch, 'app')
    fs.mkdirSync(app)
    fs.writeFileSync(path.join(app, 'package.json'), '{ "name": "app", "private": true }\n')
    // No Rust on PATH: the install must not need a compiler.
    const pathWithoutRust = [path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter)
    await check('npm install titan-lifecycle, with no Rust on PATH', () => {
      let cargo = null
      try {
        cargo = execFileSync('sh', ['-c', 'command -v cargo rustc'], {
          encoding: 'utf8',
          env: { PATH: pathWithoutRust },
        }).trim()
      } catch {}
      if (cargo) throw new Error(`Rust is on the PATH used: ${cargo}`)
      // Retried: typescript and @types/node come from npmjs through the registry's uplink.
      retried("the application's packages", () =>
        npmRun(['install', 'titan-lifecycle', 'typescript@5', 'typescript7@npm:typescript@7', '@types/node@20'], {
          cwd: app,
          npmrc: registry.npmrc,
          env: { PATH: pathWithoutRust },
        }),
      )
      const installed = fs.readdirSync(path.join(app, 'node_modules')).filter((d) => d.startsWith('titan-lifecycle'))
      return `installed ${installed.join(', ')}`
    })

    const shutdownOnSigterm = async (argv) => {
      await shutdownBySigterm(argv, { cwd: app, env: { PATH: pathWithoutRust } })
      return 'SIGTERM ran the task, exit 0'
    }
    const body = (imports) => `${imports}
const manager = new ShutdownManager({ gracefulShutdownTimeout: 5000 })
manager.registerTask({ id: 'work', priority: ShutdownPriority.High, handler: () => console.log(JSON.stringify({ kind: 'task-ran' })) })
setInterval(() => {}, 1000)
console.log(JSON.stringify({ kind: 'ready' }))
`
    fs.writeFileSync(path.join(app, 'app.cjs'), body(REQUIRE))
    fs.writeFileSync(
      path.join(app, 'app.mjs'),
      body("import { ShutdownManager, ShutdownPriority } from 'titan-lifecycle'"),
    )
    fs.writeFileSync(
      path.join(app, 'registered.cjs'),
      `const { processManager } = require('titan-lifecycle')
processManager().registerTask({ id: 'work', handler: () => console.log(JSON.stringify({ kind: 'task-ran' })) })
setInterval(() => {}, 1000)
console.log(JSON.stringify({ kind: 'ready' }))
`,
    )
    await check('CommonJS: require()', () => shutdownOnSigterm([process.execPath, 'app.cjs']))
    // pnpm links each package from its store (node_modules/.pnpm/<name>@<version>/node_modules/<name>), with
    // the platform package a symlink beside it; Yarn's Plug'n'Play has no node_modules at all and resolves
    // through its own runtime. The loader opens the addon itself in the first, and leaves it to `require`
    // in the second.
    for (const tool of Object.keys(PACKAGE_MANAGERS)) {
      await check(`${tool} add titan-lifecycle: require(), the addon from the ${PACKAGE_MANAGERS[tool].layout}`, () =>
        installAndRun(tool, { registry, env: { PATH: pathWithoutRust }, body: body(REQUIRE) }),
      )
    }
    await check('ES module: named imports', () => shutdownOnSigterm([process.execPath, 'app.mjs']))
    await check('node --require titan-lifecycle/register', () =>
      shutdownOnSigterm([process.execPath, '--require', 'titan-lifecycle/register', 'registered.cjs']),
    )

    // A service bundled for its image holds titan-lifecycle in the bundle. Beside the app's node_modules
    // the loader finds the platform package through Node's own require (webpack replaces `require` with
    // its own); alone, it needs the addon file beside the bundle, and says so when it is not there.
    fs.writeFileSync(
      path.join(app, 'bundled.cjs'),
      body(`${REQUIRE}
console.log(JSON.stringify({ kind: 'addon', nativeFile: require('titan-lifecycle').nativeFile }))`),
    )
    const platformPackage = fs.readdirSync(path.join(app, 'node_modules')).find((d) => d.startsWith('titan-lifecycle-'))
    const addonFile = fs.readdirSync(path.join(app, 'node_modules', platformPackage)).find((f) => f.endsWith('.node'))
    for (const bundler of BUNDLERS) {
      await check(`${bundler}: a bundle holding titan-lifecycle, beside node_modules and alone`, async () => {
        const { file, warnings } = await bundle(bundler, app, 'bundled.cjs', 'app')
        const name = path.basename(file)
        const env = { PATH: pathWithoutRust }
        const installed = fs.realpathSync(path.join(app, 'node_modules', platformPackage, addonFile))
        const opened = (lines) => find(lines, 'addon').nativeFile
        const besideModules = opened(await shutdownBySigterm([process.execPath, file], { cwd: app, env }))
        if (besideModules !== installed) throw new Error(`beside node_modules, the addon came from ${besideModules}`)
        const alone = path.join(scratch, `alone-${bundler}`)
        fs.mkdirSync(alone)
        fs.copyFileSync(file, path.join(alone, name))
        const refused = spawnSync(process.execPath, [name], { cwd: alone, encoding: 'utf8', env, timeout: 30_000 })
        if (
          refused.status !== 1 ||
          !refused.stderr.includes("code: 'ERR_NATIVE_UNAVAILABLE'") ||
          !refused.stderr.includes(
            `A bundle that holds titan-lifecycle needs it installed where it runs, or ${addonFile}`,
          )
        ) {
          throw new Error(`alone, without the addon: exit ${refused.status}: ${refused.stderr}`)
        }
        fs.copyFileSync(installed, path.join(alone, addonFile))
        const besideBundle = opened(await shutdownBySigterm([process.execPath, name], { cwd: alone, env }))
        if (besideBundle !== path.join(fs.realpathSync(alone), addonFile)) {
          throw new Error(`alone, the addon came from ${besideBundle}`)
        }
        return (
          'SIGTERM ran the task, exit 0, with the addon from node_modules and alone from beside the bundle; alone ' +
          `without it, ERR_NATIVE_UNAVAILABLE saying so (${warnings.length} warnings: ${warnings.join('; ') || 'none'})`
        )
      })
    }
    // The package's frames are summed up in a stuck loop's stack, by their files; in a bundle they share
    // one file with the service's own, and a bundle is often named index.js, as the package's file is.
    fs.writeFileSync(
      path.join(app, 'stuck.cjs'),
      `${REQUIRE}
const manager = new ShutdownManager({ gracefulShutdownTimeout: 300 })
function spinForever() { while (true) {} }
manager.registerTask({ id: 'spin', priority: ShutdownPriority.High, handler: () => spinForever() })
setInterval(() => {}, 1000)
console.log(JSON.stringify({ kind: 'ready' }))
`,
    )
    for (const bundler of BUNDLERS) {
      await check(
        `${bundler}: a bundle named index.js, stuck in a task: the hard-exit report shows where`,
        async () => {
          const { file } = await bundle(bundler, app, 'stuck.cjs', 'index')
          // V8 names an ES module's frames by its URL.
          const where = file.endsWith('.mjs') ? require('node:url').pathToFileURL(file).href : file
          const child = launch([process.execPath, file], { cwd: app, env: { PATH: pathWithoutRust } })
          if (!(await child.ready)) throw new Error(`the bundle did not start: ${child.output().stderr}`)
          kill(child.child, 'SIGTERM')
          const { code, stderr } = await child.exited
          const stack = stderr.slice(stderr.indexOf('blocked in JavaScript, at:'), stderr.indexOf('running:'))
          if (code !== 124 || !stack.includes(`at spinForever (${where}:`)) {
            throw new Error(`exit ${code}; the report's stack: ${stack || stderr}`)
          }
          return `exit 124; the report's stack starts ${stack.split('\n')[1].trim()}`
        },
      )
    }

    // Other runtimes that load Node addons (dev dependencies of this folder, from npm): each must refuse
    // a manager with ERR_NATIVE_UNAVAILABLE, also one that owns no signals. Bun exports libuv's functions as
    // stubs that abort the process; Deno does not export them. Their caches go to the scratch directory.
    // Behind the facade's check by name, the binding refuses any host where libuv cannot be resolved: under
    // Deno the binding is also made directly, and must refuse (not under Bun, whose stubs would abort).
    fs.writeFileSync(
      path.join(app, 'runtime.cjs'),
      `${REQUIRE}
console.log(JSON.stringify({ kind: 'loaded', priority: ShutdownPriority.High }))
const attempts = [{}, { signals: [] }].map((options) => ['manager', () => new ShutdownManager(options)])
if (process.versions.deno) {
  const { NativeShutdown } = require('titan-lifecycle').native
  attempts.push(['binding', () => new NativeShutdown(124)])
}
for (const [what, make] of attempts) {
  try {
    make()
    console.log(JSON.stringify({ kind: 'made', what }))
  } catch (error) {
    console.log(JSON.stringify({ kind: 'refused', what, code: error.code, message: error.message }))
  }
}
`,
    )
    const runtimes = {
      Bun: ['bun', 'runtime.cjs'],
      Deno: ['deno', 'run', '--allow-all', 'runtime.cjs'],
    }
    for (const [runtime, argv] of Object.entries(runtimes)) {
      await check(`${runtime}: the package loads, a manager is refused with ERR_NATIVE_UNAVAILABLE`, () => {
        const [command, ...args] = argv
        const binary = path.join(__dirname, 'node_modules', '.bin', command)
        const home = path.join(scratch, `home-${command}`)
        fs.mkdirSync(home, { recursive: true })
        const env = {
          PATH: pathWithoutRust,
          HOME: home,
          DENO_DIR: path.join(home, 'deno'),
          BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0',
          NO_COLOR: '1',
        }
        const run = spawnSync(binary, args, { cwd: app, encoding: 'utf8', timeout: 60_000, env })
        const lines = run.stdout
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line))
        const refusals = lines.filter((line) => line.kind === 'refused')
        const managers = refusals.filter((r) => r.what === 'manager')
        const bindings = refusals.filter((r) => r.what === 'binding')
        const expected = new RegExp(`^titan-lifecycle runs on Node\\.js: ${runtime} \\d`)
        if (
          run.status !== 0 ||
          !find(lines, 'loaded') ||
          managers.length !== 2 ||
          !managers.every((r) => r.code === 'ERR_NATIVE_UNAVAILABLE' && expected.test(r.message)) ||
          bindings.length !== (runtime === 'Deno' ? 1 : 0) ||
          !bindings.every((r) => r.code === 'ERR_NATIVE_UNAVAILABLE' && /uv_\w+ is not exported/.test(r.message)) ||
          lines.some((line) => line.kind === 'made')
        ) {
          throw new Error(`exit ${run.status ?? run.signal}: ${run.stdout}${run.stderr}`)
        }
        const version = execFileSync(binary, ['--version'], { encoding: 'utf8', env, timeout: 30_000 })
          .split('\n')[0]
          .trim()
        const binding = bindings.length ? ` The binding refused too: ${bindings[0].message}` : ''
        return `${version}: loaded; a manager refused, with signals and without: ${managers[0].message}${binding}`
      })
    }

    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          types: [],
        },
        files: ['app.ts'],
      }),
    )
    fs.writeFileSync(
      path.join(app, 'app.ts'),
      `import * as http from 'node:http'
import { ShutdownManager, ShutdownPriority, ShutdownReason, processManager, type ShutdownResult } from 'titan-lifecycle'

const manager = new ShutdownManager({ gracefulShutdownTimeout: 30_000, shutdownDelay: 5_000 })
const server = http.createServer(manager.readinessHandler())
const id: string = manager.trackServer(server, { drainTimeout: 10_000 })
manager.registerTask({ id: 'db', phase: 'destroy', priority: ShutdownPriority.Last, handler: async ({ abortSignal }) => abortSignal.aborted })
const result: Promise<ShutdownResult> = manager.stop({ reason: ShutdownReason.Maintenance })
const registered: ShutdownManager | undefined = processManager()
void [id, result, registered]

// @ts-expect-error reasons are a closed set
void manager.stop({ reason: 'bored' })
// @ts-expect-error a task needs a handler
manager.registerTask({ id: 'x' })
// @ts-expect-error only a server can be tracked
manager.trackServer({})
manager.on('shutdown:complete', ({ exitCode }) => exitCode)
// @ts-expect-error an event the manager never emits
manager.on('shutdown:finished', () => {})
`,
    )
    for (const [label, tsc] of [
      ['TypeScript 5', path.join(app, 'node_modules', 'typescript', 'bin', 'tsc')],
      ['TypeScript 7', path.join(app, 'node_modules', 'typescript7', 'bin', 'tsc')],
    ]) {
      await check(`${label}: tsc --strict --noEmit, no implicit types, misuse rejected`, () => {
        const version = execFileSync(process.execPath, [tsc, '--version'], {
          cwd: app,
          encoding: 'utf8',
          timeout: 30_000,
        }).trim()
        try {
          execFileSync(process.execPath, [tsc, '-p', '.'], { cwd: app, encoding: 'utf8', timeout: 120_000 })
        } catch (error) {
          throw new Error(`${version}: ${error.stdout}${error.stderr}`)
        }
        return `${version}: clean`
      })
    }
    // @types/node 26 made a typed EventEmitter take any event name: the manager types its own listeners, so
    // a misspelt event is still refused with the newest typings too.
    await check('TypeScript 5 with the latest @types/node: misuse rejected', () => {
      retried('the latest @types/node', () =>
        npmRun(['install', '@types/node@latest'], { cwd: app, npmrc: registry.npmrc, env: { PATH: pathWithoutRust } }),
      )
      const types = JSON.parse(
        fs.readFileSync(path.join(app, 'node_modules', '@types', 'node', 'package.json'), 'utf8'),
      )
      const tsc = path.join(app, 'node_modules', 'typescript', 'bin', 'tsc')
      try {
        execFileSync(process.execPath, [tsc, '-p', '.'], { cwd: app, encoding: 'utf8', timeout: 120_000 })
      } catch (error) {
        throw new Error(`@types/node ${types.version}: ${error.stdout}${error.stderr}`)
      }
      return `@types/node ${types.version}: clean`
    })
  } finally {
    registry.child.kill('SIGKILL')
  }
  const failed = results.filter((r) => !r.ok).length
  console.log(`${results.length - failed} passed, ${failed} failed`)
  fs.writeFileSync(path.join(scratch, 'results.json'), JSON.stringify(results))
  process.exitCode = failed === 0 ? 0 : 1
}

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(() => fs.rmSync(scratch, { recursive: true, force: true }))
