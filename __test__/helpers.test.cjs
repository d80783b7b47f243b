'use strict'
// The helpers other tests trust to tell whether a process runs. Off Linux, isRunning reads ps; on Linux it
// reads /proc, and there the two must agree. Checked on a running process, a zombie and a reaped one.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { spawn, execFileSync } = require('node:child_process')
const { isRunning, isRunningByPs, needs, waitFor } = require('./helpers.cjs')

test(
  'isRunning, and its ps reading, on a running process, a zombie and a reaped one',
  needs('ps', 'sh', 'sleep'),
  async () => {
    // The shell starts a short sleep, prints its pid, and becomes a long sleep that never reaps it: a zombie.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] })
    const killTimer = setTimeout(() => parent.kill('SIGKILL'), 20_000)
    try {
      const zombie = Number(await new Promise((resolve) => parent.stdout.once('data', (d) => resolve(String(d)))))
      assert.ok(zombie > 0)
      for (const running of [isRunning, isRunningByPs]) assert.equal(running(parent.pid), true, running.name)
      await waitFor(() => !isRunningByPs(zombie), 5000, 'the short sleep to exit')
      // It is a zombie, not gone: its parent has not reaped it (read from /proc on Linux, from ps elsewhere,
      // so the zombie case of the ps reading is checked against the ps it runs with).
      const state =
        process.platform === 'linux'
          ? /^\d+ \(.*\) (\S)/s.exec(fs.readFileSync(`/proc/${zombie}/stat`, 'utf8'))[1]
          : execFileSync('ps', ['-o', 'stat=', '-p', String(zombie)], { encoding: 'utf8' }).trim()[0]
      assert.equal(state, 'Z', 'the short sleep is a zombie')
      assert.equal(isRunning(zombie), false)
      const exited = new Promise((resolve) => parent.once('exit', resolve))
      parent.kill('SIGKILL')
      await exited
      // Reaped by this process: no such process any more.
      for (const running of [isRunning, isRunningByPs]) assert.equal(running(parent.pid), false, running.name)
    } finally {
      clearTimeout(killTimer)
      parent.kill('SIGKILL')
    }
  },
)
