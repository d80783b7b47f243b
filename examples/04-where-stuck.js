'use strict'
// What the hard exit says when a shutdown task gets the event loop stuck: the service below flushes an audit
// log at shutdown, and one entry sends its header check into a regular expression that backtracks for ever.
// No JavaScript timer can fire then; the native watchdog ends the process at the deadline anyway, and its
// report shows the function, file and line the loop was stuck in.
//
//   node examples/04-where-stuck.js      signals itself once it is up; exits with code 124 after 1 s

const { ShutdownManager } = require('titan-lifecycle')

const manager = new ShutdownManager({ gracefulShutdownTimeout: 1000 })

const auditLog = ['GET /health', 'POST /orders', `PUT /orders/42 ${'a'.repeat(40)}!`]

/** A header check with nested quantifiers: fine for short input, exponential for a long almost-match. */
function isSafeHeader(value) {
  return /^(\w+\s?)+$/.test(value)
}

function flushAuditLog() {
  for (const entry of auditLog) {
    if (!isSafeHeader(entry.split(' ').pop())) continue
  }
}

manager.registerTask({ id: 'audit-log', name: 'flush the audit log', handler: flushAuditLog })
manager.registerTask({ id: 'database', phase: 'destroy', handler: () => {} })

setInterval(() => {}, 1000) // the service's work
setTimeout(() => process.kill(process.pid, 'SIGTERM'), 100)
