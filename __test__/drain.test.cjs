'use strict'
// trackServer() drains with real sockets: keep-alive clients idle and busy, a slow request in flight at
// SIGTERM, requests arriving during the shutdown delay and the drain, an HTTP/2 session, an upgraded
// connection and a raw TCP client. No request fails, every connection closes, and the process exits 0 long
// before its deadline. A request that never ends is cut at the drain timeout, and the destroy phase keeps
// its reserve of time.

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const http2 = require('node:http2')
const net = require('node:net')
const { start, kill, find, now, needs, waitFor, within } = require('./helpers.cjs')
const { ShutdownManager } = require('..')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function get(port, path, agent) {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => (body += chunk))
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            connection: res.headers.connection,
            cookies: res.headers['set-cookie'],
            body,
            at: now(),
          }),
        )
      })
      .on('error', (error) => resolve({ error: error.code ?? error.message, at: now() }))
  })
}

/** A socket's end, as the client sees it. */
const closed = (socket) => new Promise((resolve) => socket.once('close', () => resolve(now())))

/** The status line a raw connection got before it closed ('' for none). */
const statusLine = (socket) =>
  new Promise((resolve) => {
    let got = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk) => (got += chunk))
    socket.on('error', () => {})
    socket.on('close', () => resolve(got.split('\r\n')[0]))
  })

test('a drain under SIGTERM fails no request, closes every connection and exits 0 early', async () => {
  // The delay and the slow requests leave this process hundreds of milliseconds for each step it must take
  // within one of them (a process not scheduled for 50 ms is common on 2 busy cores).
  const deadline = 15_000
  const fixture = start('drain-service.cjs', [JSON.stringify({ deadline, delay: 1000, closeUpgraded: true })])
  const { web, h2, tcp } = await fixture.ready

  // Keep-alive connections: two idle, and one that stays busy through the shutdown delay.
  const idleAgent = new http.Agent({ keepAlive: true, maxSockets: 2 })
  await Promise.all([get(web, '/fast', idleAgent), get(web, '/fast', idleAgent)])
  const idleSockets = Object.values(idleAgent.freeSockets).flat()
  assert.equal(idleSockets.length, 2)
  const idleClosed = idleSockets.map(closed)
  const busyAgent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  await get(web, '/fast', busyAgent)

  // A slow request in flight at SIGTERM, on its own keep-alive connection.
  const slowAgent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const slow = get(web, '/slow?ms=2000', slowAgent)

  // A raw connection with a request half sent: the rest arrives during the drain.
  const raw = net.connect(web, '127.0.0.1')
  let rawResponse = ''
  raw.setEncoding('utf8').on('data', (chunk) => (rawResponse += chunk))
  const rawClosed = closed(raw)
  raw.write('GET /fast HTTP/1.1\r\nHost: x\r\n')

  // HTTP/2: a session with a slow stream in flight.
  const session = http2.connect(`http://127.0.0.1:${h2}`)
  const sessionClosed = closed(session)
  const goaways = []
  session.on('goaway', (errorCode, lastStreamID) => goaways.push(lastStreamID))
  const h2Response = new Promise((resolve) => {
    const stream = session.request({ ':path': '/slow?ms=1800' })
    let body = ''
    stream.setEncoding('utf8').on('data', (chunk) => (body += chunk))
    stream.on('end', () => resolve(body))
    stream.on('error', (error) => resolve(`error ${error.code}`))
  })

  // An upgraded connection.
  const upgraded = net.connect(web, '127.0.0.1')
  let upgradedData = ''
  upgraded.setEncoding('utf8').on('data', (chunk) => (upgradedData += chunk))
  const upgradedClosed = closed(upgraded)
  upgraded.write('GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')

  // A raw TCP client that finishes its exchange shortly after the signal.
  const tcpClient = net.connect(tcp, '127.0.0.1')
  let tcpEcho = ''
  tcpClient.setEncoding('utf8').on('data', (chunk) => (tcpEcho += chunk))
  const tcpClosed = closed(tcpClient)
  await sleep(100)

  const sentAt = kill(fixture.child, 'SIGTERM')
  // During the shutdown delay (1000 ms) the service keeps serving, every response closing its connection:
  // from the moment the service has heard of the signal (a response written before that is still kept alive).
  await waitFor(() => find(fixture.lines, 'readiness-at-start'), 2000, 'the shutdown to start')
  const startedAt = find(fixture.lines, 'readiness-at-start').at
  const duringDelay = []
  while (now() - startedAt < 600) {
    duringDelay.push(await get(web, '/fast', busyAgent))
    await sleep(20)
  }
  const readiness = await get(web, '/ready')
  tcpClient.end('bye\n')
  // The drain has begun (the delay is over): the half-sent request is completed now.
  await sleep(Math.max(0, startedAt + 1100 - now()))
  raw.write('\r\n')

  const result = await fixture.exited
  const slowResult = await slow
  await Promise.all([...idleClosed, rawClosed, sessionClosed, upgradedClosed, tcpClosed])

  assert.equal(result.code, 0, result.stderr)
  assert.ok(result.exitedAt - sentAt < deadline / 3, `exited ${(result.exitedAt - sentAt).toFixed(0)} ms after SIGTERM`)
  assert.equal(
    find(result.lines, 'readiness-at-start').isReady,
    false,
    'not ready from the instant the shutdown started',
  )
  assert.equal(readiness.status, 503)
  assert.ok(duringDelay.length >= 5)
  for (const response of duringDelay) {
    assert.equal(response.status, 200, JSON.stringify(response))
    assert.equal(response.connection, 'close')
  }
  assert.deepEqual([slowResult.status, slowResult.body, slowResult.connection], [200, 'slow 2000\n', 'close'])
  assert.match(rawResponse, /^HTTP\/1\.1 200 OK\r\n/)
  assert.match(rawResponse, /\r\nConnection: close\r\n/i)
  assert.equal(await h2Response, 'h2 /slow\n')
  // Two steps (RFC 9113, 6.8): a GOAWAY that refuses no stream, then the one naming the last stream seen.
  // From Node 24 on, the server's own close() sent only the second.
  assert.equal(goaways[0], 2 ** 31 - 1, `GOAWAYs: ${goaways}`)
  assert.ok(goaways.length > 1 && goaways.slice(1).every((id) => id === 1), `GOAWAYs: ${goaways}`)
  assert.match(upgradedData, /101 Switching Protocols[\s\S]*bye$/, 'closeUpgraded said goodbye')
  // Closed by the drain as it began, not by the process's exit (which would close them too, after the slow
  // request's response).
  for (const closedAt of await Promise.all(idleClosed)) {
    assert.ok(closedAt < slowResult.at, 'an idle connection was closed while the slow request still ran')
  }
  assert.equal(tcpEcho, 'bye\n', 'the raw TCP exchange finished')
  // The stop tasks ran before the destroy task, and each completed.
  const completed = result.lines.filter((l) => l.event === 'shutdown:task:complete').map((l) => l.taskId)
  assert.deepEqual(completed.slice(-1), ['db'])
  assert.deepEqual(completed.slice(0, -1).sort(), ['h2', 'tcp', 'web'])
  assert.ok(!find(result.lines, 'event', { event: 'shutdown:task:error' }))
})

test('a request that never ends is cut at the drain timeout, and the shutdown finishes in order', async () => {
  const fixture = start('drain-service.cjs', [JSON.stringify({ deadline: 5000, drainTimeout: 400 })])
  const { web } = await fixture.ready
  const hanging = get(web, '/hang', new http.Agent({ keepAlive: true }))
  await waitFor(() => find(fixture.lines, 'hanging'), 5000, 'the request to reach the service')
  const sentAt = kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  assert.equal(result.code, 1, 'a task failed')
  assert.ok(result.exitedAt - sentAt < 2000, `exited ${(result.exitedAt - sentAt).toFixed(0)} ms after SIGTERM`)
  const error = find(result.lines, 'event', { event: 'shutdown:task:error', taskId: 'web' })
  assert.equal(error.error.code, 'ERR_DRAIN_TIMEOUT')
  assert.match(error.error.message, /server 'web' did not drain in time: cut 1 request in flight and 1 connection/)
  assert.ok(find(result.lines, 'task-end', { id: 'db' }), 'the destroy phase ran after the cut')
  assert.ok((await hanging).error, 'the hanging request was cut')
})

test('an application listener that throws as the shutdown begins closing a server is logged; every server drains', async () => {
  // Beginning to close adds listeners to each server, which runs the application's 'newListener' listeners.
  // One that threw used to escape the shutdown that had begun: SIGTERM exited 1 at once, nothing drained
  // and the destroy phase never ran (and a stop() left a run that never finished).
  const fixture = start('drain-service.cjs', [JSON.stringify({ deadline: 5000, throwOnClosing: true })])
  const { web } = await fixture.ready
  assert.equal((await get(web, '/fast', new http.Agent({ keepAlive: true }))).status, 200)
  const sentAt = kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  assert.equal(result.code, 0, result.stderr)
  assert.ok(result.exitedAt - sentAt < 3000, `exited ${(result.exitedAt - sentAt).toFixed(0)} ms after SIGTERM`)
  const logged = result.lines.find((l) => l.kind === 'error-log')
  assert.match(
    logged?.message ?? '',
    /server 'web' could not begin closing its connections; its drain goes on: newListener hook failed/,
  )
  for (const taskId of ['web', 'h2', 'tcp']) {
    assert.ok(find(result.lines, 'event', { event: 'shutdown:task:complete', taskId }), `'${taskId}' drained`)
  }
  assert.ok(find(result.lines, 'task-end', { id: 'db' }), 'the destroy phase ran')
})

test('a server whose close() an application listener breaks still stops listening, with a warning', async (t) => {
  // http.Server#close() adds its callback as a 'close' listener before it closes the listening socket: an
  // application's 'newListener' listener that threw there left the server accepting after a drain that
  // reported success.
  const server = http.createServer((req, res) => res.end('ok'))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false, logger: { error() {} } })
  manager.trackServer(server, { id: 'web' })
  server.on('newListener', () => {
    if (manager.isShuttingDown) throw new Error('newListener hook failed')
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  // A failed check must not leave the test process held by a server still listening.
  t.after(() => server.listening && server.close())
  const { port } = server.address()
  const warnings = []
  const onWarning = (warning) => warnings.push(warning)
  process.on('warning', onWarning)
  t.after(() => process.removeListener('warning', onWarning))
  const result = await manager.stop({ timeout: 2000 })
  assert.equal(result.tasks.find((task) => task.id === 'web')?.status, 'succeeded')
  assert.equal(server.listening, false, 'the server no longer listens')
  const refused = await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('connect', () => resolve(socket.destroy() && 'connected'))
    socket.on('error', (error) => resolve(error.code))
  })
  assert.equal(refused, 'ECONNREFUSED')
  await waitFor(() => warnings.length > 0, 2000, 'the warning')
  assert.equal(warnings[0].code, 'TITAN_LIFECYCLE_SERVER_CLOSE')
  assert.match(warnings[0].message, /server 'web' could not be closed with a callback \(newListener hook failed\)/)
})

test('a response still being written when the drain starts, or ending during it, reaches its client whole', async (t) => {
  // Node's closeIdleConnections() (which close() runs too) takes a connection whose response has ended for
  // idle, though the body is still being written, and destroys it: a slow client's download was cut.
  // Larger than what the kernel's socket buffers hold (several MB each way on loopback), so the server is
  // still writing while the client reads.
  const SIZE = 24 * 1024 * 1024
  const body = Buffer.alloc(SIZE, 97)
  let lastWrittenAt = 0
  const server = http.createServer((req, res) => {
    if (req.url === '/small') return res.end('ok')
    res.setHeader('Content-Length', SIZE)
    // 'finish': the whole body is handed to the kernel.
    res.on('finish', () => (lastWrittenAt = Math.max(lastWrittenAt, now())))
    if (req.url === '/now') res.end(body)
    else setTimeout(() => res.end(body), 150)
  })
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  manager.trackServer(server, { id: 'web', drainTimeout: 20_000 })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    server.closeAllConnections()
    if (server.listening) server.close()
  })
  const { port } = server.address()
  // A client that reads slowly, so the server's writes wait on it; resolves with the bytes it got.
  const download = (path, onFirstBytes = () => {}) =>
    new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`))
      let received = 0
      socket.on('data', (chunk) => {
        if (received === 0) onFirstBytes()
        received += chunk.length
        socket.pause()
        setTimeout(() => socket.resume(), 2)
      })
      socket.on('close', () => resolve(received))
    })
  // A kept-alive connection, idle once its small response is in: closed while the downloads still run
  // (Node's closeIdleConnections() cannot be used then, and it used to wait for them).
  const idle = net.connect(port, '127.0.0.1', () => idle.write('GET /small HTTP/1.1\r\nHost: x\r\n\r\n'))
  await new Promise((resolve) => idle.once('data', resolve))
  const idleClosed = new Promise((resolve) => idle.once('close', () => resolve(now())))
  // Two connections whose requests are on their way while the bodies are written out: one has sent half
  // its headers (Node's parser knows a request has begun), one nothing yet (a pre-connection, whose
  // request comes after the drain began). Both were destroyed when the drain judged connections by what
  // they read while a body was being written.
  const partial = net.connect(port, '127.0.0.1', () => partial.write('GET /small HTTP/1.1\r\nHost: x\r\n'))
  const preconnected = net.connect(port, '127.0.0.1')
  const answers = Promise.all([statusLine(partial), statusLine(preconnected)])
  await Promise.all([partial, preconnected].map((socket) => new Promise((resolve) => socket.once('connect', resolve))))
  const endingLater = download('/later')
  let stopped
  const underWay = download('/now', () => {
    stopped = manager.stop({ timeout: 30_000 })
    setTimeout(() => partial.write('\r\n'), 100)
    setTimeout(() => preconnected.write('GET /small HTTP/1.1\r\nHost: x\r\n\r\n'), 300)
  })
  const [nowBytes, laterBytes] = await within(20_000, 'the two downloads', Promise.all([underWay, endingLater]))
  assert.deepEqual(await within(5000, 'the two late requests', answers), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK'])
  const idleClosedAt = await within(5000, 'the idle connection closing', idleClosed)
  assert.ok(lastWrittenAt > 0 && idleClosedAt < lastWrittenAt, 'the idle connection closed while bodies were written')
  // The body and its headers (about 100 bytes).
  assert.ok(nowBytes > SIZE && nowBytes < SIZE + 300, `the response under way at the drain: ${nowBytes} bytes`)
  assert.ok(laterBytes > SIZE && laterBytes < SIZE + 300, `the response ended during the drain: ${laterBytes} bytes`)
  const result = await stopped
  assert.equal(result.tasks.find((task) => task.id === 'web')?.status, 'succeeded')
  assert.equal(server.listening, false)
})

test('a drain and a stop task that never end still leave the destroy phase its reserve before the deadline', async () => {
  const deadline = 2000
  const fixture = start('drain-service.cjs', [JSON.stringify({ deadline, reserve: 600, neverEndingStopTask: true })])
  const { web } = await fixture.ready
  // A request that is never answered: without a drainTimeout, the drain would never end.
  const hanging = get(web, '/hang', new http.Agent({ keepAlive: true }))
  await waitFor(() => find(fixture.lines, 'hanging'), 5000, 'the request to reach the service')
  const sentAt = kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  assert.equal(result.code, 1, `a task timed out, and the process was not hard-exited\n${result.stderr}`)
  const dbEnd = find(result.lines, 'task-end', { id: 'db' })
  assert.ok(dbEnd, 'the destroy task finished')
  assert.ok(dbEnd.at - sentAt < deadline, `it finished ${(dbEnd.at - sentAt).toFixed(0)} ms after SIGTERM`)
  assert.ok(dbEnd.at - sentAt >= deadline - 600 - 50, 'it started once the reserve came')
  const stuck = find(result.lines, 'event', { event: 'shutdown:task:error', taskId: 'stuck' })
  assert.equal(stuck?.timedOut, true)
  assert.match(stuck.error.message, /was stopped to keep 600 ms for the destroy phase/)
  const complete = find(result.lines, 'event', { event: 'shutdown:complete' })
  assert.equal(complete.hardExit, false)
  const drain = find(result.lines, 'event', { event: 'shutdown:task:error', taskId: 'web' })
  assert.equal(drain?.error.code, 'ERR_DRAIN_TIMEOUT', 'the drain reported what it cut before the reserve came')
  assert.match(drain.error.message, /cut 1 request in flight/)
  assert.ok((await hanging).error, 'the hanging request was cut')
})

test('an async closeUpgraded that rejects is warned of as a throw is, and leaves no unhandled rejection', async (t) => {
  const server = http.createServer((req, res) => res.end('ok'))
  server.on('upgrade', (req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n'))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.listening && server.close())
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false, logger: { error() {} } })
  manager.trackServer(server, {
    drainTimeout: 200,
    closeUpgraded: async () => {
      throw new Error('socket already gone')
    },
  })
  const client = net.connect(server.address().port, '127.0.0.1')
  let switched = ''
  client.setEncoding('utf8').on('data', (chunk) => (switched += chunk))
  client.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
  await waitFor(() => switched.includes('101'), 5000, 'the upgrade')
  const warnings = []
  const unhandled = []
  const onWarning = (warning) => warnings.push(warning)
  const onUnhandled = (reason) => unhandled.push(reason)
  process.on('warning', onWarning)
  process.on('unhandledRejection', onUnhandled)
  t.after(() => {
    process.off('warning', onWarning)
    process.off('unhandledRejection', onUnhandled)
  })
  const result = await manager.stop()
  const web = result.tasks.find((task) => task.id === 'http-server')
  assert.equal(web.error?.code, 'ERR_DRAIN_TIMEOUT', 'the drain cut the connection closeUpgraded left open')
  await sleep(20) // warnings are emitted on the next tick, unhandled rejections after the microtasks
  assert.deepEqual(unhandled, [])
  const warning = warnings.find((w) => w.code === 'TITAN_LIFECYCLE_CLOSE_UPGRADED')
  assert.match(warning?.message ?? '', /closeUpgraded threw for server 'http-server': socket already gone/)
})

test('a closeUpgraded that throws something unprintable is warned of, and the drain still cuts what is left', async () => {
  const server = http.createServer((req, res) => res.end('ok'))
  server.on('upgrade', (req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n'))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false, logger: { error() {} } })
  manager.trackServer(server, {
    drainTimeout: 200,
    closeUpgraded: () => {
      // No toString (a template literal with it throws), and an inspect of its own that throws.
      throw Object.assign(Object.create(null), {
        [Symbol.for('nodejs.util.inspect.custom')]() {
          throw new Error('cannot inspect')
        },
      })
    },
  })
  const client = net.connect(server.address().port, '127.0.0.1')
  const clientClosed = closed(client)
  let switched = ''
  client.setEncoding('utf8').on('data', (chunk) => (switched += chunk))
  client.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
  await waitFor(() => switched.includes('101'), 5000, 'the upgrade')
  const warnings = []
  const onWarning = (warning) => warnings.push(warning)
  process.on('warning', onWarning)
  try {
    const started = now()
    const result = await manager.stop()
    const web = result.tasks.find((t) => t.id === 'http-server')
    assert.equal(web.error?.code, 'ERR_DRAIN_TIMEOUT', `the drain cut the upgraded connection: ${web.error?.message}`)
    assert.match(web.error.message, /cut 0 requests in flight and 1 connection/)
    const closedAt = await Promise.race([clientClosed, sleep(3000).then(() => Infinity)])
    assert.ok(closedAt - started >= 190 && closedAt - started < 3000, 'the connection was cut at the drain timeout')
    await sleep(10) // warnings are emitted on the next tick
    const warning = warnings.find((w) => w.code === 'TITAN_LIFECYCLE_CLOSE_UPGRADED')
    assert.match(
      warning?.message ?? '',
      /closeUpgraded threw for server 'http-server': a thrown object that cannot be printed/,
    )
  } finally {
    process.off('warning', onWarning)
  }
})

test('unregistering a tracked server untracks it: its listeners come off and a shutdown leaves it serving', async () => {
  const server = http.createServer((req, res) => res.end('ok'))
  server.on('upgrade', (req, socket) => socket.end())
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const events = ['connection', 'request', 'upgrade', 'newListener', 'removeListener']
  const counts = () => events.map((event) => `${event} ${server.listenerCount(event)}`)
  const before = counts()
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  const id = manager.trackServer(server)
  const agent = new http.Agent({ keepAlive: true })
  assert.equal((await get(server.address().port, '/', agent)).status, 200, 'served while tracked')
  await sleep(10) // the upgrade recorder is put on the next tick
  assert.notDeepEqual(counts(), before, 'tracking added listeners')
  assert.equal(manager.unregisterTask(id), true)
  assert.deepEqual(counts(), before, 'every listener the tracker added came off')
  const result = await manager.stop()
  assert.deepEqual(result.tasks, [], 'no drain task ran')
  assert.equal(server.listening, true, 'the server was not closed')
  const after = await get(server.address().port, '/', agent)
  assert.equal(after.status, 200)
  assert.equal(after.connection, 'keep-alive', 'responses do not close their connections')
  agent.destroy()
  await new Promise((resolve) => server.close(resolve))
})

test('trackServer refuses what is not a server, a taken id and a shutdown in progress; a closed server is fine', async () => {
  const manager = new ShutdownManager({ disableGracefulShutdown: true })
  for (const bad of [undefined, {}, 'server', new (require('node:events').EventEmitter)()]) {
    assert.throws(() => manager.trackServer(bad), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  }
  assert.throws(() => manager.trackServer(http.createServer(), { drainTimeout: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => manager.trackServer(http.createServer(), { closeUpgraded: 1 }), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.equal(manager.trackServer(http.createServer()), 'http-server', 'a server never listened on')
  assert.throws(() => manager.trackServer(http.createServer()), { code: 'ERR_TASK_EXISTS' })
  assert.equal(manager.trackServer(http.createServer(), { id: 'admin' }), 'admin')
  const stopping = manager.stop({ timeout: 2000 })
  assert.throws(() => manager.trackServer(http.createServer(), { id: 'during' }), { code: 'ERR_SHUTDOWN_IN_PROGRESS' })
  const result = await stopping
  assert.equal(result.exitCode, 0)
  assert.deepEqual(
    result.tasks.map((t) => t.status),
    ['succeeded', 'succeeded'],
  )
  assert.throws(() => manager.trackServer(http.createServer(), { id: 'late' }), { code: 'ERR_SHUTDOWN_COMPLETED' })
})

test('a shutdown delay that leaves the tasks too little of the deadline is refused at construction', () => {
  assert.throws(
    () => new ShutdownManager({ disableGracefulShutdown: true, gracefulShutdownTimeout: 1000, shutdownDelay: 900 }),
    {
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
    },
  )
  assert.throws(
    () => new ShutdownManager({ disableGracefulShutdown: true, gracefulShutdownTimeout: 1000, destroyReserve: 1000 }),
    {
      code: 'ERR_OUT_OF_RANGE',
    },
  )
  new ShutdownManager({ disableGracefulShutdown: true, gracefulShutdownTimeout: 1000, shutdownDelay: 800 })
})

/** A self-signed key and certificate for localhost, made once per test process with openssl. */
function certificate() {
  const fs = require('node:fs')
  const os = require('node:os')
  const path = require('node:path')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-lifecycle-tls-'))
  const key = path.join(dir, 'key.pem')
  const cert = path.join(dir, 'cert.pem')
  require('node:child_process').execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  )
  return { key, cert }
}

/** The TLS fixture (drain-tls.cjs) with a new certificate: its process, its servers' ports, the CA to trust. */
async function startTlsFixture() {
  const { key, cert } = certificate()
  const fixture = start('drain-tls.cjs', [key, cert])
  return { fixture, ports: await fixture.ready, ca: require('node:fs').readFileSync(cert) }
}

/** A TLS connection to the fixture's server on `port` that asks for HTTP/1.1. */
const http1OverTls = (port, ca) =>
  require('node:tls').connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] })

test(
  'TLS: an https server and an HTTP/2 server with HTTP/1 clients (allowHTTP1) drain without failing a request',
  needs('openssl'),
  async () => {
    const https = require('node:https')
    const { fixture, ports, ca } = await startTlsFixture()
    const fetchOver = (port, path, agent) =>
      new Promise((resolve) => {
        https
          .get({ host: '127.0.0.1', servername: 'localhost', port, path, agent, ca }, (res) => {
            let body = ''
            res
              .setEncoding('utf8')
              .on('data', (chunk) => (body += chunk))
              .on('end', () => resolve(`${res.statusCode} ${body.trim()}`))
          })
          .on('error', (error) => resolve(`error ${error.code}`))
      })
    const agents = [ports.https, ports.both].map(() => new https.Agent({ keepAlive: true, ca }))
    // An idle kept-alive connection to each server, and a slow request in flight on another.
    await Promise.all([ports.https, ports.both].map((port, i) => fetchOver(port, '/fast', agents[i])))
    const idle = agents.flatMap((agent) => Object.values(agent.freeSockets).flat())
    assert.equal(idle.length, 2)
    const idleClosed = idle.map(closed)
    const slow = [ports.https, ports.both].map((port) =>
      fetchOver(port, '/slow?ms=800', new https.Agent({ keepAlive: true, ca })),
    )
    const slowEnded = Promise.all(slow).then(() => now())
    const session = http2.connect(`https://127.0.0.1:${ports.both}`, { ca, servername: 'localhost' })
    const h2 = new Promise((resolve) => {
      let body = ''
      const stream = session.request({ ':path': '/slow?ms=600' })
      stream
        .setEncoding('utf8')
        .on('data', (chunk) => (body += chunk))
        .on('end', () => resolve(body.trim()))
      stream.on('error', (error) => resolve(`error ${error.code}`))
    })
    const sessionClosed = closed(session)
    // An HTTP/1 client of the HTTP/2 server whose headers are still arriving when the drain begins (the
    // shutdown delay is 200 ms): it was taken for idle and destroyed.
    const partial = http1OverTls(ports.both, ca)
    const partialAnswer = statusLine(partial)
    await new Promise((resolve) => partial.once('secureConnect', resolve))
    partial.write('GET /fast HTTP/1.1\r\nHost: localhost\r\n')
    await sleep(50)
    const sentAt = kill(fixture.child, 'SIGTERM')
    setTimeout(() => partial.write('\r\n'), 400)
    const result = await fixture.exited
    assert.equal(result.code, 0, result.stderr)
    assert.ok(result.exitedAt - sentAt < 4000, `exited ${(result.exitedAt - sentAt).toFixed(0)} ms after SIGTERM`)
    assert.deepEqual(await Promise.all(slow), ['200 1.1 /slow', '200 1.1 /slow'])
    assert.equal(await h2, '2.0 /slow')
    assert.equal(await partialAnswer, 'HTTP/1.1 200 OK')
    await sessionClosed
    // Closed by the drain as it began, not by the process's exit after the slow responses.
    const slowEndedAt = await slowEnded
    for (const closedAt of await Promise.all(idleClosed)) {
      assert.ok(closedAt < slowEndedAt, 'an idle connection was closed while the slow requests still ran')
    }
    assert.ok(!find(result.lines, 'event', { event: 'shutdown:task:error' }))
  },
)

test(
  'an upgraded HTTP/1 connection of an HTTP/2 server (allowHTTP1) is handed to closeUpgraded, and the drain ends with it',
  needs('openssl'),
  async () => {
    const { fixture, ports, ca } = await startTlsFixture()
    const upgraded = http1OverTls(ports.both, ca)
    let data = ''
    upgraded.setEncoding('latin1').on('data', (chunk) => (data += chunk))
    upgraded.on('error', () => {})
    const upgradedClosed = closed(upgraded)
    upgraded.write('GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
    while (!/101 Switching Protocols/.test(data)) await sleep(10)
    const sentAt = kill(fixture.child, 'SIGTERM')
    const result = await fixture.exited
    // The drain waited for the upgraded connection until its timeout (9 s of the 10 s deadline) and cut it.
    assert.equal(result.code, 0, result.stderr)
    assert.ok(!find(result.lines, 'event', { event: 'shutdown:task:error' }))
    assert.match(data, /bye$/, 'closeUpgraded said goodbye')
    const closedAt = await upgradedClosed
    // The shutdown delay is 200 ms; the goodbye comes as the drain begins.
    assert.ok(closedAt - sentAt < 3000, `closed ${(closedAt - sentAt).toFixed(0)} ms after SIGTERM`)
  },
)

test('a connection announced twice is tracked once, and many connections coming and going leave none behind', async () => {
  // The tracker keeps sockets in a list with their positions (lib/drain.js SocketList): a socket the
  // application announces again must not stay in it for ever (the drain would wait for its timeout), and
  // removals that swap positions must leave the list exact.
  // The connection listener runs twice for the socket announced twice: it answers once.
  const server = net.createServer((socket) => socket.on('data', () => socket.writableEnded || socket.end('bye')))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  manager.trackServer(server, { drainTimeout: 5000 })
  server.on('connection', (socket) => {
    if (!socket.announcedTwice) {
      socket.announcedTwice = true
      server.emit('connection', socket)
    }
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  const talk = () =>
    new Promise((resolve, reject) => {
      const client = net.connect(port, '127.0.0.1', () => client.write('hi'))
      client.on('error', reject).on('close', resolve).resume()
    })
  // Forty connections in waves, closing in their own order (the list swaps on every removal).
  for (let wave = 0; wave < 4; wave++) await Promise.all(Array.from({ length: 10 }, talk))
  // One still open when the shutdown starts: it ends on its own, and the drain ends with it.
  const open = net.connect(port, '127.0.0.1')
  await new Promise((resolve) => open.on('connect', resolve))
  const startedAt = now()
  const stopping = manager.stop({ timeout: 8000 })
  await sleep(100)
  open.end()
  const result = await stopping
  assert.equal(result.exitCode, 0)
  assert.equal(result.tasks.find((t) => t.id === 'http-server')?.status, 'succeeded')
  assert.ok(now() - startedAt < 2000, `the drain took ${(now() - startedAt).toFixed(0)} ms`)
})

test('a raw TCP client that sends nothing is left to end on its own: on a net server the server may speak first', async (t) => {
  const server = net.createServer((socket) => socket.write('hello\n'))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  t.after(() => manager.dispose())
  manager.trackServer(server, { drainTimeout: 8000 })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const client = net.connect(server.address().port, '127.0.0.1')
  await new Promise((resolve) => client.once('data', resolve))
  let closedAt = null
  client.on('close', () => (closedAt = now()))
  const startedAt = now()
  const stopping = manager.stop({ timeout: 10_000 })
  // Past the second of grace an HTTP connection that has sent nothing gets.
  await sleep(1500)
  assert.equal(closedAt, null, `closed ${((closedAt ?? 0) - startedAt).toFixed(0)} ms into the drain`)
  client.end()
  const result = await stopping
  assert.equal(result.tasks.find((task) => task.id === 'http-server')?.status, 'succeeded')
})

test(
  'connections that never sent a byte do not hold the drain: a pre-connection, a TLS client before its handshake',
  needs('openssl'),
  async (t) => {
    // A load balancer's or a browser's pre-connection sends its request later, or never; a stalled TLS client
    // never begins its handshake, so the HTTP layer never sees it. Node's own close waits for both.
    const https = require('node:https')
    const fs = require('node:fs')
    const { key, cert } = certificate()
    const servers = [
      http.createServer((req, res) => res.end('ok')),
      https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => res.end('ok')),
    ]
    const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
    t.after(() => manager.dispose())
    const clients = []
    for (const [i, server] of servers.entries()) {
      manager.trackServer(server, { id: `server-${i}`, drainTimeout: 8000 })
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
      const client = net.connect(server.address().port, '127.0.0.1')
      await new Promise((resolve) => client.on('connect', resolve))
      clients.push(closed(client))
    }
    await sleep(50)
    const started = now()
    const result = await manager.stop()
    assert.deepEqual(
      result.tasks.map((task) => `${task.id} ${task.status}`),
      ['server-0 succeeded', 'server-1 succeeded'],
    )
    // Closed a second into the drain (a request on its way gets that long), not at its 8 s timeout.
    assert.ok(now() - started < 4000, `the drain took ${(now() - started).toFixed(0)} ms`)
    for (const closedAt of await Promise.all(clients)) {
      const after = closedAt - started
      assert.ok(after >= 900 && after < 4000, `closed ${after.toFixed(0)} ms into the drain`)
    }
  },
)

test('an upgrade that arrives while the drain runs is handed to closeUpgraded too', async (t) => {
  const server = http.createServer((req, res) => res.end('ok'))
  server.on('upgrade', (req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n'))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  t.after(() => manager.dispose())
  const handedOver = []
  manager.trackServer(server, {
    drainTimeout: 5000,
    closeUpgraded: (socket, req) => {
      handedOver.push(req.url)
      socket.end()
    },
  })
  const late = net.connect(server.address().port, '127.0.0.1')
  await new Promise((resolve) => late.on('connect', resolve))
  late.resume()
  // Its upgrade request is under way when the drain begins, and complete only well after.
  late.write('GET /late HTTP/1.1\r\nHost: x\r\n')
  await sleep(20)
  const stopping = manager.stop()
  await sleep(100)
  late.write('Connection: Upgrade\r\nUpgrade: echo\r\n\r\n')
  const started = now()
  const result = await stopping
  assert.equal(result.tasks.find((task) => task.id === 'http-server')?.status, 'succeeded')
  assert.deepEqual(handedOver, ['/late'])
  assert.ok(now() - started < 2000, 'the drain ended when closeUpgraded closed it, not at its timeout')
})

test('an HTTP/2 session that connected before trackServer is told to go away and closed by the drain', {
  skip: Number(process.versions.node.split('.')[0]) < 24 && 'Node keeps no list of sessions before Node 24',
}, async (t) => {
  const server = http2.createServer()
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 })
    stream.end('ok')
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const session = http2.connect(`http://127.0.0.1:${server.address().port}`)
  t.after(() => {
    session.destroy()
    server.close()
  })
  const sessionClosed = closed(session)
  await new Promise((resolve) => session.request({ ':path': '/' }).on('end', resolve).resume())
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  t.after(() => manager.dispose())
  manager.trackServer(server, { drainTimeout: 3000 })
  const started = now()
  const result = await manager.stop()
  const web = result.tasks.find((task) => task.id === 'http-server')
  assert.equal(web?.status, 'succeeded', web?.error?.message)
  assert.ok(now() - started < 2000, `the drain took ${(now() - started).toFixed(0)} ms`)
  await sessionClosed
})

test("a server the application closed itself is not closed again: its 'close' listeners run once", async (t) => {
  const server = http.createServer((req, res) => res.end('ok'))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  let closes = 0
  server.on('close', () => closes++)
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  t.after(() => manager.dispose())
  manager.trackServer(server, { drainTimeout: 2000 })
  await new Promise((resolve) => server.close(resolve))
  const result = await manager.stop()
  await sleep(20) // a second 'close' is emitted on the next tick
  assert.equal(result.tasks.find((task) => task.id === 'http-server')?.status, 'succeeded')
  assert.equal(closes, 1)
})

test('a connection accepted before trackServer that upgrades, and a CONNECT tunnel, are handed over; their close ends the drain', async (t) => {
  const server = http.createServer((req, res) => res.end('ok'))
  server.on('upgrade', (req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n'))
  server.on('connect', (req, socket) => socket.write('HTTP/1.1 200 Connection Established\r\n\r\n'))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const client = net.connect(server.address().port, '127.0.0.1')
  await new Promise((resolve) => client.once('connect', resolve))
  await sleep(20) // accepted by the server, untracked
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  t.after(() => manager.dispose())
  const handedOver = []
  manager.trackServer(server, {
    drainTimeout: 3000,
    closeUpgraded: (socket, req) => {
      handedOver.push(req.url)
      socket.end()
    },
  })
  let switched = ''
  client.setEncoding('utf8').on('data', (chunk) => (switched += chunk))
  client.write('GET /early HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
  await waitFor(() => switched.includes('101'), 5000, 'the upgrade')
  client.on('end', () => client.end())
  // A proxy's tunnel, which Node hands to 'connect' rather than 'upgrade'.
  const tunnel = net.connect(server.address().port, '127.0.0.1')
  let established = ''
  tunnel.setEncoding('utf8').on('data', (chunk) => (established += chunk))
  tunnel.write('CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n')
  await waitFor(() => established.includes('200'), 5000, 'the tunnel')
  tunnel.on('end', () => tunnel.end())
  const started = now()
  const result = await manager.stop()
  const web = result.tasks.find((task) => task.id === 'http-server')
  assert.deepEqual(handedOver.sort(), ['/early', 'example.test:443'])
  assert.equal(web?.status, 'succeeded', web?.error?.message)
  assert.ok(now() - started < 2000, `the drain took ${(now() - started).toFixed(0)} ms`)
})

test('during the shutdown delay a handler that says keep-alive itself still closes its connection', async (t) => {
  // setHeader, writeHead's object, its flat array and its array of pairs, with or without a reason: each
  // would override the drain, and a client told keep-alive reuses a connection the drain is about to close.
  // Headers the handler passes to writeHead arrive whole: a proxy's repeated Set-Cookie (on Node 20, once any
  // header had been set with setHeader, only the last of repeated names in writeHead's array was kept).
  const ways = {
    '/set': (res) => res.setHeader('Connection', 'keep-alive'),
    '/removed': (res) => res.removeHeader('Connection'),
    '/object': (res) => res.writeHead(200, { 'Content-Type': 'text/plain', connection: 'Keep-Alive' }),
    '/reason': (res) => res.writeHead(200, 'OK', { Connection: 'keep-alive' }),
    '/no-reason': (res) => res.writeHead(200, undefined, { Connection: 'keep-alive' }),
    '/flat': (res) => res.writeHead(200, ['Content-Type', 'text/plain', 'Connection', 'keep-alive']),
    '/pairs': (res) =>
      res.writeHead(200, [
        ['Content-Type', 'text/plain'],
        ['Connection', 'keep-alive'],
      ]),
    '/cookies': (res) => res.writeHead(200, ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']),
  }
  const server = http.createServer((req, res) => {
    ways[req.url](res)
    res.end('ok')
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false, shutdownDelay: 2000 })
  t.after(() => manager.dispose())
  manager.trackServer(server, { drainTimeout: 3000 })
  const before = await get(port, '/object', new http.Agent({ keepAlive: true }))
  assert.equal(before.connection, 'Keep-Alive', 'before the shutdown the handler has its way')
  const stopping = manager.stop()
  const agents = Object.keys(ways).map(() => new http.Agent({ keepAlive: true }))
  const answers = await Promise.all(Object.keys(ways).map((path, i) => get(port, path, agents[i])))
  assert.deepEqual(
    answers.map((answer) => `${answer.status} ${answer.connection}`),
    Object.keys(ways).map(() => '200 close'),
  )
  assert.deepEqual(answers.at(-1).cookies, ['a=1', 'b=2'], 'every Set-Cookie of the array')
  await sleep(20)
  assert.deepEqual(
    agents.map((agent) => Object.values(agent.freeSockets).flat().length),
    Object.keys(ways).map(() => 0),
    'no client keeps a connection',
  )
  const result = await stopping
  assert.equal(result.tasks.find((task) => task.id === 'http-server')?.status, 'succeeded')
})

test('a response whose headers went out before the shutdown leaves its connection to the next request', async (t) => {
  // Its headers said keep-alive, so its client sends the next request on the same connection at once:
  // that request is answered (with Connection: close), where ending the connection after the response
  // reset it.
  let slowStarted = 0
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    if (req.url === '/slow') slowStarted++
    setTimeout(() => res.end('ok'), req.url === '/slow' ? 400 : 0)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false, shutdownDelay: 2000 })
  t.after(() => manager.dispose())
  manager.trackServer(server, { drainTimeout: 3000 })
  const clients = Array.from({ length: 10 }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const first = await get(port, '/slow', agent)
    const next = await get(port, '/fast', agent)
    return `${first.status} ${first.connection} / ${next.error ?? `${next.status} ${next.connection}`}`
  })
  // Every first response has its headers out (and is still running) when the shutdown starts.
  await waitFor(() => slowStarted === 10, 5000, 'the ten slow requests')
  const stopping = manager.stop()
  assert.deepEqual(await Promise.all(clients), Array(10).fill('200 keep-alive / 200 close'))
  await stopping
})

test('requests pipelined during the shutdown delay are all answered; the connection closes after the last', async (t) => {
  const handled = []
  const server = http.createServer((req, res) => {
    handled.push(req.url)
    setTimeout(() => res.end(`ok ${req.url}\n`), 10)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false, shutdownDelay: 1000 })
  t.after(() => manager.dispose())
  manager.trackServer(server, { drainTimeout: 3000 })
  const stopping = manager.stop()
  const client = net.connect(server.address().port, '127.0.0.1')
  let received = ''
  client.setEncoding('utf8').on('data', (chunk) => (received += chunk))
  const clientClosed = closed(client)
  await new Promise((resolve) => client.on('connect', resolve))
  const request = (path) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`
  client.write(request('/a') + request('/b') + request('/c'))
  await clientClosed
  assert.deepEqual(handled, ['/a', '/b', '/c'])
  // HTTP/1.1 keeps a connection unless a response says close (with or without a keep-alive header).
  const connection = (response) => (/^connection: close/im.test(response) ? 'close' : 'kept')
  const responses = received.split('HTTP/1.1 ').slice(1)
  assert.deepEqual(
    responses.map((response) => `${connection(response)} ${response.trim().split('\n').at(-1)}`),
    ['kept ok /a', 'kept ok /b', 'close ok /c'],
  )
  assert.equal((await stopping).exitCode, 0)
})

test('during the shutdown delay a request answered through checkContinue closes its connection too', async (t) => {
  // Node hands a request that expects 100 Continue to 'checkContinue', not 'request', when the application
  // listens there.
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => res.end('plain'))
  })
  const continued = (req, res) => {
    res.writeContinue()
    req.resume()
    req.on('end', () => res.end('continued'))
  }
  server.on('checkContinue', continued)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false, shutdownDelay: 1000 })
  t.after(() => manager.dispose())
  manager.trackServer(server, { drainTimeout: 3000 })
  const stopping = manager.stop()
  const agent = new http.Agent({ keepAlive: true })
  const post = () =>
    new Promise((resolve) => {
      const request = http.request({
        host: '127.0.0.1',
        port: server.address().port,
        method: 'POST',
        agent,
        headers: { Expect: '100-continue', 'Content-Length': 2 },
      })
      request.on('continue', () => request.end('hi'))
      request.on('response', (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (chunk) => (body += chunk))
        res.on('end', () => resolve({ body, connection: res.headers.connection }))
      })
      request.on('error', (error) => resolve({ error: error.code }))
    })
  assert.deepEqual(await post(), { body: 'continued', connection: 'close' })
  await sleep(20)
  assert.equal(Object.values(agent.freeSockets).flat().length, 0, 'the client keeps no connection')
  // The application stops listening there: Node answers such requests itself again, through 'request'.
  server.removeListener('checkContinue', continued)
  assert.equal(server.listenerCount('checkContinue'), 0, 'ours went with the last of the application')
  assert.deepEqual(await post(), { body: 'plain', connection: 'close' })
  const result = await stopping
  assert.equal(result.tasks.find((task) => task.id === 'http-server')?.status, 'succeeded')
})

test('a server tracked twice answers upgrades as requests once the application stops listening for them', async (t) => {
  // With any 'upgrade' listener on it, Node leaves an upgrade request to that listener; each tracker's
  // recorder must not count the other's as the application's.
  const server = http.createServer((req, res) => res.end('ok'))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  t.after(() => manager.dispose())
  manager.trackServer(server, { id: 'first' })
  manager.trackServer(server, { id: 'second' })
  const application = () => {}
  server.on('upgrade', application)
  await sleep(10)
  assert.equal(server.listenerCount('upgrade'), 3, "each tracker records beside the application's listener")
  server.removeListener('upgrade', application)
  await sleep(10)
  assert.equal(server.listenerCount('upgrade'), 0)
  const socket = net.connect(server.address().port, '127.0.0.1')
  t.after(() => socket.destroy())
  let received = ''
  socket.setEncoding('utf8').on('data', (chunk) => (received += chunk))
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
  await waitFor(() => received.includes('\r\n\r\n'), 2000, 'an answer').catch(() => {})
  assert.match(received, /^HTTP\/1\.1 200 /)
})

/**
 * One port for several protocols: a net server hands each connection to an http server (answering
 * `ok <url>`), which never listens itself, so Node never makes the list its closeIdleConnections() walks.
 * The http server is tracked by a manager without signals (with `trackOptions`); returns it, the task's id
 * and the port. `wrap(socket)`: what the http server is fed instead of the socket (any duplex stream).
 */
async function fedServer(t, { trackOptions = {}, wrap = (socket) => socket } = {}) {
  const web = http.createServer((req, res) => res.end(`ok ${req.url}`))
  web.on('upgrade', (req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n'))
  const front = net.createServer((socket) => web.emit('connection', wrap(socket)))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  t.after(() => manager.dispose())
  t.after(() => front.close())
  const id = manager.trackServer(web, { drainTimeout: 8000, ...trackOptions })
  await new Promise((resolve) => front.listen(0, '127.0.0.1', resolve))
  return { manager, id, port: front.address().port }
}

/** A socket as a plain duplex stream (a PROXY protocol reader would hand on such a wrapper). */
function asDuplex(socket) {
  const { Duplex } = require('node:stream')
  const duplex = new Duplex({
    read: () => socket.resume(),
    write: (chunk, encoding, callback) => socket.write(chunk, callback),
    final: (callback) => socket.end(callback),
    destroy: (error, callback) => {
      socket.destroy()
      callback(error)
    },
  })
  socket.on('data', (chunk) => duplex.push(chunk) || socket.pause())
  socket.on('end', () => duplex.push(null))
  socket.on('close', () => duplex.destroy())
  return duplex
}

test('an http server fed its connections by another (it never listens) has its idle kept-alive connections closed within a second', async (t) => {
  const { manager, id, port } = await fedServer(t)
  const agent = new http.Agent({ keepAlive: true })
  const body = await new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, agent }, (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (chunk) => (text += chunk))
        res.on('end', () => resolve(text))
      })
      .on('error', reject)
  })
  assert.equal(body, 'ok /')
  const idle = Object.values(agent.freeSockets).flat()
  assert.equal(idle.length, 1)
  const idleClosed = closed(idle[0])
  const startedAt = now()
  const result = await manager.stop({ timeout: 10_000 })
  // It waited for the drain's timeout (8 s) and cut the connection.
  assert.equal(result.tasks.find((task) => task.id === id)?.status, 'succeeded')
  const closedAt = await idleClosed
  assert.ok(closedAt - startedAt < 3000, `closed ${(closedAt - startedAt).toFixed(0)} ms into the drain`)
})

test('on an http server fed its connections by another, a request whose headers arrive in parts during the drain is served', async (t) => {
  // Node cannot say whether such a server's connection is idle (it never listened): one that has read
  // nothing for a while is, and a pause inside a request's headers must not make it look so.
  const { manager, id, port } = await fedServer(t)
  const client = net.connect(port, '127.0.0.1')
  let received = ''
  client.setEncoding('latin1').on('data', (chunk) => (received += chunk))
  const clientClosed = closed(client)
  await new Promise((resolve) => client.once('connect', resolve))
  // A first request and its response: the connection has read something, and is idle for a moment.
  client.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(() => received.includes('ok /one'))
  const stopping = manager.stop({ timeout: 10_000 })
  await sleep(50)
  client.write('GET /two HTTP/1.1\r\nHost: x\r\n')
  await sleep(300)
  client.write('X-Part: 2\r\n\r\n')
  const result = await stopping
  await clientClosed
  assert.equal(result.tasks.find((task) => task.id === id)?.status, 'succeeded')
  // Destroyed between its two parts, it was never answered.
  assert.match(received, /ok \/two$/)
  assert.match(received.slice(received.indexOf('ok /one')), /\r\nConnection: close\r\n/i)
})

test(
  'an HTTP/2 CONNECT stream is left to its session: closeUpgraded hears only HTTP/1 connections, and the stream counts once',
  needs('openssl'),
  async (t) => {
    // Node's compatibility layer emits 'connect' for an HTTP/2 CONNECT stream too, with its response object.
    const { key, cert } = certificate()
    const fs = require('node:fs')
    const tlsOptions = { key: fs.readFileSync(key), cert: fs.readFileSync(cert) }
    const server = http2.createSecureServer({ ...tlsOptions, allowHTTP1: true }, (req, res) => res.end('ok'))
    server.on('connect', (req, res) => {
      res.writeHead(200)
      res.write('tunnel open\n')
    })
    const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
    t.after(() => manager.dispose())
    const handedOver = []
    const id = manager.trackServer(server, {
      drainTimeout: 1000,
      closeUpgraded: (socket) => handedOver.push(socket.constructor.name),
    })
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    const client = http2.connect(`https://127.0.0.1:${server.address().port}`, {
      ca: tlsOptions.cert,
      servername: 'localhost',
    })
    t.after(() => client.destroy())
    client.on('error', () => {})
    const stream = client.request({ ':method': 'CONNECT', ':authority': 'example.com:443' })
    stream.on('error', () => {})
    await new Promise((resolve) => stream.once('response', resolve))
    const result = await manager.stop({ timeout: 5000 })
    assert.deepEqual(handedOver, [])
    // The tunnel is a stream its session is told to finish; at the drain's timeout it is cut, once.
    const task = result.tasks.find((task) => task.id === id)
    assert.equal(task?.error?.code, 'ERR_DRAIN_TIMEOUT')
    assert.match(task.error.message, /cut 1 request in flight and 1 connection$/)
  },
)

test('a drain shorter than the grace closes idle and silent connections at its timeout without failing', async (t) => {
  // The grace for a connection Node cannot judge (a fed server's) and for one that sent nothing is 1 s: a
  // drain of 400 ms cut both, counted them, and failed, though neither held a request.
  const { manager, id, port } = await fedServer(t, { trackOptions: { drainTimeout: 400 } })
  const used = net.connect(port, '127.0.0.1')
  let received = ''
  used.setEncoding('latin1').on('data', (chunk) => (received += chunk))
  used.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(() => received.includes('ok /one'))
  const silent = net.connect(port, '127.0.0.1')
  await new Promise((resolve) => silent.once('connect', resolve))
  const bothClosed = Promise.all([closed(used), closed(silent)])
  const result = await manager.stop({ timeout: 5000 })
  const task = result.tasks.find((task) => task.id === id)
  assert.equal(task?.status, 'succeeded', task?.error?.message)
  await bothClosed
})

test('an upgrade on a server fed duplex streams rather than sockets reaches closeUpgraded', async (t) => {
  const handedOver = []
  const { manager, id, port } = await fedServer(t, {
    wrap: asDuplex,
    trackOptions: {
      drainTimeout: 3000,
      closeUpgraded: (stream) => {
        handedOver.push(stream.constructor.name)
        stream.end()
      },
    },
  })
  const client = net.connect(port, '127.0.0.1')
  client.on('error', () => {})
  t.after(() => client.destroy())
  let received = ''
  client.setEncoding('latin1').on('data', (chunk) => (received += chunk))
  client.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
  await waitFor(() => received.includes('101 Switching Protocols'))
  const result = await manager.stop({ timeout: 8000 })
  assert.deepEqual(handedOver, ['Duplex'])
  const task = result.tasks.find((task) => task.id === id)
  assert.equal(task?.status, 'succeeded', task?.error?.message)
})

test('a connection silent when a short drain begins is still served if its request comes before the timeout', async (t) => {
  const server = http.createServer((req, res) => res.end(`ok ${req.url}`))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  t.after(() => manager.dispose())
  const id = manager.trackServer(server, { drainTimeout: 700 })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const client = net.connect(server.address().port, '127.0.0.1')
  let received = ''
  client.setEncoding('latin1').on('data', (chunk) => (received += chunk))
  client.on('error', () => {})
  await new Promise((resolve) => client.once('connect', resolve))
  const stopping = manager.stop({ timeout: 5000 })
  // Past half the drain: a grace shortened to half of it destroyed the connection unanswered.
  await sleep(420)
  client.write('GET /late HTTP/1.1\r\nHost: x\r\n\r\n')
  const result = await stopping
  await waitFor(() => client.destroyed || received.includes('ok /late'))
  assert.match(received, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\nConnection: close\r\n[\s\S]*ok \/late$/i)
  const task = result.tasks.find((task) => task.id === id)
  assert.equal(task?.status, 'succeeded', task?.error?.message)
})

test('a drain shorter than a sweep ends with the silent connections it closes, and succeeds', async (t) => {
  const server = http.createServer((req, res) => res.end('ok'))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
  t.after(() => manager.dispose())
  const id = manager.trackServer(server, { drainTimeout: 5 })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const silent = net.connect(server.address().port, '127.0.0.1')
  silent.on('error', () => {})
  await new Promise((resolve) => silent.once('connect', resolve))
  const silentClosed = closed(silent)
  const result = await manager.stop({ timeout: 5000 })
  const task = result.tasks.find((task) => task.id === id)
  assert.equal(task?.status, 'succeeded', task?.error?.message)
  await silentClosed
})

for (const closedFirst of [false, true]) {
  test(`a drain that reaches its timeout fails if the server had connections before trackServer, which it cannot count${closedFirst ? ' (the server closed by then)' : ''}`, async (t) => {
    // A request in flight on a connection accepted before tracking: nothing the tracker counts, yet work.
    const server = http.createServer((req, res) => setTimeout(() => res.end('late'), 3000))
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    const client = net.connect(server.address().port, '127.0.0.1')
    client.on('error', () => {})
    t.after(() => client.destroy())
    client.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
    await waitFor(() => server._connections === 1)
    await sleep(50) // the request reaches its handler
    // close() stops listening at once; the connection stays open with its request.
    if (closedFirst) server.close()
    const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false })
    t.after(() => manager.dispose())
    const id = manager.trackServer(server, { drainTimeout: 300 })
    const result = await manager.stop({ timeout: 5000 })
    const task = result.tasks.find((task) => task.id === id)
    assert.equal(task?.error?.code, 'ERR_DRAIN_TIMEOUT', `the drain ${task?.status}`)
    assert.match(
      task.error.message,
      /cut 0 requests in flight and 0 connections, and any connection it had before trackServer \(not counted/,
    )
  })
}
