'use strict'
// What a service does without titan-lifecycle's draining: on SIGTERM it calls server.close() and exits once
// it has closed. Its readiness route keeps answering 200 until then, and kept-alive connections are closed
// under the load balancer as they go idle. The same routes as examples/01-http.js.
const http = require('node:http')

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost')
  if (url.pathname === '/ready') return res.end('ready\n')
  const delay = Math.min(Number(url.searchParams.get('delay') ?? 0), 10_000)
  setTimeout(() => res.end(`hello after ${delay} ms\n`), delay)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
server.listen(Number(process.env.PORT), '127.0.0.1', () =>
  console.log(`listening on http://127.0.0.1:${server.address().port}`),
)
