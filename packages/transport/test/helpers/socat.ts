// The pseudo-terminal pair helper is shared with the server's serial interop tests (`@opensynaptic/config/socat`).
export { PtyPair } from '@opensynaptic/config/socat';
