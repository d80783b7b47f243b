'use strict'
// The README's example is a real service: started as a user would, interrupted with SIGINT (what Ctrl-C
// sends) during a slow request, it must finish that request, stop, and exit 0.

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')

const EXAMPLE = path.join(__dirname, '..', 'examples', '01-http.js')

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
  const child = spawn(process.execPath, [EXAMPLE], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
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

  assert.deepEqual(await get(port, '/ready'), { status: 200, body: 'ready\n' })
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
  for (const task of ['http', 'jobs', 'database']) assert.match(stdout, new RegExp(`✓ ${task} `))
  assert.match(stdout, /exiting with code 0/)
  await assert.rejects(get(port, '/ready'), { code: 'ECONNREFUSED' }, 'the server no longer accepts')
})

/** Starts an example with a shutdown delay; resolves with its port, its output so far, and its exit. */
async function startExample(file, delay) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', file)], {
    env: { ...process.env, PORT: '0', SHUTDOWN_DELAY_MS: String(delay) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk) => (output += chunk))
  const exited = new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      resolve({ code, signal })
    }),
  )
  const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', () => {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
      if (match) resolve(Number(match[1]))
    })
    child.on('exit', () => reject(new Error(`exited before listening:\n${output}`)))
  })
  return { child, port, exited, output: () => output }
}

for (const file of ['01-http.js', '02-express.js', '03-fastify.js']) {
  test(`${file}: readiness, a kept-alive client and a request in flight through SIGTERM; exit 0`, async () => {
    const delay = 300
    const example = await startExample(file, delay)
    const agent = new http.Agent({ keepAlive: true })
    const viaAgent = (pathname) =>
      new Promise((resolve, reject) =>
        http
          .get({ host: '127.0.0.1', port: example.port, path: pathname, agent }, (res) => {
            let body = ''
            res.setEncoding('utf8').on('data', (chunk) => (body += chunk))
            res.on('end', () => resolve({ status: res.statusCode, body, connection: res.headers.connection }))
          })
          .on('error', reject),
      )
    assert.equal((await viaAgent('/ready')).status, 200)
    assert.equal((await viaAgent('/?delay=0')).status, 200, 'a kept-alive connection is open')
    const slow = viaAgent('/?delay=800')
    await new Promise((resolve) => setTimeout(resolve, 100))
    process.kill(example.child.pid, 'SIGTERM')
    await new Promise((resolve) => setTimeout(resolve, 50))
    const readiness = await get(example.port, '/ready')
    const duringDelay = await get(example.port, '/?delay=0')
    const response = await slow
    const { code, signal } = await example.exited
    agent.destroy()
    assert.equal(readiness.status, 503, 'not ready once the shutdown started')
    assert.equal(duringDelay.status, 200, 'still serving during the shutdown delay')
    assert.deepEqual([response.status, response.body], [200, 'hello after 800 ms\n'], 'the in-flight request completed')
    assert.equal(signal, null)
    assert.equal(code, 0, example.output())
    assert.match(example.output(), /exiting with code 0/)
  })
}

test('04-where-stuck.js: the report the README shows names the stuck function, its caller, and their lines', async () => {
  const file = path.join(__dirname, '..', 'examples', '04-where-stuck.js')
  const source = fs.readFileSync(file, 'utf8').split('\n')
  const lineOf = (text) => source.findIndex((l) => l.includes(text)) + 1
  const { code, stderr } = await new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'ignore', 'pipe'] })
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
    child.on('close', (code) => {
      clearTimeout(killer)
      resolve({ code, stderr })
    })
  })
  assert.equal(code, 124, stderr)
  const frames = stderr.split('\n').filter((l) => l.startsWith('titan-lifecycle:     '))
  assert.deepEqual(
    frames.slice(0, 2).map((l) => l.replace(/\(.*\//, '(')),
    [
      `titan-lifecycle:     at isSafeHeader (04-where-stuck.js:${lineOf('return /^(\\w+\\s?)+$/')}:24)`,
      `titan-lifecycle:     at flushAuditLog (04-where-stuck.js:${lineOf('if (!isSafeHeader(')}:10)`,
    ],
  )
  // The package's own frames below them, summed up in one line.
  assert.match(frames[2], /^titan-lifecycle: {5}\.\.\. \d+ frames inside titan-lifecycle$/)
  assert.equal(frames.length, 3)
  // The README shows this very report.
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')
  for (const frame of frames.slice(0, 2)) {
    assert.ok(readme.includes(frame.replace(/\(.*\//, '(/srv/app/examples/')), `README shows ${frame}`)
  }
})
