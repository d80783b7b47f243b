'use strict'
// Deadline precision with a blocked event loop: a shutdown task runs `while (true) {}`, SIGTERM arrives, and
// the 300 ms deadline must end the process anyway. Two figures per run:
// - watchdog lateness: how late the watchdog itself was at the deadline, from its own report (includes
//   the 20 ms it waits for JavaScript to answer: the loop is blocked, so it never does);
// - observed lateness: when this process saw the child exit, minus (the kill + 300 ms); this adds the
//   kill-to-handler time and this process's own wake-up and reaping.
//
//   node bench/deadline.cjs [--runs N] [--node PATH] [--json]

const path = require('node:path')
const { start, kill } = require('../__test__/helpers.cjs')

const args = process.argv.slice(2)
const runs = Number(args[args.indexOf('--runs') + 1]) || 20
const node = args.includes('--node') ? args[args.indexOf('--node') + 1] : process.execPath
const DEADLINE = 300
const GRACE = 20

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return { median: sorted[Math.floor(sorted.length / 2)], worst: sorted[sorted.length - 1], best: sorted[0] }
}

async function main() {
  const watchdog = []
  const observed = []
  const codes = {}
  for (let i = 0; i < runs; i++) {
    const child = start(path.join(__dirname, '..', '__test__', 'fixtures', 'blocked.cjs'), ['in-task', DEADLINE], { node })
    await child.ready
    const sentAt = kill(child.child, 'SIGTERM')
    const { code, stderr, exitedAt } = await child.exited
    codes[code] = (codes[code] ?? 0) + 1
    const past = /\(([\d.]+) ms past the deadline\)/.exec(stderr)
    if (past) watchdog.push(Number(past[1]))
    observed.push(exitedAt - sentAt - DEADLINE)
  }
  const result = { runs, deadlineMs: DEADLINE, graceMs: GRACE, exitCodes: codes, watchdog: stats(watchdog), observed: stats(observed) }
  if (args.includes('--json')) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n')
    return
  }
  const f = (x) => x.toFixed(2)
  console.log(`deadline precision, blocked loop, ${runs} runs, ${DEADLINE} ms deadline, node ${node === process.execPath ? process.version : node}`)
  console.log(`  exit codes: ${JSON.stringify(codes)}`)
  console.log(`  watchdog lateness (its report, includes the ${GRACE} ms grace): median ${f(result.watchdog.median)} ms, worst ${f(result.watchdog.worst)} ms`)
  console.log(`  observed lateness (kill + ${DEADLINE} ms to exit seen here):    median ${f(result.observed.median)} ms, worst ${f(result.observed.worst)} ms`)
}

main()
