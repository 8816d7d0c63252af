/**
 * OpenSynaptic control traffic: everything a device and a server say to each other besides data.
 *
 * - `packets`: builders and strict parsers of the twelve control packets, `SeqCounter`.
 * - `IdAllocator`: server-side device ids with leases, persistence and flood limits.
 * - `OSHandshakeManager`: classify-and-dispatch of inbound packets, device roles, the FULL→DIFF
 *   strategy counter, the secure-session state machine, anti-replay and the last server time.
 * - `HandshakeRequester`: device-side request/response over any send/receive pair (seq matching,
 *   resends, NACK, timeout, abort).
 *
 * The protocol's "secure" mode is obfuscation, not encryption: the session key derives from the
 * device id and a timestamp, both sent in clear in the first FULL frame.
 */
export * from './errors.js';
// The way to test any OpenSynaptic error (works across builds and packages, unlike `instanceof`).
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
export {
  canonicalJson,
  type JsonInput,
  MAX_JSON_DEPTH,
  pyFloatRepr,
  pyJsonDumps,
} from './json.js';
export * from './packets.js';
export { utf8DecodeIgnore } from './utf8.js';
export {
  addressText,
  type AllocateFailure,
  type AllocateResult,
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_LEASES,
  DEFAULT_NEW_LEASE_LIMIT,
  DEFAULT_RESERVE_IDS,
  deviceKey,
  IDENTITY_FIELDS,
  IdAllocator,
  type IdAllocatorOptions,
  MAX_IDENTITY_KEY_LENGTH,
  type PeerAddress,
  type PoolResult,
  SENT_ID_KEY_PREFIX,
} from './id-allocator.js';
export {
  type DataFrameParser,
  type DataParseResult,
  type FrameLevelParserOptions,
  frameLevelParser,
  type PacketMeta,
  type ParseContext,
  tidText,
} from './frame-parser.js';
export {
  ALLOCATOR_STATE_KEY,
  type LeaseKinds,
  type LeaseRecord,
  type LeaseSnapshot,
  leaseSnapshotWrites,
  type StoredAllocatorState,
  type StoredLease,
  type StoredLeaseRecord,
} from './lease-records.js';
export {
  type SecureSession,
  type SessionKinds,
  type SessionSnapshot,
  type SessionState,
  type SessionTier,
  sessionSnapshotWrites,
  type StoredSession,
} from './sessions.js';
export {
  type AntiReplayPolicy,
  type CtrlResult,
  DEFAULT_MAX_PENDING_SESSIONS,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_MAX_TRACKED_AIDS,
  DEFAULT_SESSION_EXPIRE_MS,
  DEFAULT_SESSION_SAVE_INTERVAL_MS,
  DEFAULT_TIME_SYNC_THRESHOLD,
  type DispatchOutcome,
  type DispatchType,
  FULL_COMMITS_BEFORE_DIFF,
  type HandshakeManagerOptions,
  type IgnoreCode,
  NACK_REASONS,
  OSHandshakeManager,
  type SessionView,
  type Strategy,
  type TimestampCheck,
} from './manager.js';
export {
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  HandshakeRequester,
  type HandshakeRequesterOptions,
  type IdAssignment,
  MIN_RESEND_INTERVAL_MS,
  type RequesterTimers,
  type RequestOptions,
  type ServerTime,
} from './requester.js';
export * from './auth.js';
