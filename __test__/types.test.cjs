'use strict'
// The public typings compile, and reject what they should (see types/index.test-d.ts).

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

test('index.d.ts typechecks against its type tests', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types', 'tsconfig.json')], {
    encoding: 'utf8',
  })
  assert.equal(result.status, 0, result.stdout + result.stderr)
})
