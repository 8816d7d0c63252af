export type { PostgresConnection, PostgresOptions } from './database.js';
export { openPostgresReadingsBackend, openPostgresReadingsSink, POSTGRES_BATCH_SIZE, type PostgresReadingsSinkOptions } from './sink.js';
export { openPostgresStore, type PostgresStoreOptions } from './store.js';
// The one way to test errors of any @opensynaptic package (bundled per package: not `instanceof`).
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
