'use strict'
// Measures, in this fresh process, what `require('titan-lifecycle')` and `new ShutdownManager()` cost.
// A real service requires the package from its main module, when the module loader is already warm, so the
// probe warms it first with an empty module.
const fs = require('node:fs')
const path = require('node:path')

const threads = () => fs.readdirSync('/proc/self/task').length
const target = process.argv[2] ?? path.join(__dirname, '..', '..')
require('./empty.cjs')

const threadsBefore = threads()
const rssBefore = process.memoryUsage.rss()
const start = process.hrtime.bigint()
const lifecycle = require(target)
const requireMs = Number(process.hrtime.bigint() - start) / 1e6
const rssAfterRequire = process.memoryUsage.rss()
const threadsAfterRequire = threads()

const constructStart = process.hrtime.bigint()
const manager = lifecycle.ShutdownManager ? new lifecycle.ShutdownManager() : null
const constructMs = Number(process.hrtime.bigint() - constructStart) / 1e6
const threadsAfterManager = threads()
const rssAfterManager = process.memoryUsage.rss()
manager?.dispose()

process.stdout.write(
  JSON.stringify({
    requireMs,
    constructMs,
    rssRequireKb: (rssAfterRequire - rssBefore) / 1024,
    rssManagerKb: (rssAfterManager - rssBefore) / 1024,
    threadsRequire: threadsAfterRequire - threadsBefore,
    threadsManager: threadsAfterManager - threadsBefore,
  }) + '\n',
)
