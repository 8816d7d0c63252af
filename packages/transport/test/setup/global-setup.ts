import { ensureDebianPackages } from '@opensynaptic/config/apt';
import { MOSQUITTO, SOCAT } from '../helpers/programs.js';

// The MQTT tests start Debian's mosquitto and the serial tests a socat pseudo-terminal pair:
// installed here, once per run, when missing, so a fresh machine needs nothing by hand.
export default function setup(): void {
  ensureDebianPackages(
    [
      { program: MOSQUITTO, pkg: 'mosquitto' },
      { program: SOCAT, pkg: 'socat' },
    ],
    (m) => console.log(`transport tests: ${m}`),
  );
}
