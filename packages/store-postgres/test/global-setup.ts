// Starts the private PostgreSQL server the tests use (Debian's postgresql, installed with apt-get
// when missing) and stops it after them. When it cannot start, CI fails with the reason; a
// developer's run skips the PostgreSQL tests and prints the reason.
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
  return providePostgres(project);
}
