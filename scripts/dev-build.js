'use strict'
// Makes a checkout ready to run: installs the dev dependencies if they are missing, and builds the native
// addon if it is missing or older than its sources. `npm run example` and `npm test` call it first, so a
// fresh clone needs no other step. Quiet when there is nothing to do.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { npmInstall } = require('./fetch.cjs')

const root = path.join(__dirname, '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

function newestSource() {
  let newest = 0
  const visit = (file) => {
    const stat = fs.statSync(file)
    if (stat.isDirectory()) for (const entry of fs.readdirSync(file)) visit(path.join(file, entry))
    else newest = Math.max(newest, stat.mtimeMs)
  }
  for (const source of ['src', 'core', 'build.rs', 'Cargo.toml', 'Cargo.lock']) visit(path.join(root, source))
  return newest
}

function builtAddon() {
  const addon = fs.readdirSync(root).find((f) => /^titan-lifecycle\..+\.node$/.test(f))
  return addon && fs.statSync(path.join(root, addon)).mtimeMs
}

if (!fs.existsSync(path.join(root, 'node_modules', '@napi-rs', 'cli'))) {
  // `npm install` rather than `npm ci`: see .ci/run for the lockfile gap npm leaves on Node 20.
  console.error('dev-build: installing dev dependencies (npm install)')
  // Retried and each attempt bounded, as every download the scripts make (see fetch.cjs).
  npmInstall('the dev dependencies', [], { cwd: root, timeoutMs: 600_000 })
}
const built = builtAddon()
if (!built || built < newestSource()) {
  console.error('dev-build: building the native addon (npm run build)')
  // Bounded: a release build from nothing takes a few minutes on two cores.
  execFileSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit', timeout: 900_000 })
}
