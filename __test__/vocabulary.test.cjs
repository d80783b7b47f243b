'use strict'
// One source for each word that crosses the boundary. The README's table of errors names exactly the codes
// the package can produce: those of the native side's errors (as the addon exports them), those the binding
// makes itself, and those the facade raises (every `ERR_` literal in its source). The signals `signals` accepts are the native
// side's list.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const native = require('..').native
const { ShutdownManager } = require('..')

const ROOT = path.join(__dirname, '..')
const FACADE = ['index.js', 'register.js', ...fs.readdirSync(path.join(ROOT, 'lib')).map((f) => path.join('lib', f))]

/** The codes the package can produce: the core's errors, and those the binding and the facade make. */
function producibleCodes() {
  const codes = new Set(native.errorCodes())
  // The Rust sources are not in the packed copy the cross-platform runs test (scripts/cross-test.cjs).
  const bindingSource = path.join(ROOT, 'src', 'binding.rs')
  if (fs.existsSync(bindingSource)) {
    for (const [, code] of fs.readFileSync(bindingSource, 'utf8').matchAll(/ErrorCode\("(ERR_[A-Z_]+)"\)/g)) {
      codes.add(code)
    }
  }
  for (const file of FACADE) {
    for (const [, code] of fs.readFileSync(path.join(ROOT, file), 'utf8').matchAll(/'(ERR_[A-Z_]+)'/g)) codes.add(code)
  }
  return codes
}

/** The codes the README's "Errors" section documents: its table and the paragraph on bad input. */
function documentedCodes() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('\n## ', readme.indexOf('### Errors')))
  assert.ok(section.length > 100, 'the README has an Errors section')
  return new Set([...section.matchAll(/`(?:code: )?'?(ERR_[A-Z_]+)'?`/g)].map(([, code]) => code))
}

test("the README's table of errors names every code the package can produce, and no other", () => {
  const producible = producibleCodes()
  const documented = documentedCodes()
  const undocumented = [...producible].filter((c) => !documented.has(c))
  const unproducible = [...documented].filter((c) => !producible.has(c))
  assert.deepEqual(undocumented, [], 'codes the package produces that the README does not document')
  assert.deepEqual(unproducible, [], 'codes the README documents that nothing produces')
  // The native list is not empty (the comparison above would pass vacuously for the native half).
  assert.ok(native.errorCodes().includes('ERR_TASK_CYCLE'))
})

test("the signals a manager accepts are the native side's list", () => {
  const ownable = native.ownableSignals()
  assert.deepEqual(ownable, ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'])
  for (const signal of ownable) {
    const manager = new ShutdownManager({ signals: [signal], disableGracefulShutdown: true, hardExit: false })
    manager.dispose()
  }
  assert.throws(() => new ShutdownManager({ signals: ['SIGUSR1'] }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /SIGUSR1 is reserved by Node's inspector/,
  })
  assert.throws(() => new ShutdownManager({ signals: ['SIGALRM'] }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: new RegExp(`must be one of ${ownable.join(', ')}`),
  })
})

test("the README's systemd unit puts its comments on lines of their own, where systemd reads them as comments", () => {
  // systemd takes a `#` after a value as part of it: `KillMode=mixed   # ...` is ignored as unparsable,
  // and the unit runs with the default (control-group: SIGTERM to every child too).
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const units = [...readme.matchAll(/```ini\n([\s\S]*?)```/g)].map(([, unit]) => unit)
  assert.ok(
    units.some((unit) => /^KillMode=mixed$/m.test(unit)),
    'the README shows a unit with KillMode=mixed',
  )
  for (const unit of units) {
    for (const line of unit.split('\n')) {
      if (/^\s*[#;]/.test(line) || !line.includes('=')) continue
      assert.doesNotMatch(line, /\s[#;]/, `a comment after a value: ${line}`)
    }
  }
})
