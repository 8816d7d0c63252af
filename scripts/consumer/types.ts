/**
 * Type-level checks of the published declarations: each name must have its real type, neither
 * `any` nor the unresolved type that a declaration importing an unpublished module leaves
 * (silently accepted under `skipLibCheck`). Each line below is a type error when the type is
 * real; if it were `any` or unresolved the directive would be unused, itself an error (TS2578).
 * Compile-time only.
 */
import { backend as base62Backend, encode as base62Encode } from '@opensynaptic/base62';
import { CMD } from '@opensynaptic/cmd';
import { OpenSynaptic, type TransmitResult } from '@opensynaptic/core';
import { backend as crcBackend, backends as crcBackends, deriveSessionKey, NativeUnavailableError } from '@opensynaptic/crc';
import { OSVisualFusionEngine } from '@opensynaptic/fusion';
import { OSHandshakeManager } from '@opensynaptic/handshake';
import { type DecodedFrame, decodeFrame, backend as packetBackend } from '@opensynaptic/packet';
import { compressFact } from '@opensynaptic/packet/body';

// @ts-expect-error a backend name is 'ts' | 'native'
export const a1: number = base62Backend;
// @ts-expect-error a function
export const a2: number = base62Encode;
// @ts-expect-error an object of command bytes
export const a3: number = CMD;
// @ts-expect-error a class
export const a4: number = OpenSynaptic;
// @ts-expect-error an interface
export const a5: TransmitResult = 0;
// @ts-expect-error a backend name
export const a6: number = crcBackend;
// @ts-expect-error a record of backend names
export const a7: number = crcBackends;
// @ts-expect-error a function
export const a8: number = deriveSessionKey;
// @ts-expect-error a class
export const a9: number = NativeUnavailableError;
// @ts-expect-error a class
export const a10: number = OSVisualFusionEngine;
// @ts-expect-error a class
export const a11: number = OSHandshakeManager;
// @ts-expect-error a backend name
export const a12: number = packetBackend;
// @ts-expect-error a function
export const a13: number = decodeFrame;
// @ts-expect-error a class
export const a14: DecodedFrame = 0;
// @ts-expect-error a function
export const a15: number = compressFact;

// And the backend facts are the two names.
export const backendNames: ('ts' | 'native')[] = [base62Backend, crcBackend, packetBackend, crcBackends.crc16 ?? 'ts'];
