'use strict'
// One line saying what machine a generated report was measured on, for docs/benchmarks.md and
// docs/reliability.md alike.

const os = require('node:os')

function describeMachine() {
  const cpus = os.cpus()
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${os.type()} ${os.release()}`
}

module.exports = { describeMachine }
