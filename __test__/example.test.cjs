'use strict'
// The README's example is a real service: started as a user would, interrupted with SIGINT (what Ctrl-C
// sends) during a slow request, it must finish that request, stop, and exit 0.

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const path = require('node:path')
const { spawn } = require('node:child_process')

const EXAMPLE = path.join(__dirname, '..', 'examples', '01-http-service.js')

function get(port, pathname) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: pathname, agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => (body += chunk))
        res.on('end', () => resolve({ status: res.statusCode, body }))
      })
      .on('error', reject)
  })
}

test('the example service drains an in-flight request on SIGINT and exits 0', async () => {
  const child = spawn(process.execPath, [EXAMPLE], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  let stdout = ''
  child.stdout.setEncoding('utf8')
  const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      stdout += chunk
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)
      if (match) resolve(Number(match[1]))
    })
    child.on('exit', () => reject(new Error(`exited before listening:\n${stdout}`)))
  })
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))

  assert.deepEqual(await get(port, '/health'), { status: 200, body: 'ok\n' })
  const slow = get(port, '/?delay=600')
  await new Promise((resolve) => setTimeout(resolve, 150))
  process.kill(child.pid, 'SIGINT')
  const response = await slow
  const { code, signal } = await exited
  clearTimeout(killer)

  assert.deepEqual(response, { status: 200, body: 'hello after 600 ms\n' }, 'the in-flight request completed')
  assert.equal(signal, null)
  assert.equal(code, 0, stdout)
  assert.match(stdout, /shutdown started \(reason SIGINT/)
  for (const task of ['readiness', 'http', 'jobs', 'database']) assert.match(stdout, new RegExp(`✓ ${task} `))
  assert.match(stdout, /exiting with code 0/)
  await assert.rejects(get(port, '/health'), { code: 'ECONNREFUSED' }, 'the server no longer accepts')
})
