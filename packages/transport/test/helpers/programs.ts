/** Where Debian installs the programs the tests start. */
export { MOSQUITTO } from '@opensynaptic/config/mosquitto';
export const SOCAT = '/usr/bin/socat';
