// The parent's side of sender.mjs (forked, so its CPU is not the server's), shared by the ingest
// and workers benches: `ready` (the sender's devices, sensors and FULL count), `run(settings)`
// (resolves to the run's `done` report) and `exit()`; and the machine's UDP receive-buffer drops.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Forks the sender and waits for its `ready`. */
export async function startSender() {
  const child = fork(new URL('./sender.mjs', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies = [];
  let wakeReply;
  child.on('message', (m) => {
    replies.push(m);
    wakeReply?.();
  });
  const reply = async () => {
    while (replies.length === 0) await new Promise((r) => (wakeReply = r));
    return replies.shift();
  };
  const { ready } = await reply();
  return {
    ready,
    async run(run) {
      child.send({ run });
      return (await reply()).done;
    },
    exit() {
      child.send({ exit: true });
    },
  };
}

/** The machine's UDP receive-buffer drops so far (all sockets of the machine: others' too). */
export function kernelUdpDrops() {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const [names, values] = lines.map((l) => l.split(/\s+/).slice(1));
    return Number(values[names.indexOf('RcvbufErrors')]);
  } catch {
    return Number.NaN;
  }
}
