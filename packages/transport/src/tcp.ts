import type { TransportDriver } from '@opensynaptic/transport';
import { DriverError } from '@opensynaptic/transport';

export const tcpDriver: TransportDriver = {
  name: 'tcp',
  create: () => {
    throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'tcp', 'not yet');
  },
};

export const unixDriver: TransportDriver = {
  name: 'unix',
  create: () => {
    throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'unix', 'not yet');
  },
};
