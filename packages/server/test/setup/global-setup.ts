import { ensureDebianPackages } from '@opensynaptic/config/apt';
import { MOSQUITTO } from '@opensynaptic/config/mosquitto';
import { SOCAT } from '@opensynaptic/config/socat';

// The MQTT tests start Debian's mosquitto and the serial interop tests a socat pseudo-terminal
// pair: installed here, once per run, when missing, so a fresh machine needs nothing by hand.
export default function setup(): void {
  ensureDebianPackages(
    [
      { program: MOSQUITTO, pkg: 'mosquitto' },
      { program: SOCAT, pkg: 'socat' },
    ],
    (m) => console.log(`server tests: ${m}`),
  );
}
