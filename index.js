'use strict'

// titan-lifecycle: phased graceful shutdown with native signal ownership and a watchdog hard exit.
// This file is the public surface; the generated native loader is binding.js.

const { ShutdownManager } = require('./lib/manager')
const { ShutdownReason, ShutdownPriority, ShutdownEvent, ShutdownPhase } = require('./lib/constants')

const ApplicationEvent = ShutdownEvent

module.exports = {
  ShutdownManager,
  ShutdownReason,
  ShutdownPriority,
  ShutdownEvent,
  ShutdownPhase,
  ApplicationEvent,
}
