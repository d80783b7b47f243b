'use strict'
// Where a process's resident memory is, by what holds it: for the idle section, which compares services that
// differ by one library, so the parts that grow say what loading that library made resident. Linux only
// (/proc); the bench runs there.
//
// The node executable's read-only segment holds both its dynamic symbol tables and its constant data, and one
// mapping in /proc/<pid>/smaps covers both, so its pages are told apart by section: /proc/<pid>/pagemap says
// which pages are present, the executable's ELF section headers say which section each page belongs to. The
// symbol tables are what the dynamic loader reads to bind an addon's imports (every napi function it uses)
// and what `dlsym` reads; a lookup makes resident the pages it touches, and the kernel maps a few neighbours
// of each page it faults in.

const fs = require('node:fs')

/** The parts, in the order the bench lists them. */
const RSS_PARTS = [
  ['addon', 'the addon file'],
  ['nodeSymbols', "node's symbol tables"],
  ['nodeCode', "node's code"],
  ['nodeData', "node's other constant data"],
  ['anonymous', 'anonymous memory (JavaScript heap, malloc, stacks)'],
  ['other', 'other files'],
]

const SYMBOL_SECTIONS = new Set(['.gnu.hash', '.hash', '.dynsym', '.dynstr', '.gnu.version', '.gnu.version_r'])

/** The sections of an ELF64 little-endian file that have bytes in it: name, file offset, size. */
function elfSections(file) {
  const fd = fs.openSync(file, 'r')
  try {
    const read = (position, length) => {
      const buffer = Buffer.alloc(length)
      fs.readSync(fd, buffer, 0, length, position)
      return buffer
    }
    const elf = read(0, 64)
    if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return []
    const shentsize = elf.readUInt16LE(0x3a)
    const shnum = elf.readUInt16LE(0x3c)
    const headers = read(Number(elf.readBigUInt64LE(0x28)), shentsize * shnum)
    const field = (i, at) => Number(headers.readBigUInt64LE(i * shentsize + at))
    const shstrndx = elf.readUInt16LE(0x3e)
    const names = read(field(shstrndx, 0x18), field(shstrndx, 0x20))
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
    return sections
  } finally {
    fs.closeSync(fd)
  }
}

/** KB of the mapping [start, end) at file offset `offset` present in memory, split by the section they hold. */
function presentBySection(pid, start, end, offset, sections) {
  const pages = (end - start) / 4096
  const entries = Buffer.alloc(pages * 8)
  const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r')
  try {
    fs.readSync(fd, entries, 0, entries.length, (start / 4096) * 8)
  } finally {
    fs.closeSync(fd)
  }
  const kb = new Map()
  for (let i = 0; i < pages; i++) {
    // Bit 63: the page is present (readable without privileges; only the frame number is hidden).
    if (!(entries.readBigUInt64LE(i * 8) >> 63n)) continue
    const at = offset + i * 4096
    const section = sections.find((s) => at + 4096 > s.offset && at < s.offset + s.size)?.name ?? ''
    kb.set(section, (kb.get(section) ?? 0) + 4)
  }
  return kb
}

/** The process's resident KB by part (RSS_PARTS), from its smaps and, for node's read-only data, its pagemap. */
function rssParts(pid) {
  const executable = fs.realpathSync(`/proc/${pid}/exe`)
  const sections = elfSections(executable)
  const parts = Object.fromEntries(RSS_PARTS.map(([key]) => [key, 0]))
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
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (!rss || !mapping) continue
    const kb = Number(rss[1])
    const { path, perms } = mapping
    if (path.endsWith('.node')) parts.addon += kb
    else if (path === executable) {
      if (perms.includes('x')) parts.nodeCode += kb
      else if (perms.includes('w')) parts.nodeData += kb
      else {
        for (const [section, present] of presentBySection(pid, mapping.start, mapping.end, mapping.offset, sections)) {
          if (SYMBOL_SECTIONS.has(section)) parts.nodeSymbols += present
          else parts.nodeData += present
        }
      }
    } else if (path === '' || path.startsWith('[')) parts.anonymous += kb
    else parts.other += kb
  }
  return parts
}

module.exports = { RSS_PARTS, rssParts }
