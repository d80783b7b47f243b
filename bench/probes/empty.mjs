// Imported before an ES module peer is timed, to warm the ES module loader (see load.cjs).
export {}
