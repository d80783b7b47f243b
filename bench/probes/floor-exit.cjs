'use strict'
// The floor of the hard exit: a process whose event loop is blocked, ended by a bare native thread (the
// bench's floor addon) that calls `_exit` at a CLOCK_MONOTONIC instant. It chooses the instant itself,
// argv[3] ms after an idle pause of argv[4] ms from its ready line, and reports it there; the bench takes the
// floor's lateness as it takes titan-lifecycle's, up to when this process was seen to exit. Ours also counts
// from the kill (the signal's delivery and the deadline's arming are in it), the floor from its own instant:
// the difference can only make ours read later than it is.
const [addon, deadlineMs, idleMs] = process.argv.slice(2)
const { exitAt } = require(addon)
const { report } = require('../../__test__/fixtures/report.cjs')

const now = Number(process.hrtime.bigint()) / 1e6
const at = now + Number(idleMs) + Number(deadlineMs)
exitAt(at, 124)
report('ready', { pid: process.pid, exitAt: at })
setTimeout(() => {
  while (true) {}
}, Number(idleMs))
