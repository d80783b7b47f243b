'use strict'
// Measures, in this fresh process, what loading one package costs: `require()` for CommonJS, `import()` for
// an ESM-only package. For titan-lifecycle it also measures `new ShutdownManager()`. A real service loads
// packages from its main module, when the module loader is already warm, so the probe warms it first (the
// ES module loader too, for a package that is an ES module).
const fs = require('node:fs')
const path = require('node:path')

/** This process's thread count; null where there is no /proc to count them in (macOS). */
const threads = () => (process.platform === 'linux' ? fs.readdirSync('/proc/self/task').length : null)
const added = (after, before) => (before === null ? null : after - before)
const target = process.argv[2] ?? path.join(__dirname, '..', '..')
require('./empty.cjs')

/** Whether a bench peer is an ES module that `require()` cannot load (its manifest may be hidden by `exports`). */
function isEsmOnly(specifier) {
  if (path.isAbsolute(specifier)) return false
  try {
    const manifest = path.join(__dirname, '..', 'node_modules', specifier, 'package.json')
    return JSON.parse(fs.readFileSync(manifest, 'utf8')).type === 'module'
  } catch {
    return false
  }
}

async function main() {
  const esm = isEsmOnly(target)
  // An ES module service has used the ES module loader before it loads a package: warm it as `require`
  // is warmed above (its first use costs milliseconds and starts libuv's thread pool).
  if (esm) await import('./empty.mjs')
  const threadsBefore = threads()
  const rssBefore = process.memoryUsage.rss()
  const start = process.hrtime.bigint()
  const loaded = esm ? await import(target) : require(target)
  const requireMs = Number(process.hrtime.bigint() - start) / 1e6
  const rssAfterRequire = process.memoryUsage.rss()
  const threadsAfterRequire = threads()

  let constructMs = null
  let threadsManager = null
  let rssManagerKb = null
  if (typeof loaded.ShutdownManager === 'function') {
    const constructStart = process.hrtime.bigint()
    const manager = new loaded.ShutdownManager()
    constructMs = Number(process.hrtime.bigint() - constructStart) / 1e6
    threadsManager = added(threads(), threadsBefore)
    rssManagerKb = (process.memoryUsage.rss() - rssBefore) / 1024
    manager.dispose()
  }
  process.stdout.write(
    JSON.stringify({
      esm,
      requireMs,
      constructMs,
      rssRequireKb: (rssAfterRequire - rssBefore) / 1024,
      rssManagerKb,
      threadsRequire: added(threadsAfterRequire, threadsBefore),
      threadsManager,
    }) + '\n',
  )
}

main()
