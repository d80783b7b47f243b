'use strict'

// Loads the native addon for this platform: a local build next to the package (development), or the
// platform package npm installed as an optional dependency. napi-rs's generated loader covers every
// platform and WASI and costs about 1 ms at require; the load budget is 3 ms, so this package ships this
// small loader instead. binding.d.ts (generated) describes what it returns.

const { existsSync, readFileSync } = require('node:fs')
const path = require('node:path')

function libc() {
  if (process.platform !== 'linux') return ''
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl') ? '-musl' : '-gnu'
  } catch {
    // No ldd to read (a minimal image): glibc images almost always ship it, musl ones often do not.
    return existsSync(`/lib/ld-musl-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`) ? '-musl' : '-gnu'
  }
}

function load() {
  const platform = `${process.platform}-${process.arch}${libc()}`
  const local = path.join(__dirname, '..', `titan-lifecycle.${platform}.node`)
  if (existsSync(local)) return require(local)
  const packageName = `titan-lifecycle-${platform}`
  try {
    return require(packageName)
  } catch (error) {
    if (error?.code !== 'MODULE_NOT_FOUND') throw error
    const missing = new Error(
      `titan-lifecycle has no native build for ${platform}: the optional dependency ${packageName} is not ` +
        'installed (npm skips it when optional dependencies are omitted), and no local build exists ' +
        '(run `npm run build` in a checkout). Supported: linux x64/arm64 (glibc and musl), macOS x64/arm64.',
      { cause: error },
    )
    missing.code = 'ERR_NATIVE_UNAVAILABLE'
    throw missing
  }
}

module.exports = load()
