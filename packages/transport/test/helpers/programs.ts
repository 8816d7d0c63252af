/** Where Debian installs the programs the tests start. */
export const MOSQUITTO = '/usr/sbin/mosquitto';
export const SOCAT = '/usr/bin/socat';
