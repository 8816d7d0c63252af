// The broker helper is shared with the CLI's demo (`@opensynaptic/config/mosquitto`).
export { freePort, Mosquitto } from '@opensynaptic/config/mosquitto';
