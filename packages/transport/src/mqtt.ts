import type { TransportDriver } from '@opensynaptic/transport';
import { DriverError } from '@opensynaptic/transport';

export const mqttDriver: TransportDriver = {
  name: 'mqtt',
  create: () => {
    throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'mqtt', 'not yet');
  },
};
