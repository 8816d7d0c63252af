import type { TransportDriver } from '@opensynaptic/transport';
import { DriverError } from '@opensynaptic/transport';

export const udpDriver: TransportDriver = {
  name: 'udp',
  create: () => {
    throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'udp', 'not yet');
  },
};
