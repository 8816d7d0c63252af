import type { TransportDriver } from '@opensynaptic/transport';
import { DriverError } from '@opensynaptic/transport';

export const serialDriver: TransportDriver = {
  name: 'serial',
  create: () => {
    throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'serial', 'not yet');
  },
};
