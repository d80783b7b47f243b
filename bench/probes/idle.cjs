'use strict'
// An idle HTTP service, for the idle-cost section of the bench: a listening server and, unless the argument
// is `bare`, the named library set up the way its README's first example does (`floor`: the bench's
// napi-rs addon that does nothing, loaded from the path given next; titan-lifecycle: resolved by name from
// the directory given next, where the bench lays it out as npm installs it, or this checkout without one).
// It prints `ready` and then does nothing; the bench reads its threads' wake-ups and CPU time from /proc
// while it idles. On SIGUSR2, sent once the bench has read everything else, it prints the size of V8's young
// generation, part of the anonymous memory in its RSS (node:v8 is loaded then, so as not to be measured).
const http = require('node:http')
const path = require('node:path')

process.on('SIGUSR2', () => {
  const young = require('node:v8')
    .getHeapSpaceStatistics()
    .find((space) => space.space_name === 'new_space')
  process.stdout.write(`young-generation ${young.physical_space_size}\n`)
})

const library = process.argv[2]
const server = http.createServer((req, res) => res.end('ok'))
server.listen(0, '127.0.0.1', () => {
  if (library === 'titan-lifecycle') {
    const from = process.argv[3]
    const { ShutdownManager } = require(
      from ? require.resolve('titan-lifecycle', { paths: [from] }) : path.join(__dirname, '..', '..'),
    )
    const manager = new ShutdownManager()
    manager.trackServer(server)
  } else if (library === 'close-with-grace') {
    const closeWithGrace = require('close-with-grace')
    closeWithGrace({ delay: 10_000, logger: false }, () => new Promise((resolve) => server.close(resolve)))
  } else if (library === 'floor') {
    // The bench's napi-rs addon that does nothing (its path is the next argument).
    require(process.argv[3])
  } else if (library !== 'bare') {
    throw new Error(`unknown library ${library}`)
  }
  process.stdout.write('ready\n')
})
