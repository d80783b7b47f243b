// The register subpath from an ES module (node16 resolution in ESM mode adds no extension to the
// extensionless `register`): its typings must still be found, and it exports nothing.
import * as registerModule from 'titan-lifecycle/register'
import { processManager } from 'titan-lifecycle'

// @ts-expect-error register exports nothing
void registerModule.processManager
void processManager
