'use strict'
// The load budget (README, "What it costs"): requiring the package starts no thread and a manager at most
// two before a shutdown begins. Time and memory are measured by bench/load-cost.cjs; here they only get
// bounds loose enough for a noisy machine that still catch a regression like the 8.5 ms / 4.4 MB the first
// version cost. The first manager also compiles the shutdown runner and the validation, which `require`
// leaves to it (about 2 ms here, 3 ms for Node 24 in the musl root).

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const PROBE = path.join(__dirname, '..', 'bench', 'probes', 'load.cjs')

test('require() starts no thread, a manager at most two, and both stay cheap', () => {
  const samples = Array.from({ length: 7 }, () =>
    JSON.parse(execFileSync(process.execPath, [PROBE], { encoding: 'utf8' })),
  )
  const median = (key) => samples.map((s) => s[key]).sort((a, b) => a - b)[3]
  // Threads are counted in /proc, which only Linux has; time and memory are checked everywhere.
  if (process.platform === 'linux') {
    for (const s of samples) {
      assert.equal(s.threadsRequire, 0, 'require() started a thread')
      assert.ok(s.threadsManager <= 2, `a manager started ${s.threadsManager} threads`)
    }
  }
  assert.ok(median('rssRequireKb') < 3 * 1024, `require() added ${median('rssRequireKb')} KB of RSS`)
  assert.ok(median('requireMs') < 6, `require() took ${median('requireMs').toFixed(2)} ms (median of 7)`)
  assert.ok(median('constructMs') < 8, `new ShutdownManager() took ${median('constructMs').toFixed(2)} ms`)
})
