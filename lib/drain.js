'use strict'

// Draining a server without dropping a request: stop accepting, answer what is in flight and what still
// arrives on open connections with `Connection: close`, close idle keep-alive connections and those that
// never sent a byte (a client's or a load balancer's pre-connection, a TLS client that never began its
// handshake), send HTTP/2
// sessions a GOAWAY, hand upgraded (WebSocket) connections to the caller, and at the drain timeout destroy
// what is left and say how much was cut. Loaded on the first trackServer() call: a service without a
// server never pays for it.
//
// Costs while the service runs normally: one listener call per connection (to know its socket; a TLS
// server's two more, for its handshake), none per request. The per-request listener that adds `Connection: close` is added only when a shutdown starts.

const net = require('node:net')
const { lifecycleError, describeMessage, quoted } = require('./validate')

/** How often a drain closes connections that went idle after their last response. */
const SWEEP_MS = 25
/**
 * How long a drain leaves a connection that has sent nothing yet, and one that has sent nothing since
 * where Node cannot say whether it is idle (see #closeQuiet). A drain that ends sooner closes them at its
 * timeout without counting them as cut (see #destroyAll).
 */
const UNUSED_GRACE_MS = 1000
/**
 * Between an HTTP/2 GOAWAY that refuses nothing and the one that closes the session (RFC 9113, 6.8): a
 * stream the client opened as the first was on its way is still served. About a round trip, generously.
 */
const GOAWAY_GRACE_MS = 100
/** NGHTTP2_NO_ERROR, and the largest stream id: "go away, but every stream you opened is served". */
const NO_ERROR = 0
const ANY_STREAM = 2 ** 31 - 1

/**
 * A TLS server (https, secure HTTP/2, tls): what tls.Server gives them all. Not `instanceof tls.Server`:
 * loading node:tls to ask costs a plain http service about 1 MB of memory.
 */
function isTlsServer(server) {
  return typeof server.setSecureContext === 'function' && typeof server.addContext === 'function'
}

/**
 * Whether an HTTP/2 server keeps Node's list of its HTTP/1 connections (allowHTTP1), which
 * closeIdleConnections() reads: Node (20 to 26) makes it when such a server starts listening, under a
 * symbol of this description. Without it (a server not listening), the drain judges those connections by
 * what they read.
 */
function tracksHttp1Connections(server) {
  return Object.getOwnPropertySymbols(server).some((symbol) => symbol.description === 'http.server.connections')
}

/** A connection's `destroy` while #sparing keeps it open. */
function keepSocket() {
  return this
}

/** Every server trackServer accepts is a net.Server: http, https, http2 (plain and secure), net. */
function isServer(value) {
  return value instanceof net.Server
}

/**
 * A server's open connections, kept in an array where each socket knows its own position (a property named
 * by a symbol of this list). A `Set` of sockets cost a server taking a new connection for each request
 * about 8% of its CPU time, measured: the identity hash a `Set` needs is made for every socket. This costs
 * two property writes and an array push, and removing swaps the last socket into the hole.
 */
class SocketList {
  #items = []
  #position = Symbol('titan-lifecycle.socket-position')

  get size() {
    return this.#items.length
  }

  add(socket) {
    socket[this.#position] = this.#items.length
    this.#items.push(socket)
  }

  has(socket) {
    return this.#items[socket[this.#position]] === socket
  }

  delete(socket) {
    if (!this.has(socket)) return
    const at = socket[this.#position]
    const last = this.#items.pop()
    if (last !== socket) {
      this.#items[at] = last
      last[this.#position] = at
    }
  }

  clear() {
    this.#items = []
  }

  /** A copy: what the loop does to a socket (destroying it) may change the list. */
  [Symbol.iterator]() {
    return this.#items.slice()[Symbol.iterator]()
  }
}

class ServerTracker {
  #server
  #id
  #closeUpgraded
  /** HTTP/1 (or raw TCP) connections, as the HTTP layer sees them (TLS sockets for https). */
  #sockets = new SocketList()
  /** HTTP/2 sessions, with their open streams. */
  #sessions = new Map()
  /** Upgraded connections and CONNECT tunnels (only while the application listens for them), with their request. */
  #upgraded = new Map()
  /**
   * Connections a drain has found quiet (no work, nothing read since), with the bytes they had read and
   * since when (performance.now()): see #closeQuiet.
   */
  #quietSince = new Map()
  /**
   * A TLS server's TCP connections whose handshake has not finished: the HTTP layer does not know them yet,
   * yet the server's close waits for them.
   */
  #handshaking = new SocketList()
  #http1
  #http2
  /** A shutdown started: responses close their connections. */
  #closing = false
  /** The drain runs: new HTTP/2 sessions are told to go away at once. */
  #draining = false
  #onRequestWhileClosing = null
  /** While a drain runs: checks whether it is done, each time a connection goes. */
  #onGone = null
  /**
   * The 'upgrade' and 'connect' listener that records upgraded connections (HTTP/1 servers, and HTTP/2
   * secure ones for their HTTP/1 clients), on the server or not.
   */
  #recordUpgrade = null
  /** The server has closed (its 'close' came) and has not listened since: the application closed it. */
  #closed = false
  /**
   * Whether the tracker has seen every connection of the server: it had none when tracked (by Node's count
   * of the connections it accepted; one fed connections with emit('connection') before it was tracked
   * counts none, and those go unseen). Otherwise connections from before are unknown here (they may hold
   * work), and a drain that reaches its timeout fails, whatever it counted.
   */
  #knowsEveryConnection
  /** [event, listener] for each listener this tracker put on the server, so untrack() can take them off. */
  #listeners = []

  /** The id of the task that drains it. */
  get id() {
    return this.#id
  }

  constructor(server, { id, closeUpgraded }) {
    this.#server = server
    this.#id = id
    this.#closeUpgraded = closeUpgraded
    // Not `!server.listening`: a server closed with connections still open has stopped listening, and a
    // server that never listened counts nothing (0).
    this.#knowsEveryConnection = server._connections === 0
    this.#http2 = typeof server.updateSettings === 'function'
    this.#http1 = !this.#http2 && typeof server.closeIdleConnections === 'function'
    const tls = isTlsServer(server)
    if (tls) {
      this.#listen('connection', (socket) => this.#trackHandshake(socket))
      // The TLS socket wraps the TCP one (`_parent`), which the HTTP layer's tracking now covers.
      this.#listen('secureConnection', (socket) => socket._parent && this.#handshakeDone(socket._parent))
    }
    if (this.#http2) {
      for (const session of existingSessions(server)) this.#trackSession(session)
      this.#listen('session', (session) => this.#trackSession(session))
      this.#listen('stream', (stream) => this.#trackStream(stream))
      // With allowHTTP1, connections that did not negotiate HTTP/2 are served by the HTTP/1 layer.
      if (tls) {
        this.#listen('secureConnection', (socket) => socket.alpnProtocol !== 'h2' && this.#trackSocket(socket))
      }
    } else {
      // The HTTP layer's socket: the TLS one for https ('secureConnection'), the TCP one otherwise.
      this.#listen(tls ? 'secureConnection' : 'connection', (socket) => this.#trackSocket(socket))
    }
    // An HTTP/2 secure server with allowHTTP1 serves upgrades and CONNECT of its HTTP/1 clients as an
    // HTTP/1 server does (its HTTP/2 CONNECT streams come as 'connect' too, and are left to their session).
    if (this.#http1 || (this.#http2 && tls)) this.#followUpgrades()
    this.#listen('close', () => (this.#closed = true))
    this.#listen('listening', () => (this.#closed = false))
  }

  #listen(event, listener) {
    this.#server.on(event, listener)
    this.#listeners.push([event, listener])
  }

  /**
   * Stops tracking the server (its task was unregistered): every listener this tracker added, on the server
   * and on its connections, comes off, and a shutdown leaves the server alone.
   */
  untrack() {
    for (const [event, listener] of this.#listeners) this.#server.removeListener(event, listener)
    this.#listeners = []
    // After the listeners above: taking the upgrade recorder off must not make them put it back.
    if (this.#recordUpgrade) {
      this.#server.removeListener('upgrade', this.#recordUpgrade)
      this.#server.removeListener('connect', this.#recordUpgrade)
    }
    this.#recordUpgrade = null
    this.#stopClosingResponses()
    for (const socket of this.#sockets) socket.removeListener('close', this.#onSocketClose)
    for (const socket of this.#handshaking) socket.removeListener('close', this.#onHandshakingClose)
    this.#sockets.clear()
    this.#handshaking.clear()
    this.#quietSince.clear()
    this.#sessions.clear()
    this.#upgraded.clear()
  }

  #trackSocket(socket) {
    // A socket announced twice (an application re-emitting 'connection') is one connection.
    if (this.#sockets.has(socket)) return
    this.#sockets.add(socket)
    socket.on('close', this.#onSocketClose)
  }

  /**
   * A tracked socket closed (`this` is the socket). One function for every connection of this server, not
   * a closure (and `once`'s wrapper) for each: this runs once per connection of a busy service.
   */
  #onSocketClose = ((tracker) =>
    function onTrackedSocketClose() {
      tracker.#sockets.delete(this)
      // Looking a socket up in a map hashes it (see SocketList): only when the map holds anything.
      if (tracker.#upgraded.size > 0) tracker.#upgraded.delete(this)
      if (tracker.#quietSince.size > 0) tracker.#quietSince.delete(this)
      tracker.#onGone?.()
    })(this)

  #trackHandshake(socket) {
    if (this.#handshaking.has(socket)) return
    this.#handshaking.add(socket)
    socket.on('close', this.#onHandshakingClose)
  }

  #handshakeDone(socket) {
    this.#handshaking.delete(socket)
    socket.removeListener('close', this.#onHandshakingClose)
  }

  /** A TCP connection closed before its TLS handshake finished (`this` is the socket). */
  #onHandshakingClose = ((tracker) =>
    function onHandshakingClose() {
      tracker.#handshaking.delete(this)
      tracker.#quietSince.delete(this)
      tracker.#onGone?.()
    })(this)

  #trackSession(session) {
    this.#sessions.set(session, 0)
    session.once('close', () => {
      this.#sessions.delete(session)
      this.#onGone?.()
    })
    if (this.#draining) goAway(session)
  }

  #trackStream(stream) {
    const session = stream.session
    if (!session || !this.#sessions.has(session)) return
    this.#sessions.set(session, this.#sessions.get(session) + 1)
    stream.once('close', () => {
      if (this.#sessions.has(session)) this.#sessions.set(session, this.#sessions.get(session) - 1)
    })
  }

  /**
   * Upgraded connections leave the HTTP layer, so they are recorded from the 'upgrade' event, and CONNECT
   * tunnels (a proxy's) from 'connect'. Only while the application has a listener of its own: with none,
   * Node serves an upgrade request as an ordinary 'request' (and refuses a CONNECT), and a listener of ours
   * would take those requests away from the application.
   */
  #followUpgrades() {
    const server = this.#server
    const record = markedAsRecorder((req, socket) => {
      // An HTTP/2 CONNECT stream (a proxy's, RFC 8441's WebSocket) comes as 'connect' too, with its response
      // object: its session tracks it. Only an HTTP/1 connection leaves the HTTP layer (a socket, or any
      // duplex stream an application fed the server with emit('connection')).
      if (req.httpVersionMajor === 2) return
      // A connection accepted before the server was tracked is tracked from here: its close must take it
      // off the list, or the drain waits for it until its timeout and counts it as cut.
      this.#trackSocket(socket)
      this.#upgraded.set(socket, req)
      // One that arrives while the drain runs is handed over too, once the application's own listener
      // (after this one) has taken the connection.
      if (this.#draining) setImmediate(() => !socket.destroyed && this.#handOver(socket, req))
    })
    this.#recordUpgrade = record
    const sync = (event) => {
      if (this.#recordUpgrade === null) return // untracked meanwhile
      // The application's listeners: not ours, nor another tracker's of the same server (each would count
      // the other's and keep both there, and Node would leave upgrade requests unanswered).
      const others = server.listeners(event).filter((l) => !isRecorder(l)).length
      const ours = server.listeners(event).includes(record)
      if (others > 0 && !ours) server.prependListener(event, record)
      if (others === 0 && ours) server.removeListener(event, record)
    }
    const followed = (event) => event === 'upgrade' || event === 'connect'
    this.#listen('newListener', (event) => followed(event) && process.nextTick(sync, event))
    this.#listen(
      'removeListener',
      (event, listener) => followed(event) && !isRecorder(listener) && process.nextTick(sync, event),
    )
    sync('upgrade')
    sync('connect')
  }

  /**
   * A shutdown started: the load balancer may still send requests for a while (the shutdown delay), so
   * everything is served as before, but every HTTP/1 response now closes its connection when it is done, so
   * no client keeps a connection that is about to go away. (HTTP/2 sessions are told at the drain.)
   */
  beginClosing() {
    if (this.#closing) return
    this.#closing = true
    // HTTP/1 responses only. An HTTP/2 server gets the listener only if it serves 'request' already (its
    // HTTP/1 connections, with allowHTTP1, come that way): a first 'request' listener would switch one that
    // serves 'stream' into its compatibility API. A net.Server has no requests.
    const servesRequests = this.#http1 || (this.#http2 && this.#server.listenerCount('request') > 0)
    if (!servesRequests) return
    // The responses in flight first: marking them adds no listener to the server, so an application's
    // 'newListener' listener that throws below cannot keep them from closing their connections.
    for (const socket of this.#sockets) {
      // The response being written on this connection, if any (how Node's HTTP layer links the two).
      // Requests pipelined behind it before now are not known here (Node queues their responses where
      // nothing else can see them): a client that pipelines retries what a closed connection left unanswered.
      const res = socket._httpMessage
      if (res) closeLast(socket, res)
    }
    this.#onRequestWhileClosing = (req, res) => req.httpVersionMajor < 2 && closeLast(req.socket, res)
    this.#server.prependListener('request', this.#onRequestWhileClosing)
    // Node hands a request that expects `100 Continue` (or another expectation) to these events instead of
    // 'request' when the application listens to them; a listener of ours alone would change how Node
    // answers such requests (and leave them unanswered), so only beside the application's, and taken off
    // when the application's last one goes.
    const closing = this.#onRequestWhileClosing
    for (const event of EXPECTATION_EVENTS) {
      if (this.#server.listenerCount(event) > 0) this.#server.prependListener(event, closing)
    }
    this.#listen('removeListener', (event, listener) => {
      if (listener === closing || !EXPECTATION_EVENTS.includes(event)) return
      const left = this.#server.listeners(event)
      if (left.length === 1 && left[0] === closing) this.#server.removeListener(event, closing)
    })
  }

  /** Takes off the listener beginClosing() added, from every event it added it to. */
  #stopClosingResponses() {
    const listener = this.#onRequestWhileClosing
    if (listener === null) return
    for (const event of ['request', ...EXPECTATION_EVENTS]) this.#server.removeListener(event, listener)
  }

  /**
   * Drains the server: resolves once every connection is closed, or rejects with ERR_DRAIN_TIMEOUT after
   * `timeoutMs` (or when `abortSignal` aborts), having destroyed what was left.
   */
  drain({ timeoutMs, abortSignal }) {
    this.beginClosing()
    this.#draining = true
    const server = this.#server
    return new Promise((resolve, reject) => {
      let settled = false
      let serverClosed = false
      let sweep = null
      let timer = null
      const finish = (error) => {
        if (settled) return
        settled = true
        clearInterval(sweep)
        clearTimeout(timer)
        this.#onGone = null
        this.#quietSince.clear()
        abortSignal?.removeEventListener('abort', cut)
        this.#stopClosingResponses()
        if (error) reject(error)
        else resolve()
      }
      const done = () =>
        this.#sockets.size === 0 &&
        this.#sessions.size === 0 &&
        this.#upgraded.size === 0 &&
        this.#handshaking.size === 0
      // Node's own judgement of which HTTP/1 connections are idle (from their parsers: one whose request is
      // still arriving is not) is used wherever the server keeps it: an HTTP/1 server, and a secure HTTP/2
      // server's HTTP/1 connections (allowHTTP1), once it has listened. One that never listened (fed its
      // connections by another server, with emit('connection')) has no list, and its closeIdleConnections()
      // closes nothing: its quiet connections are found as an HTTP/2 server's are.
      const nodeKnowsIdle =
        typeof server.closeIdleConnections === 'function' &&
        ((this.#http1 && server.listening) || tracksHttp1Connections(server))
      const check = () => {
        if (nodeKnowsIdle) this.#sparing(() => server.closeIdleConnections())
        // HTTP connections only: a raw TCP client may never send a byte by design (the server speaks).
        if (this.#http1 || this.#http2) this.#closeQuiet(this.#sockets, { evenUsed: !nodeKnowsIdle })
        this.#closeQuiet(this.#handshaking, { evenUsed: false })
        if (serverClosed && done()) finish()
      }
      const cut = () => {
        const counts = this.#destroyAll()
        // Only work cut fails the drain: what held none was closed as the sweep would have closed it. Unless
        // the server had connections before it was tracked, which this count cannot see.
        if (counts.requests === 0 && counts.connections === 0 && this.#knowsEveryConnection) return finish()
        finish(
          lifecycleError(
            'ERR_DRAIN_TIMEOUT',
            `server ${quoted(this.#id)} did not drain in time: cut ${counts.requests} request${counts.requests === 1 ? '' : 's'} ` +
              `in flight and ${counts.connections} connection${counts.connections === 1 ? '' : 's'}` +
              (this.#knowsEveryConnection
                ? ''
                : ', and any connection it had before trackServer (not counted: the drain could not see them)'),
          ),
        )
      }
      this.#onGone = () => serverClosed && done() && finish()
      // Stop accepting. The callback comes when the server's own count of connections is zero (or at once,
      // with an error, if it was not listening: fine, nothing more can arrive).
      const closed = () => {
        serverClosed = true
        check()
      }
      // HTTP/2 sessions first hear a GOAWAY that refuses nothing (see goAway).
      for (const session of this.#sessions.keys()) goAway(session)
      if (this.#closed && !server.listening) {
        // The application closed it already (its connections had all gone when its 'close' came): closing
        // it again would emit 'close' again, and run the application's listeners of it twice.
        serverClosed = true
      } else {
        try {
          // An HTTP server's close() (and an HTTP/2 one's with allowHTTP1) first closes the idle connections.
          // An HTTP/2 server's close() also closes every session at once from Node 24 on: a GOAWAY with the
          // last stream id right behind the first, refusing the streams a client opened meanwhile. It stops
          // listening as that close() does, less the sessions, which goAway closes a round trip later.
          this.#sparing(() => {
            if (!this.#http2) return server.close(closed)
            net.Server.prototype.close.call(server, closed)
            server.closeIdleConnections?.()
          })
        } catch (error) {
          // close() adds its callback as a 'close' listener before it closes the listening socket: an
          // application's 'newListener' listener that throws there left the server listening. It closes
          // without a callback; the drain's own count of connections says when it is done.
          if (server.listening) net.Server.prototype.close.call(server)
          serverClosed = true
          process.emitWarning(
            `server ${quoted(this.#id)} could not be closed with a callback (${describeMessage(error)}); closed without one`,
            { type: 'TitanLifecycleWarning', code: 'TITAN_LIFECYCLE_SERVER_CLOSE' },
          )
        }
      }
      for (const [socket, req] of this.#upgraded) this.#handOver(socket, req)
      if (abortSignal?.aborted) return cut()
      abortSignal?.addEventListener('abort', cut, { once: true })
      sweep = setInterval(check, SWEEP_MS)
      timer = setTimeout(cut, Math.max(0, timeoutMs))
      check()
    })
  }

  /**
   * Runs `close` (Node's closeIdleConnections(), or a server's close(), which calls it) with two kinds of
   * connection kept open, which Node takes for idle and destroys:
   * - one whose response has ended but is still being written out (its request was read, its response
   *   ended): that cut the rest of the body, a large download on a slow client, measured 3.9 of 8 MB;
   * - one that has read nothing yet (a pre-connection), which Node 26 destroys too: #closeQuiet closes it
   *   after its grace, as on the Node versions that leave it.
   * Their `destroy` does nothing for the length of the call, which is synchronous; Node's judgement of
   * every other connection (from its parsers: one whose request is still arriving is not idle) stands.
   */
  #sparing(close) {
    const spared = []
    try {
      for (const socket of this.#sockets) {
        const res = socket._httpMessage
        const writingOut = res?.writableEnded && !res.writableFinished
        if (!writingOut && (res || socket.bytesRead > 0)) continue
        const own = Object.getOwnPropertyDescriptor(socket, 'destroy')
        // A socket whose `destroy` cannot be replaced for a moment (someone made it non-configurable, or the
        // socket non-extensible) is left to Node.
        if (own ? !own.configurable : !Object.isExtensible(socket)) continue
        spared.push([socket, own])
        Object.defineProperty(socket, 'destroy', { value: keepSocket, writable: true, configurable: true })
      }
      close()
    } finally {
      for (const [socket, own] of spared) {
        if (own) Object.defineProperty(socket, 'destroy', own)
        else delete socket.destroy
      }
    }
  }

  /**
   * Hands an upgraded connection to `closeUpgraded`, whose throw, or rejection if it is async, is a warning:
   * the drain goes on (an async one's rejection was left unhandled, which ended the process with code 1).
   */
  #handOver(socket, req) {
    if (!this.#closeUpgraded) return
    const warn = (error) =>
      process.emitWarning(`closeUpgraded threw for server ${quoted(this.#id)}: ${describeMessage(error)}`, {
        type: 'TitanLifecycleWarning',
        code: 'TITAN_LIFECYCLE_CLOSE_UPGRADED',
      })
    try {
      const result = this.#closeUpgraded(socket, req)
      if (typeof result?.then === 'function') result.then(undefined, warn)
    } catch (error) {
      warn(error)
    }
  }

  /**
   * Closes the connections of `sockets` that hold no work (no response in progress, not upgraded) and have
   * read nothing for UNUSED_GRACE_MS of the drain: with `evenUsed`, whatever they read before; without,
   * only those that have read nothing at all.
   * - Read nothing at all: Node's closeIdleConnections() leaves a connection that never began a request,
   *   and a TLS client that never began its handshake is not the HTTP layer's yet. Both would hold the
   *   drain until its timeout (a load balancer's pre-connections, a stalled client). The grace lets a
   *   request already on its way arrive: over TLS 1.2 it follows the handshake's end by a round trip.
   * - Read before (`evenUsed`), where Node does not judge idleness from its parsers: an HTTP/1 server that
   *   never listened (fed its connections with emit('connection')), whose list of connections Node never
   *   made, and an HTTP/2 server's HTTP/1 connections (allowHTTP1) where Node keeps no such list (before
   *   the server listens, or on a Node version that does not track them). A request whose headers are still
   *   arriving has no response yet either: the grace lets a request that comes in parts be served (one
   *   whose parts are more than the grace apart is taken for idle), and an idle kept-alive connection closes
   *   after it rather than at once.
   * A stream that is not a socket (no `bytesRead`) is never taken for quiet.
   */
  #closeQuiet(sockets, { evenUsed }) {
    const now = performance.now()
    for (const socket of sockets) {
      const read = socket.bytesRead
      const quiet = !socket._httpMessage && !this.#upgraded.has(socket) && (evenUsed ? read >= 0 : read === 0)
      const seen = this.#quietSince.get(socket)
      if (!quiet) this.#quietSince.delete(socket)
      else if (seen === undefined || seen.bytesRead !== read)
        this.#quietSince.set(socket, { bytesRead: read, since: now })
      else if (now - seen.since >= UNUSED_GRACE_MS) socket.destroy()
    }
  }

  /**
   * Destroys every connection left; returns how many requests in flight, and connections holding work, were
   * cut. A connection that holds none of the application's work is closed as the sweep would have closed
   * it, and not counted: an HTTP connection with no response in progress that is not upgraded (one that
   * never sent a byte, as a load balancer's pre-connection, or idle after its last response, or whose next
   * request has not fully arrived, so no handler has it), an HTTP/2 session with no stream open, a TLS
   * client still in its handshake. A drain shorter than the sweep's grace (UNUSED_GRACE_MS) ends with those
   * and succeeds. A raw TCP connection always counts: whether it is at work is the application's to say.
   */
  #destroyAll() {
    const httpServer = this.#http1 || this.#http2
    let requests = 0
    let connections = 0
    for (const socket of this.#sockets) {
      if (socket._httpMessage) requests++
      if (!httpServer || socket._httpMessage || this.#upgraded.has(socket)) connections++
      socket.destroy()
    }
    for (const [session, streams] of this.#sessions) {
      requests += Math.max(0, streams)
      if (streams > 0) connections++
      session.destroy()
    }
    for (const socket of this.#upgraded.keys()) {
      if (!this.#sockets.has(socket)) connections++
      socket.destroy()
    }
    for (const socket of this.#handshaking) socket.destroy()
    if (this.#http1) this.#server.closeAllConnections()
    this.#sockets.clear()
    this.#handshaking.clear()
    this.#quietSince.clear()
    this.#sessions.clear()
    this.#upgraded.clear()
    return { requests, connections }
  }
}

/** The events Node hands a request with an `Expect` header to, when the application listens to them. */
const EXPECTATION_EVENTS = ['checkContinue', 'checkExpectation']

/** Marks the 'upgrade' and 'connect' listeners trackers add (shared by every copy of the package, as a server may be too). */
const UPGRADE_RECORDER = Symbol.for('titan-lifecycle.upgrade-recorder')
const markedAsRecorder = (listener) => Object.assign(listener, { [UPGRADE_RECORDER]: true })
const isRecorder = (listener) => listener?.[UPGRADE_RECORDER] === true

/** The response a connection closes after (while a shutdown runs): its latest. */
const LAST_RESPONSE = Symbol('titan-lifecycle.last-response')
/** Whether a response closes its connection (see closeAfter). */
const CLOSES = Symbol('titan-lifecycle.closes')
/** Whether Node meant to keep a response's connection before closeAfter (see closeLast). */
const KEPT_ALIVE = Symbol('titan-lifecycle.kept-alive')

/**
 * Makes `res` the response after which `socket` closes. A request pipelined behind one already marked takes
 * the mark over, while that one's headers are not out: Node ends a connection after the response that says
 * close, and drops the responses queued behind it, although their handlers ran.
 */
function closeLast(socket, res) {
  const previous = socket[LAST_RESPONSE]
  if (previous && previous !== res && !previous.headersSent && previous[CLOSES]) {
    previous[CLOSES] = false
    previous.shouldKeepAlive = previous[KEPT_ALIVE]
  }
  socket[LAST_RESPONSE] = res
  closeAfter(res)
}

/**
 * Makes a response close its connection once it is sent: it says `Connection: close`, also when the handler
 * says keep-alive itself (`setHeader`, or `writeHead`'s own headers, would override Node's choice, and a
 * client told keep-alive reuses a connection the drain is about to close). A response whose headers are out
 * already is left as it is: its connection stays open after it, so a client that sends another request on it
 * is answered with `Connection: close`, and the drain closes it if it goes idle. (Ending such a connection
 * right after its response reset the next request of every client that kept sending: 20 of 20, measured.)
 *
 * Node's own choice is what changes (`shouldKeepAlive`): where the handler sets no Connection header, Node
 * then writes `Connection: close` and ends the connection after the response. No header is set here unless
 * the handler set one saying keep-alive: once any header is set with setHeader, writeHead takes its own
 * headers another way (on Node 20 a flat array kept only the last of repeated names, such as Set-Cookie
 * from a proxied response; an array of pairs threw).
 */
function closeAfter(res) {
  if (res.headersSent || res[CLOSES]) return
  res[CLOSES] = true
  if (!(KEPT_ALIVE in res)) {
    res[KEPT_ALIVE] = res.shouldKeepAlive
    // Every way a response's headers go out passes through writeHead (an implicit one too); an own
    // property, so a framework's own wrapper of it (set later) still calls this one. Once per response.
    const writeHead = res.writeHead
    res.writeHead = function writeHeadClosing(...args) {
      if (!this[CLOSES] || this.headersSent) return writeHead.apply(this, args)
      // writeHead(status, [reason], [headers]): as Node reads them, the headers are the third argument when
      // given, else the second unless that is the reason (a string).
      const at = typeof args[1] === 'string' || args[2] != null ? 2 : 1
      if (args[at] !== null && typeof args[at] === 'object') args[at] = connectionClose(args[at])
      const own = this.getHeader('connection')
      // A Connection header the handler set saying keep-alive is replaced. One it removed would keep Node
      // from writing any (`_removedConnection`, Node's own flag since before Node 20): the connection would
      // close without saying so, and its client would send the next request on it.
      if (own === undefined ? this._removedConnection === true : keepsAlive(own)) this.setHeader('Connection', 'close')
      return writeHead.apply(this, args)
    }
  }
  res.shouldKeepAlive = false
}

/** Whether a Connection header's value asks to keep the connection (its absence is Node's to decide). */
const keepsAlive = (value) => /keep-alive/i.test(String(value))

/**
 * `headers` as writeHead takes them (an object, a flat array of names and values, or an array of
 * [name, value] pairs), with a Connection header that says keep-alive saying `close`; the caller's own object
 * or array is not changed. Any other Connection value (`close`, `upgrade`) is left alone.
 */
function connectionClose(headers) {
  const keeping = (name, value) => typeof name === 'string' && name.toLowerCase() === 'connection' && keepsAlive(value)
  if (!Array.isArray(headers)) {
    const names = Object.keys(headers).filter((name) => keeping(name, headers[name]))
    return names.length === 0 ? headers : { ...headers, ...Object.fromEntries(names.map((n) => [n, 'close'])) }
  }
  if (Array.isArray(headers[0])) {
    return headers.map((pair) => (Array.isArray(pair) && keeping(pair[0], pair[1]) ? [pair[0], 'close'] : pair))
  }
  return headers.map((value, i) => (i % 2 === 1 && keeping(headers[i - 1], value) ? 'close' : value))
}

/**
 * The HTTP/2 sessions a server already has when it is tracked (they connected before trackServer). Node
 * keeps them from Node 24 on, for its own close(), which closes them all, under a symbol it does not export;
 * a drain that stops the server without that close() must close them itself. Before Node 24 they cannot be
 * found, and such a session holds the drain until its timeout (trackServer belongs before listen()).
 */
function existingSessions(server) {
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'sessions')
  const sessions = key === undefined ? undefined : server[key]
  if (typeof sessions?.[Symbol.iterator] !== 'function') return []
  return [...sessions].filter((session) => typeof session?.goaway === 'function' && !session.destroyed)
}

/**
 * Tells an HTTP/2 session to go away in two steps: a GOAWAY that refuses no stream, then, a round trip later,
 * close(): a GOAWAY with the last stream id seen, after which the session ends once its streams have.
 */
function goAway(session) {
  if (session.closed || session.destroyed) return
  try {
    session.goaway(NO_ERROR, ANY_STREAM)
  } catch {
    // Already going away.
  }
  setTimeout(() => !session.closed && !session.destroyed && session.close(), GOAWAY_GRACE_MS).unref()
}

module.exports = { ServerTracker, isServer }
