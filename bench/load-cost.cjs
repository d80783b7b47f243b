'use strict'
// The load budget: `require('titan-lifecycle')` under 3 ms and 3 MB, and at most 2 threads started before a
// shutdown begins. Each sample is a fresh node process; figures are medians and worst cases.
//
//   node bench/load-cost.cjs [--runs N] [--json]

const { execFileSync } = require('node:child_process')
const path = require('node:path')

const args = process.argv.slice(2)
const runs = Number(args[args.indexOf('--runs') + 1]) || 30
const asJson = args.includes('--json')

const BUDGET = { requireMs: 3, rssRequireKb: 3 * 1024, threadsManager: 2 }

function sample(target, cwd, probe = path.join(__dirname, 'probes', 'load.cjs')) {
  // Bounded: a probe kept alive by something its manager left behind would otherwise stall the bench.
  const out = execFileSync(process.execPath, [probe, ...(target ? [target] : [])], {
    encoding: 'utf8',
    cwd,
    timeout: 30_000,
  })
  return JSON.parse(out)
}

function summarize(samples, key) {
  const values = samples
    .map((s) => s[key])
    .filter((v) => v != null)
    .sort((a, b) => a - b)
  if (values.length === 0) return null
  const at = (q) => values[Math.min(values.length - 1, Math.floor(q * values.length))]
  return { median: at(0.5), p90: at(0.9), max: values[values.length - 1], worst: values[values.length - 1] }
}

/**
 * Loads `target` (a path or a package name) in `n` fresh processes; medians and worst cases per figure.
 * `probe`: a copy of probes/load.cjs elsewhere, for a package name to resolve from another node_modules.
 */
function measureLoad(target, n = runs, { cwd, probe } = {}) {
  return measureLoads([{ target, cwd, probe }], n)[0]
}

/**
 * measureLoad for several targets (`{ target, cwd, probe }`) at once, one process of each in turn for `n`
 * rounds: whatever the machine does meanwhile (this one is shared) weighs on every target alike, so their
 * ratios hold even when the absolute times drift. Returns the figures of each, in order.
 */
function measureLoads(targets, n = runs) {
  const samples = targets.map(() => [])
  for (let round = 0; round < n; round++) {
    for (const [i, { target, cwd, probe }] of targets.entries()) samples[i].push(sample(target, cwd, probe))
  }
  const keys = ['requireMs', 'constructMs', 'rssRequireKb', 'rssManagerKb', 'threadsRequire', 'threadsManager']
  return samples.map((of) => Object.fromEntries(keys.map((k) => [k, summarize(of, k)])))
}

module.exports = { measureLoad, measureLoads }
if (require.main === module) report()

function report() {
  const figures = measureLoad()
  const verdict = {
    requireMs: figures.requireMs.median < BUDGET.requireMs,
    rssRequireKb: figures.rssRequireKb.median < BUDGET.rssRequireKb,
    threadsManager: figures.threadsManager.max <= BUDGET.threadsManager,
  }

  if (asJson) {
    process.stdout.write(
      JSON.stringify({ node: process.version, runs, figures, budget: BUDGET, verdict }, null, 2) + '\n',
    )
  } else {
    const f = (x, d = 2) => x.toFixed(d)
    console.log(`titan-lifecycle load cost, ${runs} fresh processes, node ${process.version}`)
    console.log(
      `  require():              median ${f(figures.requireMs.median)} ms, p90 ${f(figures.requireMs.p90)} ms, max ${f(figures.requireMs.max)} ms   (budget < ${BUDGET.requireMs} ms: ${verdict.requireMs ? 'ok' : 'OVER'})`,
    )
    console.log(
      `  new ShutdownManager():  median ${f(figures.constructMs.median)} ms, max ${f(figures.constructMs.max)} ms`,
    )
    console.log(
      `  RSS added by require:   median ${f(figures.rssRequireKb.median / 1024)} MB, max ${f(figures.rssRequireKb.max / 1024)} MB   (budget < 3 MB: ${verdict.rssRequireKb ? 'ok' : 'OVER'})`,
    )
    console.log(`  RSS with a manager:     median ${f(figures.rssManagerKb.median / 1024)} MB`)
    console.log(`  threads at require:     ${figures.threadsRequire.max}`)
    console.log(
      `  threads with a manager: ${figures.threadsManager.max}   (budget <= ${BUDGET.threadsManager}: ${verdict.threadsManager ? 'ok' : 'OVER'})`,
    )
  }
  process.exitCode = Object.values(verdict).every(Boolean) ? 0 : 1
}
