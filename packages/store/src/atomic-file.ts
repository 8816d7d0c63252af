/**
 * The one atomic file writer of the stack (the file store's; fusion's registry files and the
 * handshake's sessions and leases all go through `FileStore`).
 *
 * A file is replaced by writing a temporary file beside it (`.<name>.<pid>.<n>.tmp`, same folder,
 * so the rename never crosses devices), flushing it, and renaming it over the target: a reader,
 * or the process restarted after a kill, sees the old file or the new one, never a torn one.
 * Killed writers leave their temporary file behind; `removeStaleTempFiles` clears those when a
 * store opens. Every system call goes through `node:fs/promises`, so the event loop keeps serving
 * while the disk works (fsync included). Node only: callers pass the `node:fs/promises` they
 * obtained (browsers have none).
 */

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

/** The temporary file name `writeFileAtomicAsync` uses for `path`. */
function tempPathFor(path: string): string {
  return `${parentOf(path)}/.${baseName(path)}.${ownPid()}.${++tmpCounter}.tmp`;
}

/** Temporary files of `writeFileAtomicAsync`: `.<target>.<pid>.<n>.tmp`. */
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

/** The part of `node:fs/promises` the writer uses. */
export interface AtomicFsPromises {
  open(path: string, flags: string, mode?: number): Promise<AtomicFileHandle>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options?: { force?: boolean }): Promise<void>;
  mkdir(path: string, options?: { recursive?: boolean }): Promise<string | undefined>;
  readdir(path: string): Promise<string[]>;
  stat(path: string): Promise<{ mtimeMs: number }>;
}

/** The part of a `node:fs/promises` `FileHandle` the writer uses. */
export interface AtomicFileHandle {
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Flushes a folder's entries (a rename or a new file in it). Best effort: Windows cannot. */
export async function syncDirAsync(fs: AtomicFsPromises, dir: string): Promise<void> {
  let handle: AtomicFileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // The data is in the file already; a folder that cannot be synced does not undo the write.
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
 * Replaces `path` with `data` atomically (see the module comment), creating missing folders:
 * when the promise resolves the new file is in place (flushed to the device, file and folder,
 * when `durable`); when it rejects (with the underlying error, which callers wrap in their typed
 * error) the old file is intact and the temporary file is removed.
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
        // Each new folder is an entry of its parent: flush the parents from `dir` up to the
        // parent of the first folder created, or a power cut can lose the file with its folder.
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

/**
 * Removes, in `dir`, the temporary files `writeFileAtomicAsync` leaves when its process is
 * killed mid-write: only names of its own pattern, only for targets `accept` allows (e.g.
 * `42.json`), only stale ones (the writer's pid no longer runs, or the file is `maxAgeMs` old).
 * Resolves to the names removed; a folder that is missing or unreadable removes nothing.
 */
export async function removeStaleTempFiles(
  fs: AtomicFsPromises,
  dir: string,
  accept: (target: string) => boolean,
  maxAgeMs: number = DEFAULT_STALE_TEMP_MS,
  now: number = Date.now(),
): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
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
        stale = now - (await fs.stat(path)).mtimeMs >= maxAgeMs;
      } catch {
        continue; // gone already
      }
    }
    if (!stale) continue;
    try {
      await fs.rm(path, { force: true });
      removed.push(name);
    } catch {
      // Another process may be cleaning too; the next open tries again.
    }
  }
  return removed;
}
