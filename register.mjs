// `node --import titan-lifecycle/register app.mjs`: the same as register.js, for ES module applications.
import './register.js'
