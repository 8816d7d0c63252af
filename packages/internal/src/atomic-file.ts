/**
 * The one atomic file writer of the stores (fusion registries, handshake sessions and leases).
 *
 * A file is replaced by writing a temporary file beside it (`.<name>.<pid>.<n>.tmp`, same folder,
 * so the rename never crosses devices), flushing it, and renaming it over the target: a reader,
 * or the process restarted after a kill, sees the old file or the new one, never a torn one.
 * Killed writers leave their temporary file behind; `removeStaleTempFiles` clears those when a
 * store opens. Node only: callers pass the `node:fs` they obtained (browsers have none).
 */

/** The part of `node:fs` the writer uses. */
export interface AtomicFs {
  openSync(path: string, flags: string, mode?: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  rmSync(path: string, options?: { force?: boolean }): void;
  mkdirSync(path: string, options?: { recursive?: boolean }): string | undefined;
  readdirSync(path: string): string[];
  statSync(path: string): { mtimeMs: number };
}

export interface AtomicWriteOptions {
  /**
   * `true` (default): the file and its folder are flushed to the device before returning, so
   * the write survives a power cut. `false`: it still survives a kill of the process (the page
   * cache outlives it) and is never torn, but a power cut may lose it.
   */
  durable?: boolean | undefined;
}

let tmpCounter = 0;

function ownPid(): number {
  return (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
}

function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function parentOf(path: string): string {
  const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  if (i < 0) return '.';
  return i === 0 ? path.slice(0, 1) : path.slice(0, i);
}

function baseName(path: string): string {
  return path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
}

/** Flushes a folder's entries (a rename or a new file in it). Best effort: Windows cannot. */
export function syncDir(fs: AtomicFs, dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // The data is in the file already; a folder that cannot be synced does not undo the write.
  }
  if (fd >= 0) {
    try {
      fs.closeSync(fd);
    } catch {
      // Nothing was written through this descriptor.
    }
  }
}

/** The temporary file name `writeFileAtomic` uses for `path`. */
function tempPathFor(path: string): string {
  return `${parentOf(path)}/.${baseName(path)}.${ownPid()}.${++tmpCounter}.tmp`;
}

/**
 * Replaces `path` with `data` atomically (see the module comment), creating missing folders.
 * Throws the underlying error (callers wrap it in their own typed error); the old file stays
 * intact and the temporary file is removed.
 */
export function writeFileAtomic(fs: AtomicFs, path: string, data: Uint8Array, options: AtomicWriteOptions = {}): void {
  const durable = options.durable ?? true;
  const dir = parentOf(path);
  const tmp = tempPathFor(path);
  let fd = -1;
  try {
    try {
      fd = fs.openSync(tmp, 'wx', 0o600);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      // First write in this folder: create it, then try again.
      const created = fs.mkdirSync(dir, { recursive: true });
      if (durable && created !== undefined) {
        // Each new folder is an entry of its parent: flush the parents from `dir` up to the
        // parent of the first folder created, or a power cut can lose the file with its folder.
        for (let d = dir; ; ) {
          const parent = parentOf(d);
          syncDir(fs, parent);
          if (d === created || parent === d) break;
          d = parent;
        }
      }
      fd = fs.openSync(tmp, 'wx', 0o600);
    }
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
    if (durable) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) {
      try {
        fs.closeSync(fd);
      } catch {
        // The write already failed; that error is the one to report.
      }
    }
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // A leftover temporary file is harmless, and the next open removes it.
    }
    throw e;
  }
  if (durable) syncDir(fs, dir);
}

/** Temporary files of `writeFileAtomic`: `.<target>.<pid>.<n>.tmp`. */
const TEMP_RE = /^\.(.+)\.(\d+)\.(\d+)\.tmp$/;

/** Default age after which a temporary file counts as stale even when its writer's pid runs. */
export const DEFAULT_STALE_TEMP_MS = 10 * 60 * 1000;

function processRuns(pid: number): boolean {
  const proc = (globalThis as { process?: { pid?: number; kill?: (pid: number, signal: number) => unknown } }).process;
  if (pid === proc?.pid || pid <= 0 || typeof proc?.kill !== 'function') return true;
  try {
    proc.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, under another user.
    return errnoCode(e) !== 'ESRCH';
  }
}

/**
 * Removes, in `dir`, the temporary files `writeFileAtomic` leaves when its process is killed
 * mid-write: only names of its own pattern, only for targets `accept` allows (e.g. `42.json`),
 * only stale ones (the writer's pid no longer runs, or the file is `maxAgeMs` old). Returns the
 * names removed; a folder that is missing or unreadable removes nothing.
 */
export function removeStaleTempFiles(
  fs: AtomicFs,
  dir: string,
  accept: (target: string) => boolean,
  maxAgeMs: number = DEFAULT_STALE_TEMP_MS,
  now: number = Date.now(),
): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (m === null || !accept(m[1]!)) continue;
    const path = `${dir}/${name}`;
    let stale = !processRuns(Number(m[2]));
    if (!stale) {
      try {
        stale = now - fs.statSync(path).mtimeMs >= maxAgeMs;
      } catch {
        continue; // gone already
      }
    }
    if (!stale) continue;
    try {
      fs.rmSync(path, { force: true });
      removed.push(name);
    } catch {
      // Another process may be cleaning too; the next open tries again.
    }
  }
  return removed;
}

/** The part of `node:fs/promises` the asynchronous writer uses. */
export interface AtomicFsPromises {
  open(path: string, flags: string, mode?: number): Promise<AtomicFileHandle>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options?: { force?: boolean }): Promise<void>;
  mkdir(path: string, options?: { recursive?: boolean }): Promise<string | undefined>;
}

/** The part of a `node:fs/promises` `FileHandle` the asynchronous writer uses. */
export interface AtomicFileHandle {
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** `syncDir` through the thread pool. Best effort, as `syncDir`. */
export async function syncDirAsync(fs: AtomicFsPromises, dir: string): Promise<void> {
  let handle: AtomicFileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // As in `syncDir`: the data is in the file already.
  }
  if (handle !== undefined) {
    try {
      await handle.close();
    } catch {
      // Nothing was written through this handle.
    }
  }
}

/**
 * `writeFileAtomic` with every system call (write, fsync, rename) through `node:fs/promises`,
 * so the event loop keeps serving while the disk works. Same temporary names, same guarantees:
 * when the promise resolves the new file is in place (flushed to the device when `durable`);
 * when it rejects the old file is intact and the temporary file is removed.
 */
export async function writeFileAtomicAsync(
  fs: AtomicFsPromises,
  path: string,
  data: Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const durable = options.durable ?? true;
  const dir = parentOf(path);
  const tmp = tempPathFor(path);
  let handle: AtomicFileHandle | undefined;
  try {
    try {
      handle = await fs.open(tmp, 'wx', 0o600);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      const created = await fs.mkdir(dir, { recursive: true });
      if (durable && created !== undefined) {
        // As in `writeFileAtomic`: flush each new folder's entry in its parent.
        for (let d = dir; ; ) {
          const parent = parentOf(d);
          await syncDirAsync(fs, parent);
          if (d === created || parent === d) break;
          d = parent;
        }
      }
      handle = await fs.open(tmp, 'wx', 0o600);
    }
    let off = 0;
    while (off < data.length) off += (await handle.write(data, off, data.length - off)).bytesWritten;
    if (durable) await handle.sync();
    const h = handle;
    handle = undefined;
    await h.close();
    await fs.rename(tmp, path);
  } catch (e) {
    if (handle !== undefined) {
      try {
        await handle.close();
      } catch {
        // The write already failed; that error is the one to report.
      }
    }
    try {
      await fs.rm(tmp, { force: true });
    } catch {
      // The next open removes it.
    }
    throw e;
  }
  if (durable) await syncDirAsync(fs, dir);
}
