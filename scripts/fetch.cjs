'use strict'
// What the project's scripts download (toolchains, other Node versions, npm packages) is cached outside the
// checkout, retried on a flaky mirror and bounded in time, so a bad mirror fails a run instead of hanging it.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

/** The download cache: TITAN_LIFECYCLE_CACHE, by default ~/.cache/titan-lifecycle. */
const CACHE = process.env.TITAN_LIFECYCLE_CACHE ?? path.join(os.homedir(), '.cache', 'titan-lifecycle')

/** Runs `attempt` (a bounded download) three times at most, waiting a little longer each time. */
function retried(what, attempt, say = (message) => console.error(message)) {
  for (let n = 1; ; n++) {
    try {
      return attempt()
    } catch (error) {
      if (n === 3) throw new Error(`could not download ${what} after 3 attempts: ${error.message}`)
      say(`downloading ${what} failed (attempt ${n}): ${error.message.split('\n')[0]}; retrying`)
      execFileSync('sleep', [String(5 * n)])
    }
  }
}

/** `npm install ...args` in `cwd`: each attempt bounded by `timeoutMs`, three attempts at most. */
function npmInstall(what, args, { cwd, timeoutMs = 300_000 } = {}) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  retried(what, () =>
    execFileSync(npm, ['install', '--no-audit', '--no-fund', ...args], { cwd, stdio: 'inherit', timeout: timeoutMs }),
  )
}

/**
 * Does `work` unless the file `marker` exists, and writes it after: a run cut off mid-way (a truncated
 * download, a half-unpacked toolchain) leaves no marker, so the next run does the work again.
 */
function once(marker, work) {
  if (fs.existsSync(marker)) return
  work()
  fs.writeFileSync(marker, new Date().toISOString())
}

module.exports = { CACHE, retried, npmInstall, once }
