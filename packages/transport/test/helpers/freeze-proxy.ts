import { createServer, type Server, type Socket, connect } from 'node:net';

/**
 * A TCP relay between a client and a server that can be frozen: it then stops forwarding either
 * way and closes nothing, which is what a peer whose host died (or a dropped route) looks like
 * from each end: a half-open connection.
 */
export interface FreezeProxy {
  port: number;
  freeze(): void;
  close(): Promise<void>;
}

export async function freezeProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<FreezeProxy> {
  let frozen = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect({ port: targetPort, host: targetHost });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    inbound.on('data', (d) => frozen || outbound.write(d));
    outbound.on('data', (d) => frozen || inbound.write(d));
    inbound.on('end', () => frozen || outbound.end());
    outbound.on('end', () => frozen || inbound.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    freeze: () => {
      frozen = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
