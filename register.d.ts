// `titan-lifecycle/register` creates the process's manager from the environment; it exports nothing.
// The manager: `import { processManager } from 'titan-lifecycle'`.
export {}
