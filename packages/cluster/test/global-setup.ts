// Installs Debian's nats-server and mosquitto when missing (each test file starts its own
// servers), then starts the private PostgreSQL server the tests use (Debian's postgresql,
// installed with apt-get when missing) and stops it after them. When PostgreSQL cannot start, CI
// fails with the reason; a developer's run skips the PostgreSQL tests and prints the reason.
import { ensureDebianPackages } from '@opensynaptic/config/apt';
import { MOSQUITTO } from '@opensynaptic/config/mosquitto';
import { installNatsServer } from '@opensynaptic/config/nats';
import { providePostgres } from '@opensynaptic/config/postgres';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    pgDataDir: string;
    pgUnavailable: string;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  installNatsServer((m) => console.log(`cluster tests: ${m}`));
  ensureDebianPackages([{ program: MOSQUITTO, pkg: 'mosquitto' }], (m) => console.log(`cluster tests: ${m}`));
  return providePostgres(project);
}
