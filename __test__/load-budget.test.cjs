'use strict'
// The load budget (README, "What it costs"): requiring the package starts no thread and a manager at most
// two before a shutdown begins. Time and memory are measured by bench/load-cost.cjs; here they only get
// bounds loose enough for a noisy machine that still catch a regression like the 8.5 ms / 4.4 MB the first
// version cost. Times are bounded as ratios to loading the addon file alone, measured in the same rounds:
// on a slow day `require` took 3.5 ms here and 5.5 ms for Node 24 in the musl root, and the first manager
// (which also compiles the shutdown runner and the validation, which `require` leaves to it) 6.5 and 10 ms,
// past fixed bounds of 6 and 8 ms, while the ratios held (3.5-5.5 and 6.5-10 times the addon's 1 ms; the
// first version's `require` was 17 times it).

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const PROBE = path.join(__dirname, '..', 'bench', 'probes', 'load.cjs')

test('require() starts no thread, a manager at most two, and both stay cheap', () => {
  const probe = (target) =>
    JSON.parse(
      execFileSync(process.execPath, [PROBE, ...(target ? [target] : [])], { encoding: 'utf8', timeout: 30_000 }),
    )
  // The addon file this Node loads, opened alone: the floor the times are measured against, in turn with them.
  const { nativeFile } = require('..')
  const samples = []
  const floor = []
  for (let round = 0; round < 7; round++) {
    samples.push(probe())
    floor.push(probe(nativeFile).requireMs)
  }
  const median = (key) => samples.map((s) => s[key]).sort((a, b) => a - b)[3]
  const addonMs = floor.sort((a, b) => a - b)[3]
  // Threads are counted in /proc, which only Linux has; time and memory are checked everywhere.
  if (process.platform === 'linux') {
    for (const s of samples) {
      assert.equal(s.threadsRequire, 0, 'require() started a thread')
      assert.ok(s.threadsManager <= 2, `a manager started ${s.threadsManager} threads`)
    }
  }
  assert.ok(median('rssRequireKb') < 3 * 1024, `require() added ${median('rssRequireKb')} KB of RSS`)
  const times = `(medians of 7; the addon file alone ${addonMs.toFixed(2)} ms)`
  assert.ok(median('requireMs') < 8 * addonMs, `require() took ${median('requireMs').toFixed(2)} ms ${times}`)
  assert.ok(
    median('constructMs') < 16 * addonMs,
    `new ShutdownManager() took ${median('constructMs').toFixed(2)} ms ${times}`,
  )
})
