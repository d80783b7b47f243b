'use strict'
// The helpers other tests trust to tell whether a process runs: the /proc reading used on Linux and the ps
// reading used where there is no /proc (macOS) must agree, for a running process, a zombie and a reaped one.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const { isRunning, isRunningByPs, waitFor, onLinux } = require('./helpers.cjs')

test(
  'isRunning and its ps reading agree on a running process, a zombie and a reaped one',
  onLinux('/proc'),
  async () => {
    // The shell starts a short sleep, prints its pid, and becomes a long sleep that never reaps it: a zombie.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] })
    const killTimer = setTimeout(() => parent.kill('SIGKILL'), 20_000)
    try {
      const zombie = Number(await new Promise((resolve) => parent.stdout.once('data', (d) => resolve(String(d)))))
      assert.ok(zombie > 0)
      assert.equal(isRunning(parent.pid), true)
      assert.equal(isRunningByPs(parent.pid), true)
      await waitFor(() => !isRunning(zombie), 5000, 'the short sleep to exit')
      assert.equal(isRunningByPs(zombie), false, 'a zombie does not run')
      const exited = new Promise((resolve) => parent.once('exit', resolve))
      parent.kill('SIGKILL')
      await exited
      // Reaped by this process: no such process any more.
      assert.equal(isRunning(parent.pid), false)
      assert.equal(isRunningByPs(parent.pid), false)
    } finally {
      clearTimeout(killTimer)
      parent.kill('SIGKILL')
    }
  },
)
