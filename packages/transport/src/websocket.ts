import type { TransportDriver } from '@opensynaptic/transport';
import { DriverError } from '@opensynaptic/transport';

export const websocketDriver: TransportDriver = {
  name: 'websocket',
  create: () => {
    throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'websocket', 'not yet');
  },
};
