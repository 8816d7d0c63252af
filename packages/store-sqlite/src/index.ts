export type { SqliteOptions, SqliteQuarantineEvent } from './database.js';
export { openSqliteReadingsSink, PACKED_MAX_BUFFERED, SQLITE_BATCH_SIZE, type SqliteReadingsSinkOptions } from './sink.js';
export { openSqliteStore, type SqliteStoreOptions } from './store.js';
// The one way to test errors of any @opensynaptic package (bundled per package: not `instanceof`).
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
