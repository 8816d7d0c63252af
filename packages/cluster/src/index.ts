/**
 * Receivers that scale out on NATS JetStream: gateways publish raw frames to subjects
 * partitioned by device id, receivers own partitions through leases in NATS KV and consume them
 * through durable consumers, the template and session state lives in PostgreSQL, and readings
 * are stored once per message id.
 */
export * from './errors.js';
export { helloAid, sourceAid, sourcePartition, sourceTimestamp } from './frames.js';
export { ClusterGateway, frameMessageId, type GatewayAck, type GatewayEvents, type GatewayOptions, type GatewayStatus } from './gateway.js';
export type { ClusterIdOptions, IdsStatus } from './ids.js';
export { assignPartitions, type LeaseHolder, type LeaseKv, PartitionLeases } from './leases.js';
export type { NatsOptions, StreamOptions } from './nats.js';
export { ClusterDatabase, type ClusterPostgresOptions, type ClusterReadingRow, type CommitResult, type DeviceClock, type SessionChange, type SessionKind, type TemplateChange } from './postgres.js';
export { ClusterReceiver, type PartitionStatus, type ReceiverEvents, type ReceiverOptions, type ReceiverStatus } from './receiver.js';
export * from './subjects.js';
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
