'use strict'
// Keeps the platform packages in step with the root: each npm/<platform>/package.json gets the root's
// version, and the root's optionalDependencies name each of them at that version. npm runs it as the
// "version" lifecycle script (`npm version patch` bumps the root, this follows, and both are committed
// together); `--check` only reports a difference (exit 1), for tests and CI.

const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const check = process.argv.includes('--check')
const read = (file) => JSON.parse(fs.readFileSync(file, 'utf8'))
const write = (file, json) => fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`)

const rootFile = path.join(root, 'package.json')
const rootPackage = read(rootFile)
const problems = []
const optional = {}
for (const dir of fs.readdirSync(path.join(root, 'npm')).sort()) {
  const file = path.join(root, 'npm', dir, 'package.json')
  const platformPackage = read(file)
  optional[platformPackage.name] = rootPackage.version
  if (platformPackage.version !== rootPackage.version) {
    problems.push(`${platformPackage.name} is at ${platformPackage.version}, the root at ${rootPackage.version}`)
    platformPackage.version = rootPackage.version
    if (!check) write(file, platformPackage)
  }
}
if (JSON.stringify(rootPackage.optionalDependencies) !== JSON.stringify(optional)) {
  problems.push(`the root's optionalDependencies should be ${JSON.stringify(optional)}`)
  rootPackage.optionalDependencies = optional
  if (!check) write(rootFile, rootPackage)
}
for (const problem of problems) console.error(`sync-versions: ${problem}`)
process.exitCode = check && problems.length > 0 ? 1 : 0
