'use strict'
// Where a process's resident memory is, by what holds it: for the idle section, which compares services that
// differ by one library, so the parts that grow say what loading that library made resident. Linux only
// (/proc); the bench runs there.
//
// Node's symbol tables are told apart from the rest of its read-only pages by section, whatever the
// binary's layout puts in one mapping: /proc/<pid>/pagemap says which pages are present, node's ELF section
// headers say which section each page holds. The symbol tables are what the dynamic loader reads to bind
// every symbol an addon imports (looked up in node first), and what `dlsym` reads; a lookup makes resident
// the pages it touches, and the kernel maps a few neighbours of each page it faults in. Node is the
// executable, or the libnode shared library a distribution's packaged node links to.

const fs = require('node:fs')

/** The parts, in the order the bench lists them. */
const RSS_PARTS = [
  ['addon', 'the addon file'],
  ['nodeSymbols', "node's symbol tables"],
  ['nodeCode', "node's code"],
  ['nodeData', "node's other data"],
  ['anonymous', 'anonymous memory (JavaScript heap, malloc, stacks)'],
  ['other', 'other files'],
]

/** The dynamic symbol tables, their hash tables and their version tables. */
const SYMBOL_SECTIONS = new Set(['.gnu.hash', '.hash', '.dynsym', '.dynstr', '.gnu.version', '.gnu.version_r'])

/** Reads exactly `length` bytes at `position` of `fd`, or throws. */
function readExactly(fd, position, length) {
  const buffer = Buffer.alloc(length)
  const read = fs.readSync(fd, buffer, 0, length, position)
  if (read !== length) throw new Error(`short read: ${read} of ${length} bytes at ${position}`)
  return buffer
}

/** The sections of an ELF64 little-endian file that have bytes in it, in file order: name, offset, size. */
function elfSections(file) {
  const fd = fs.openSync(file, 'r')
  try {
    const elf = readExactly(fd, 0, 64)
    if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) {
      throw new Error(`${file} is not a 64-bit little-endian ELF file`)
    }
    const shentsize = elf.readUInt16LE(0x3a)
    const shnum = elf.readUInt16LE(0x3c)
    const headers = readExactly(fd, Number(elf.readBigUInt64LE(0x28)), shentsize * shnum)
    const field = (i, at) => Number(headers.readBigUInt64LE(i * shentsize + at))
    const shstrndx = elf.readUInt16LE(0x3e)
    const names = readExactly(fd, field(shstrndx, 0x18), field(shstrndx, 0x20))
    const sections = []
    for (let i = 1; i < shnum; i++) {
      // SHT_NOBITS (.bss) has no bytes in the file.
      if (headers.readUInt32LE(i * shentsize + 4) === 8) continue
      const nameAt = headers.readUInt32LE(i * shentsize)
      sections.push({
        name: names.toString('latin1', nameAt, names.indexOf(0, nameAt)),
        offset: field(i, 0x18),
        size: field(i, 0x20),
      })
    }
    sections.sort((a, b) => a.offset - b.offset)
    if (!sections.some((s) => s.name === '.dynsym')) throw new Error(`${file} has no .dynsym`)
    return sections
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * KB of the mapping's pages that are present in memory, by the section of `sections` each holds. A page
 * shared by two sections counts for the first in file order (a few KB at most, the same in every service).
 */
function presentBySection(pid, mapping, sections) {
  const pageSize = mapping.pageKb * 1024
  const pages = (mapping.end - mapping.start) / pageSize
  const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r')
  let entries
  try {
    entries = readExactly(fd, (mapping.start / pageSize) * 8, pages * 8)
  } finally {
    fs.closeSync(fd)
  }
  const kb = new Map()
  for (let i = 0; i < pages; i++) {
    // Bit 63: the page is present (readable without privileges; only the frame number is hidden).
    if (!(entries.readBigUInt64LE(i * 8) >> 63n)) continue
    const at = mapping.offset + i * pageSize
    const section = sections.find((s) => at + pageSize > s.offset && at < s.offset + s.size)?.name ?? ''
    kb.set(section, (kb.get(section) ?? 0) + mapping.pageKb)
  }
  return kb
}

/** Node's sections by file, read once: every service the bench compares runs the same node. */
const sectionsOf = new Map()

/** Whether a mapping's file is node: the executable, or the libnode a packaged node links to. */
const isNode = (file, executable) => file === executable || /\/libnode\.so[.\d]*$/.test(file)

/** The process's resident KB by part (RSS_PARTS), from its smaps and, for node's read-only pages, its pagemap. */
function rssParts(pid) {
  const executable = fs.realpathSync(`/proc/${pid}/exe`)
  const parts = Object.fromEntries(RSS_PARTS.map(([key]) => [key, 0]))
  /** Mappings of node's read-only pages, split by section once their page size is known. */
  const readOnly = []
  let mapping = null
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \S+\s*(.*)$/.exec(line)
    if (head) {
      mapping = {
        start: parseInt(head[1], 16),
        end: parseInt(head[2], 16),
        perms: head[3],
        offset: parseInt(head[4], 16),
        path: head[5],
      }
      continue
    }
    if (!mapping) continue
    const pageKb = /^KernelPageSize:\s+(\d+) kB/.exec(line)
    if (pageKb) {
      mapping.pageKb = Number(pageKb[1])
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (!rss) continue
    const kb = Number(rss[1])
    const { path, perms } = mapping
    if (path.endsWith('.node')) parts.addon += kb
    else if (isNode(path, executable)) {
      if (perms.includes('x')) parts.nodeCode += kb
      else if (perms.includes('w')) parts.nodeData += kb
      else readOnly.push(mapping)
    } else if (path === '' || path.startsWith('[')) parts.anonymous += kb
    else parts.other += kb
  }
  for (const m of readOnly) {
    if (!sectionsOf.has(m.path)) sectionsOf.set(m.path, elfSections(m.path))
    for (const [section, present] of presentBySection(pid, m, sectionsOf.get(m.path))) {
      if (SYMBOL_SECTIONS.has(section)) parts.nodeSymbols += present
      else parts.nodeData += present
    }
  }
  return parts
}

module.exports = { RSS_PARTS, rssParts }
