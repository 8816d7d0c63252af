import { MultiBar, Presets, SingleBar } from 'cli-progress';
import { stringify } from './util.js';

/**
 * A text stream the CLI writes to; `process.stdout` and `process.stderr` fit. Typed here rather
 * than as Node's stream type, so the published types need no `@types/node`.
 */
export interface TextStream {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
}

/** See `Output.live`. */
export interface Live {
  update(payload: Record<string, unknown>): void;
  log(line: string): void;
  stop(): void;
}

export interface OutputStreams {
  stdout: TextStream;
  stderr: TextStream;
}

/**
 * Where a command's output goes. Human text by default; with `--json` the result is one JSON
 * document on stdout (streaming commands print one JSON object per line, NDJSON, ending with
 * the result), and the progress bar, which only ever goes to a terminal's stderr, is off.
 */
export class Output {
  readonly json: boolean;
  readonly #io: OutputStreams;
  constructor(json: boolean, io: OutputStreams) {
    this.json = json;
    this.#io = io;
  }
  /** A line of human output (stdout). */
  line(text: string): void {
    if (!this.json) this.#io.stdout.write(`${text}\n`);
  }
  /** Text as it is (CSV, a completion script). */
  raw(text: string): void {
    this.#io.stdout.write(text);
  }
  /** A status line beside the data (stderr, so that piping the data stays clean). */
  status(text: string): void {
    if (!this.json) this.#io.stderr.write(`${text}\n`);
  }
  /** One NDJSON event of a streaming command (only with `--json`). */
  event(data: Record<string, unknown>): void {
    if (this.json) this.#io.stdout.write(`${stringify(data)}\n`);
  }
  /** The command's result: JSON with `--json`, else what `human` prints. */
  result(data: unknown, human: () => void): void {
    if (this.json) this.#io.stdout.write(`${stringify(data, 2)}\n`);
    else human();
  }
  /** A streaming command's closing summary: the last NDJSON line (`"event":"summary"`) with `--json`. */
  summary(data: Record<string, unknown>, human: () => void): void {
    if (this.json) this.event({ event: 'summary', ...data });
    else human();
  }
  /**
   * A live view for long runs: lines that scroll (`log`) above one line of counters that is
   * redrawn in place (`update`, with the `format`'s `{fields}`), drawn by cli-progress on a
   * terminal's stdout. Not a terminal: `log` prints plain lines and `update` one counters line
   * every `plainEveryMs` (5 s). With `--json` both are silent (the command prints events).
   */
  live(format: string, plainEveryMs = 5000): Live {
    if (this.json) return { update() {}, log() {}, stop() {} };
    const stdout = this.#io.stdout;
    if (!stdout.isTTY) {
      let lastAt = 0;
      let pending: string | null = null;
      const render = (payload: Record<string, unknown>) => format.replace(/\{(\w+)\}/g, (_m, k: string) => String(payload[k] ?? ''));
      return {
        update(payload) {
          pending = render(payload);
          if (Date.now() - lastAt < plainEveryMs) return;
          lastAt = Date.now();
          stdout.write(`${pending}\n`);
          pending = null;
        },
        log(line) {
          stdout.write(`${line}\n`);
        },
        stop() {
          if (pending !== null) stdout.write(`${pending}\n`);
        },
      };
    }
    const multi = new MultiBar({ stream: stdout as NodeJS.WritableStream, format, hideCursor: true, clearOnComplete: false, linewrap: false, fps: 10, forceRedraw: true }, Presets.shades_classic);
    const bar = multi.create(1, 0, {});
    return {
      update(payload) {
        bar.update(0, payload);
      },
      log(line) {
        multi.log(`${line}\n`);
      },
      stop() {
        multi.stop();
      },
    };
  }
  /** A progress bar with a live rate on a terminal's stderr, or `null` (not a terminal, or `--json`). */
  progress(total: number, unit: string): SingleBar | null {
    if (this.json || !this.#io.stderr.isTTY || total < 2) return null;
    const bar = new SingleBar({ stream: this.#io.stderr as NodeJS.WritableStream, format: `{bar} {value}/{total} ${unit} | {percentage}% | {eta}s left`, hideCursor: true }, Presets.shades_classic);
    bar.start(total, 0);
    return bar;
  }
}
