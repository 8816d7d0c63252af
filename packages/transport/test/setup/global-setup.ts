import { ensureTestPrograms } from '@opensynaptic/config/test-services';

// The MQTT tests start Debian's mosquitto and the serial tests a socat pseudo-terminal pair:
// installed here, once per run, when missing, so a fresh machine needs nothing by hand.
export default function setup(): void {
  ensureTestPrograms((m) => console.log(`transport tests: ${m}`));
}
