/**
 * The pool the stores and sinks of this package run on, for other packages that keep tables of
 * their own next to them (the cluster's readings and sessions): the same option checks, 64-bit
 * integers as numbers, idle-client errors caught, and transactions that discard a failed client.
 */
export { ensureSchema, inTransaction, openPool, type PostgresPool, storeError } from './database.js';
