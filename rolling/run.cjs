'use strict'
// A rolling restart under load, twice: with examples/01-http.js (trackServer, readiness, a shutdown delay)
// and with a service that only calls server.close() on SIGTERM (rolling/bare-service.cjs).
//
// Two instances, A and B, sit behind rolling/proxy.cjs, a round-robin load balancer that health-checks
// /ready every 100 ms. A load generator here sends at least 200 requests per second through it, open loop,
// over kept-alive connections: most answer at once, one in seven takes 1 s. A gets SIGTERM, exits, and is
// started again; once the proxy routes to it, B gets the same. A request fails if it is reset, refused,
// answered with anything but 200, or takes more than 5 s.
//
//   node rolling/run.cjs [--only tracked|bare]
//
// Prints the counts, writes docs/drain.md (when both ran), and exits 1 if any request failed with
// trackServer or an instance did not exit 0 within its deadline.

const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { launch } = require('../__test__/helpers.cjs')
const { describeMachine } = require('../scripts/machine.cjs')

const ROOT = path.join(__dirname, '..')
const RATE = 250 // requests per second
const MIN_RATE = 200 // what the doc promises was sent, on a slow machine
const SLOW_EVERY = 7 // one request in SLOW_EVERY takes 1 s
const REQUEST_TIMEOUT_MS = 5000
const SHUTDOWN_DELAY_MS = 1000 // ten health-check periods of the proxy, three of its check timeouts
const DEADLINE_MS = 10_000 // the example's gracefulShutdownTimeout

const VARIANTS = {
  tracked: {
    title: 'trackServer, readinessHandler, shutdownDelay (examples/01-http.js)',
    script: path.join(ROOT, 'examples', '01-http.js'),
  },
  bare: {
    title: 'a bare server.close() on SIGTERM (rolling/bare-service.cjs)',
    script: path.join(__dirname, 'bare-service.cjs'),
  },
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const args = process.argv.slice(2)
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null

/** A free port, so an instance can be started again on the port it had. */
function freePort() {
  return new Promise((resolve) => {
    const probe = http.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

function startInstance(variant, port) {
  const instance = launch([process.execPath, variant.script], {
    env: { PORT: String(port), SHUTDOWN_DELAY_MS: String(SHUTDOWN_DELAY_MS) },
    killAfterMs: 60_000,
  })
  instance.listening = new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (/listening on/.test(instance.output().stdout)) {
        clearInterval(timer)
        resolve()
      }
    }, 10)
    instance.exited.then(() => {
      clearInterval(timer)
      reject(
        new Error(
          `instance on ${port} exited before listening:\n${instance.output().stdout}${instance.output().stderr}`,
        ),
      )
    })
  })
  return instance
}

/** The proxy's view of the backends, kept up to date from its output. */
function startProxy(ports) {
  const proxy = launch([process.execPath, path.join(__dirname, 'proxy.cjs'), ...ports.map(String)], {
    killAfterMs: 120_000,
  })
  proxy.readiness = new Map()
  proxy.child.stdout.on('data', () => {
    for (const line of proxy.lines) if (line.kind === 'backend') proxy.readiness.set(line.port, line.ready)
  })
  return proxy
}

async function until(predicate, what, timeoutMs = 15_000) {
  const giveUp = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** Sends requests at RATE per second until stopped; counts the outcomes. */
function startLoad(port) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
  const stats = { sent: 0, ok: 0, failures: {}, slow: 0 }
  const inFlight = new Set()
  const fail = (kind) => {
    stats.failures[kind] = (stats.failures[kind] ?? 0) + 1
  }
  const send = () => {
    const slow = stats.sent % SLOW_EVERY === SLOW_EVERY - 1
    stats.sent++
    if (slow) stats.slow++
    const done = new Promise((resolve) => {
      // Each request counts once: a response cut after its headers can raise errors on both objects.
      let counted = false
      // From the send, not from when a socket is free: `request.setTimeout` times only the socket's idleness,
      // and a request queued in the agent had no timer at all.
      const timer = setTimeout(
        () => request.destroy(Object.assign(new Error('timed out'), { code: 'TIMEOUT' })),
        REQUEST_TIMEOUT_MS,
      )
      const outcome = (failure) => {
        if (counted) return
        counted = true
        clearTimeout(timer)
        if (failure) fail(failure)
        else stats.ok++
        resolve()
      }
      const request = http.get({ host: '127.0.0.1', port, path: `/?delay=${slow ? 1000 : 0}`, agent }, (res) => {
        res.resume()
        res.on('end', () => outcome(res.statusCode === 200 ? null : `HTTP ${res.statusCode}`))
        res.on('error', () => outcome('response cut'))
      })
      request.on('error', (error) => outcome(error.code ?? error.message))
    })
    inFlight.add(done)
    done.then(() => inFlight.delete(done))
  }
  const startedAt = Date.now()
  // Open loop, in 20 ms batches: the rate does not drop when responses slow down.
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - startedAt) / 1000) * RATE)
    while (stats.sent < due) send()
  }, 20)
  return {
    stats,
    async stop() {
      clearInterval(timer)
      stats.seconds = (Date.now() - startedAt) / 1000
      await Promise.all(inFlight)
      agent.destroy()
      return stats
    },
  }
}

async function rollingRestart(name) {
  const variant = VARIANTS[name]
  const ports = { A: await freePort(), B: await freePort() }
  const instances = { A: startInstance(variant, ports.A), B: startInstance(variant, ports.B) }
  await Promise.all(Object.values(instances).map((i) => i.listening))
  const proxy = startProxy([ports.A, ports.B])
  await until(() => proxy.lines.some((l) => l.kind === 'listening'), 'the proxy to listen')
  const proxyPort = proxy.lines.find((l) => l.kind === 'listening').port
  await until(() => proxy.readiness.get(ports.A) && proxy.readiness.get(ports.B), 'both instances to be ready')
  const load = startLoad(proxyPort)
  const restarts = []
  try {
    await sleep(1500)
    for (const which of ['A', 'B']) {
      const instance = instances[which]
      const signalledAt = Date.now()
      instance.child.kill('SIGTERM')
      const exit = await instance.exited
      restarts.push({ instance: which, code: exit.code, signal: exit.signal, afterMs: Date.now() - signalledAt })
      instances[which] = startInstance(variant, ports[which])
      await instances[which].listening
      await until(() => proxy.readiness.get(ports[which]), `${which} to be ready again`)
      await sleep(1000)
    }
    await sleep(500)
  } finally {
    await load.stop()
    for (const instance of Object.values(instances)) instance.child.kill('SIGKILL')
    proxy.child.kill('SIGKILL')
  }
  const stats = load.stats
  const failed = Object.values(stats.failures).reduce((a, b) => a + b, 0)
  const rate = stats.sent / stats.seconds
  // The load itself, checked: the rate the doc states was answered, not only sent (an idle or stalled
  // generator would fail nothing).
  const answered = stats.ok / stats.seconds
  if (answered < MIN_RATE) {
    throw new Error(`rolling: ${answered.toFixed(0)} requests/s answered (${rate.toFixed(0)} sent), under ${MIN_RATE}`)
  }
  return { name, title: variant.title, ...stats, failed, rate, restarts }
}

function describe(run) {
  const kinds = Object.entries(run.failures)
    .map(([kind, n]) => `${n} ${kind}`)
    .join(', ')
  return (
    `${run.name}: ${run.sent} requests (${run.rate.toFixed(0)}/s, ${run.slow} of them 1 s long), ` +
    `${run.failed} failed${kinds ? ` (${kinds})` : ''}; ` +
    run.restarts.map((r) => `${r.instance} exited ${r.signal ?? r.code} ${r.afterMs} ms after SIGTERM`).join(', ')
  )
}

function writeReport(runs) {
  const row = (r) =>
    `| ${r.title} | ${r.sent} | ${r.rate.toFixed(0)} | ${r.failed}${
      r.failed
        ? ` (${Object.entries(r.failures)
            .map(([k, n]) => `${n} ${k}`)
            .join(', ')})`
        : ''
    } | ${r.restarts.map((x) => `${x.instance}: ${x.signal ?? `exit ${x.code}`} after ${x.afterMs} ms`).join('; ')} |`
  const lines = [
    '# Draining through a rolling restart',
    '',
    '<!-- Generated by `npm run rolling` (rolling/run.cjs). Do not edit by hand: run it again. -->',
    '',
    `Generated on ${new Date().toISOString().slice(0, 10)} on ${describeMachine()}, Node ${process.version}.`,
    '',
    'Two instances of a service behind a round-robin load balancer (rolling/proxy.cjs) that health-checks',
    `\`/ready\` every 100 ms and routes only to ready instances. ${RATE} requests per second flow through it over`,
    `kept-alive connections, one in ${SLOW_EVERY} taking 1 s. Instance A gets SIGTERM, exits and is started again;`,
    `once it is ready, B does the same. A request fails if it is reset, refused, answered with anything but 200,`,
    `or takes more than ${REQUEST_TIMEOUT_MS / 1000} s. The tracked service (examples/01-http.js) fails its readiness`,
    `check at the signal, keeps serving for a shutdown delay of ${SHUTDOWN_DELAY_MS} ms, then drains, within a`,
    `${DEADLINE_MS / 1000} s deadline; the bare service only calls \`server.close()\` at the signal and exits once it has`,
    'closed, its readiness answering until then. The two rows differ in all three (readiness, delay, draining):',
    'together they are what the tracked row shows.',
    '',
    '| service | requests | per second | failed | instances |',
    '| --- | --- | --- | --- | --- |',
    ...runs.map(row),
    '',
  ]
  fs.writeFileSync(path.join(ROOT, 'docs', 'drain.md'), lines.join('\n'))
  console.error('rolling: wrote docs/drain.md')
}

async function main() {
  const runs = []
  for (const name of only ? [only] : ['tracked', 'bare']) {
    const run = await rollingRestart(name)
    console.log(describe(run))
    runs.push(run)
  }
  if (!only) writeReport(runs)
  const tracked = runs.find((r) => r.name === 'tracked')
  const ok =
    !tracked ||
    (tracked.failed === 0 &&
      tracked.restarts.every((r) => r.code === 0 && r.signal === null && r.afterMs < DEADLINE_MS))
  if (!ok)
    console.error('rolling: FAILED: requests failed or an instance did not exit 0 within its deadline with trackServer')
  process.exitCode = ok ? 0 : 1
}

main()
