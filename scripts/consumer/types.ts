/**
 * Type-level checks of the published declarations: each name must have its real type, neither
 * `any` nor the unresolved type that a declaration importing an unpublished module leaves
 * (silently accepted under `skipLibCheck`). Each line below is a type error when the type is
 * real; if it were `any` or unresolved the directive would be unused, itself an error (TS2578).
 * Compile-time only.
 */
import { encode as base62Encode } from '@opensynaptic/base62';
import { CMD } from '@opensynaptic/cmd';
import { backendReport, isOpenSynapticError, OpenSynaptic, type TransmitResult } from '@opensynaptic/core';
import { backendInfo as crcInfo, deriveSessionKey, NativeUnavailableError } from '@opensynaptic/crc';
import { backendInfo as fusionInfo, OSVisualFusionEngine } from '@opensynaptic/fusion';
import { OSHandshakeManager } from '@opensynaptic/handshake';
import { type DecodedFrame, decodeFrame, backendInfo as packetInfo } from '@opensynaptic/packet';
import { compressFact } from '@opensynaptic/packet/body';
import { OpenSynapticStandardizer, StandardizeError } from '@opensynaptic/standardize';
import { MemoryStore, MemoryReadingsSink, type ReadingFrame, StoreError } from '@opensynaptic/store';
import { openPostgresReadingsSink } from '@opensynaptic/store-postgres';
import { openSqliteReadingsSink, openSqliteStore } from '@opensynaptic/store-sqlite';
import { createTransport, type Transport, TransportError, TransporterManager } from '@opensynaptic/transport';
import { transportConformanceSuite } from '@opensynaptic/transport/testing';
import { createUdpTransport } from '@opensynaptic/transport/udp';
import { createWebSocketTransport } from '@opensynaptic/transport/websocket';
import { OpenSynapticServer, type ServerReading, ServerError } from '@opensynaptic/server';
import { ConfigSchema, loadConfig, validateConfig } from '@opensynaptic/server/config';
import { ensureId, ensureTime, linkNode } from '@opensynaptic/server/device';

// @ts-expect-error a function
export const a2: number = base62Encode;
// @ts-expect-error an object of command bytes
export const a3: number = CMD;
// @ts-expect-error a class
export const a4: number = OpenSynaptic;
// @ts-expect-error an interface
export const a5: TransmitResult = 0;
// @ts-expect-error a backend name
export const a6: number = crcInfo().backend;
// @ts-expect-error a record of backend names
export const a7: number = crcInfo().backends;
// @ts-expect-error a function
export const a8: number = deriveSessionKey;
// @ts-expect-error a class
export const a9: number = NativeUnavailableError;
// @ts-expect-error a class
export const a10: number = OSVisualFusionEngine;
// @ts-expect-error a class
export const a11: number = OSHandshakeManager;
// @ts-expect-error a backend name
export const a12: number = packetInfo().backend;
// @ts-expect-error a function
export const a13: number = decodeFrame;
// @ts-expect-error a class
export const a14: DecodedFrame = 0;
// @ts-expect-error a function
export const a15: number = compressFact;
// @ts-expect-error a why-not record or null
export const a16: number = fusionInfo().nativeUnavailable;
// @ts-expect-error a type guard
export const a17: number = isOpenSynapticError;
// @ts-expect-error a record of backend facts
export const a18: number = backendReport();
// @ts-expect-error a class
export const a19: number = OpenSynapticStandardizer;
// @ts-expect-error a class
export const a20: number = StandardizeError;
// @ts-expect-error a class
export const a21: number = MemoryStore;
// @ts-expect-error a class
export const a22: number = StoreError;
// @ts-expect-error a function
export const a23: number = createTransport;
// @ts-expect-error an interface
export const a24: Transport = 0;
// @ts-expect-error a class
export const a25: number = TransportError;
// @ts-expect-error a class
export const a26: number = TransporterManager;
// @ts-expect-error a function
export const a27: number = transportConformanceSuite;
// @ts-expect-error a function
export const a28: number = createUdpTransport;
// @ts-expect-error a function
export const a29: number = createWebSocketTransport;

// And the backend facts are the backend names.
export const backendNames: ('ts' | 'native' | 'mixed')[] = [fusionInfo().backend, crcInfo().backend, packetInfo().backend, crcInfo().backends.crc16 ?? 'ts'];
export const mode: 'ts' | 'native' | 'auto' = backendReport().fusion.backendMode;
// @ts-expect-error a class
export const a23: number = MemoryReadingsSink;
// @ts-expect-error an interface
export const a24: ReadingFrame = 0;
// @ts-expect-error a function
export const a25: number = openSqliteReadingsSink;
// @ts-expect-error a function
export const a26: number = openSqliteStore;
// @ts-expect-error a function
export const a27: number = openPostgresReadingsSink;
// The server and its entries: a class, an interface, the configuration and the device helpers.
// @ts-expect-error a class
export const s1: number = OpenSynapticServer;
// @ts-expect-error an interface
export const s2: ServerReading = 0;
// @ts-expect-error a class
export const s3: number = ServerError;
// @ts-expect-error a schema object
export const s4: number = ConfigSchema;
// @ts-expect-error a function
export const s5: number = loadConfig;
// @ts-expect-error a function
export const s6: number = validateConfig;
// @ts-expect-error a function
export const s7: number = ensureId;
// @ts-expect-error a function
export const s8: number = ensureTime;
// @ts-expect-error a function
export const s9: number = linkNode;
