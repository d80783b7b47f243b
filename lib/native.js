'use strict'

// Loads the native addon for this platform: a local build next to the package (development), or the
// platform package npm installed as an optional dependency. napi-rs's generated loader covers every
// platform and WASI and costs about 1 ms at require; the load budget is 3 ms, so this package ships this
// small loader instead. binding.d.ts (generated) describes what it returns.

const { existsSync, readFileSync } = require('node:fs')
const path = require('node:path')

/** The platforms a binary is built for (package.json's napi.targets, by their package suffix). */
const SHIPPED = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl', 'darwin-x64', 'darwin-arm64']

function libc() {
  if (process.platform !== 'linux') return ''
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl') ? '-musl' : '-gnu'
  } catch {
    // No ldd to read (a minimal image): glibc images almost always ship it, musl ones often do not.
    return existsSync(`/lib/ld-musl-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`) ? '-musl' : '-gnu'
  }
}

function unavailable(message, cause) {
  return Object.assign(new Error(message, cause ? { cause } : undefined), { code: 'ERR_NATIVE_UNAVAILABLE' })
}

function load() {
  const platform = `${process.platform}-${process.arch}${libc()}`
  if (!SHIPPED.includes(platform)) {
    throw unavailable(
      `titan-lifecycle does not support ${platform}: its native addon is built for ${SHIPPED.join(', ')} only ` +
        '(it receives signals natively, which Windows does not have).',
    )
  }
  const local = path.join(__dirname, '..', `titan-lifecycle.${platform}.node`)
  if (existsSync(local)) return require(local)
  const packageName = `titan-lifecycle-${platform}`
  try {
    return require(packageName)
  } catch (error) {
    if (error?.code !== 'MODULE_NOT_FOUND') throw error
    throw unavailable(
      `titan-lifecycle's native addon for ${platform} is missing: install ${packageName} ` +
        `(npm install ${packageName}@${require('../package.json').version}). npm installs it with titan-lifecycle ` +
        'unless optional dependencies are omitted (--omit=optional, --no-optional) or the lockfile was made on ' +
        'another platform.',
      error,
    )
  }
}

/** @type {typeof import('../binding')} */
module.exports = load()
