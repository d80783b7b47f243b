'use strict'

// What keeps the process alive: the handles and requests that hold the event loop open, each described as
// far as Node tells (a server's address, a socket's ends, a child's pid, how many timers).
// Loaded only when asked (manager.activeHandles(), or a shutdown that did not exit and the process lingers).
//
// Node gives the objects through process._getActiveHandles() and process._getActiveRequests(), which it
// has kept since its first versions but never documented; where they are missing, the resource types of
// process.getActiveResourcesInfo() are all there is to say.

/** Whether a handle holds the event loop open (an unref'd one does not). */
function isRefed(resource) {
  try {
    if (typeof resource.hasRef === 'function') return resource.hasRef()
    const handle = resource._handle
    if (handle && typeof handle.hasRef === 'function') return handle.hasRef()
  } catch {
    // A handle being torn down may throw; count it.
  }
  return true
}

function address(socketAddress) {
  if (!socketAddress || typeof socketAddress !== 'object') return undefined
  const { address: host, port } = socketAddress
  if (host === undefined) return undefined
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

const STDIO_NAMES = ['stdin', 'stdout', 'stderr']

/**
 * The pipes of child processes among `handles`, each with what it is to its child ("stdout of child process
 * 42 (worker)"): an unref()'d child's pipes still hold the loop open, and alone they are only sockets
 * without an address. Never throws.
 */
function childPipes(handles) {
  const pipes = new Map()
  for (const handle of handles) {
    try {
      if (handle?.constructor?.name !== 'ChildProcess' || !Array.isArray(handle.stdio)) continue
      handle.stdio.forEach((pipe, fd) => {
        if (pipe)
          pipes.set(pipe, `${STDIO_NAMES[fd] ?? `pipe ${fd}`} of child process ${handle.pid} (${handle.spawnfile})`)
      })
    } catch {
      // A child being torn down: its pipes are described as sockets.
    }
  }
  return pipes
}

/** What one handle is, in a line (`pipes`: what childPipes found). Never throws. */
function describe(resource, pipes) {
  let type = 'unknown'
  try {
    type = resource?.constructor?.name ?? typeof resource
    if (type === 'ChildProcess') {
      return { type, detail: `child process ${resource.pid} (${resource.spawnfile})` }
    }
    const pipe = pipes.get(resource)
    if (pipe) return { type, detail: pipe }
    if (typeof resource.listening === 'boolean' && typeof resource.address === 'function') {
      const where = resource.listening ? (address(resource.address()) ?? String(resource.address())) : undefined
      return { type, detail: where ? `server listening on ${where}` : 'server, not listening' }
    }
    if (typeof resource.remoteAddress === 'string' || typeof resource.localAddress === 'string') {
      const local = resource.localAddress ? `${resource.localAddress}:${resource.localPort}` : '?'
      const remote = resource.remoteAddress ? `${resource.remoteAddress}:${resource.remotePort}` : '?'
      return { type, detail: `connection ${local} -> ${remote}` }
    }
    // Not `resource === process.stdin`: that getter would create stdin as a side effect.
    if (resource.fd === 0) return { type, detail: 'standard input (being read)' }
    // A pipe or a Unix socket: a child's stdio (whose child was unref()'d, so childPipes did not see it), a
    // connection to a socket path (a database's), a named pipe. Node does not say which.
    if (resource._handle?.constructor?.name === 'Pipe') {
      const fd = resource._handle.fd
      const which = typeof fd === 'number' && fd >= 0 ? `, fd ${fd}` : ''
      const served = typeof resource.server?.address === 'function' ? resource.server.address() : null
      if (typeof served === 'string') return { type, detail: `connection to ${served}${which}` }
      return { type, detail: `pipe or Unix socket${which} (a child process's stdio, a socket path's connection)` }
    }
    if (typeof resource.fd === 'number') return { type, detail: `file descriptor ${resource.fd}` }
    return { type, detail: type }
  } catch {
    return { type, detail: type }
  }
}

/**
 * Timers and immediates are not handles of their own (Node runs them all from one), so only their number
 * is known: process.getActiveResourcesInfo() lists each one that is not unref()'d.
 */
function timers() {
  const counts = new Map()
  for (const type of process.getActiveResourcesInfo()) {
    if (type === 'Timeout' || type === 'Immediate') counts.set(type, (counts.get(type) ?? 0) + 1)
  }
  const what = { Timeout: 'setTimeout or setInterval timer', Immediate: 'setImmediate callback' }
  return [...counts].map(([type, n]) => ({ type, detail: `${n} ${what[type]}${n === 1 ? '' : 's'} not unref()'d` }))
}

/**
 * The handles and requests keeping the event loop alive: `[{ type, detail }]`. Handles an unref() let go of
 * are left out; so are stdout and stderr, which never keep a process alive once nothing is written.
 */
function activeHandles() {
  // Undocumented, so untyped: Node's own `why-is-node-running`-style introspection, checked for below.
  const internals = /** @type {any} */ (process)
  const getHandles = internals._getActiveHandles
  const getRequests = internals._getActiveRequests
  if (typeof getHandles !== 'function') {
    return process.getActiveResourcesInfo().map((type) => ({ type, detail: type }))
  }
  const all = Reflect.apply(getHandles, process, [])
  const pipes = childPipes(all)
  const handles = all
    .filter((h) => h !== process.stdout && h !== process.stderr && isRefed(h))
    .map((h) => describe(h, pipes))
  const requests =
    typeof getRequests === 'function'
      ? Reflect.apply(getRequests, process, []).map((r) => ({
          type: r?.constructor?.name ?? 'request',
          detail: 'a request in flight (file system, DNS or similar)',
        }))
      : []
  return [...handles, ...timers(), ...requests]
}

module.exports = { activeHandles }
