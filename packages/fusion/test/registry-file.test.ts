import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { referencePython } from '@opensynaptic/config/reference';
import { base64Encode } from '@opensynaptic/packet/body';
import { type FileStore, isStoreError, type StoreError } from '@opensynaptic/store';
import { afterAll, describe, expect, it } from 'vitest';
import { DeviceRegistry } from '../src/registry.js';
import { base64Decode, decodeRegistryFile, encodeRegistryFile, registryFilePath } from '../src/registry-file.js';
import { RegistryStoreError } from '../src/store-errors.js';
import { openFileTemplateStore, registryFromRecord, registryRecord, type TemplateKinds } from '../src/template-store.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'os-fusion-store-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every file under `dir`, relative, with `/` separators. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p).split('\\').join('/'));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

function storeError(f: () => unknown): RegistryStoreError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RegistryStoreError);
    return e as RegistryStoreError;
  }
  throw new Error('expected a RegistryStoreError, nothing was thrown');
}

/** Templates as plain data, in Map order. */
function shape(r: DeviceRegistry): Array<[number, string, string[] | null]> {
  return [...r.templates.values()].map((t) => [t.tid, t.sig, t.values]);
}

const SIG1 = 'DEV1.1.{TS}|T1>\x01:\x01|';

function sample(aid = 42): DeviceRegistry {
  const r = new DeviceRegistry(aid);
  r.put(1, SIG1, ['K.A01', 'TVK']);
  r.put(2, 'DEV1.1.{TS}|@msg "q" \\ é|', []);
  r.put(100, 'X.1.{TS}|', null);
  return r;
}

const SAMPLE_TEXT = [
  '{',
  '    "aid": "42",',
  '    "templates": {',
  '        "01": {',
  '            "sig": "DEV1.1.{TS}|T1>\\u0001:\\u0001|",',
  '            "last_vals_bin": [',
  '                "Sy5BMDE=",',
  '                "VFZL"',
  '            ]',
  '        },',
  '        "02": {',
  '            "sig": "DEV1.1.{TS}|@msg \\"q\\" \\\\ é|",',
  '            "last_vals_bin": []',
  '        },',
  '        "100": {',
  '            "sig": "X.1.{TS}|"',
  '        }',
  '    }',
  '}',
].join('\n');

/** The registry of `aid` through the store, or `null`. */
async function load(s: FileStore<TemplateKinds>, aid: number): Promise<DeviceRegistry | null> {
  const r = await s.get('templates', String(aid));
  return r === undefined ? null : registryFromRecord(r);
}

async function save(s: FileStore<TemplateKinds>, ...registries: DeviceRegistry[]): Promise<void> {
  await s.write(registries.map((r) => ({ op: 'put', kind: 'templates', key: String(r.aid), value: registryRecord(r) })));
  await s.flush();
}

async function rejection(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    expect(isStoreError(e)).toBe(true);
    return e as StoreError;
  }
  throw new Error('expected a StoreError, nothing was thrown');
}

describe('registry file format', () => {
  it('places files like the reference: aid padded to 10 digits gives two folder levels', () => {
    expect(registryFilePath('/r', 42)).toBe('/r/00/00/42.json');
    expect(registryFilePath('/r/', 0)).toBe('/r/00/00/0.json');
    expect(registryFilePath('r', 1_234_567_890)).toBe('r/12/34/1234567890.json');
    expect(registryFilePath('r', 98_765)).toBe('r/00/00/98765.json');
    expect(registryFilePath('r', 4_294_967_295)).toBe('r/42/94/4294967295.json');
  });

  it('refuses AIDs that are not uint32 (no path can be forged)', () => {
    for (const aid of [-1, 1.5, 2 ** 32, Number.NaN, Number.POSITIVE_INFINITY, '42', '../../etc/passwd', null, undefined, 42n]) {
      const e = storeError(() => registryFilePath('/r', aid as number));
      expect(e.code).toBe('ERR_FUSION_STORE_AID');
      expect(e.message).toMatch(/AID must be an integer 0\.\.4294967295/);
    }
    expect(storeError(() => registryFilePath('/r', -7)).aid).toBe(-7);
  });

  it('writes the reference layout: insertion order, 4-space indent, no trailing newline', () => {
    expect(encodeRegistryFile(sample())).toBe(SAMPLE_TEXT);
    expect(encodeRegistryFile(new DeviceRegistry(7))).toBe('{\n    "aid": "7",\n    "templates": {}\n}');
  });

  it('reads back what it writes, keeping file order (JSON.parse would put "100" first)', () => {
    const r = decodeRegistryFile(42, SAMPLE_TEXT);
    expect(shape(r)).toEqual(shape(sample()));
    expect(r.dirty).toBe(false);
    expect(r.findSig(SIG1)?.tid).toBe(1);
    const order = decodeRegistryFile(1, '{"aid": "1", "templates": {"02": {"sig": "b"}, "10": {"sig": "c"}, "01": {"sig": "a"}}}');
    expect([...order.templates.keys()]).toEqual([2, 10, 1]);
  });

  it('encodes values as standard base64 of their UTF-8 bytes', () => {
    const r = new DeviceRegistry(1);
    r.put(1, 's', ['é€😀', '\u0000', '>>>??', '']);
    const text = encodeRegistryFile(r);
    expect(text).toContain('"w6nigqzwn5iA"');
    expect(text).toContain('"AA=="');
    expect(text).toContain('"Pj4+Pz8="'); // '+' and '/' alphabet, not URL-safe
    expect(shape(decodeRegistryFile(1, text))).toEqual(shape(r));
  });

  it('decodes base64 as leniently as the reference', () => {
    // Outcomes of the reference decoder (Python base64.b64decode) for the same inputs.
    const cases: Array<[string, string | null]> = [
      ['QQ==', 'A'],
      ['QQ', null],
      ['QQ=', null],
      ['Q', null],
      ['QUJD', 'ABC'],
      ['QU JD', 'ABC'],
      ['QU-JD', 'ABC'],
      ['QQ==QQ==', 'A'],
      ['QQ=a', null],
      ['Q===', null],
      ['QUI=QUI=', 'AB'],
      ['', ''],
      ['=', ''],
      ['==QQ', null],
      ['QUJ\nD', 'ABC'],
      ['QUJDRA', null],
      ['QUJDRA==', 'ABCD'],
      ['QUJDRA====', 'ABCD'],
      ['QU=JD', 'ABC'],
      ['QUJD==', 'ABC'],
      ['QéUJD', null],
      ['QR==', 'A'],
      ['QUK=', 'AB'],
    ];
    for (const [input, want] of cases) {
      const got = base64Decode(input);
      expect([input, got === null ? null : String.fromCharCode(...got)]).toEqual([input, want]);
    }
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    for (let n = 0; n <= 256; n += 37) {
      expect(base64Decode(base64Encode(all.subarray(0, n)))).toEqual(all.subarray(0, n));
    }
  });

  it('refuses every wrong shape and invalid entry with ERR_FUSION_STORE_CORRUPT naming the field', () => {
    // The reference repairs these (an empty registry, or entries dropped) and overwrites the file
    // at its next save; here the file is refused whole, like a file that is not JSON.
    const cases: Array<[string, string]> = [
      ['{}', 'aid'],
      ['[]', '(top level)'],
      ['null', '(top level)'],
      ['5', '(top level)'],
      ['"x"', '(top level)'],
      ['{"aid": "5"}', 'templates'],
      ['{"aid": "5", "templates": []}', 'templates'],
      ['{"aid": "5", "templates": "x"}', 'templates'],
      ['{"aid": "5", "templatez": {}}', '"templatez"'],
      ['{"aid": "5", "templates": {}, "extra": 1}', '"extra"'],
      ['{"templates": {}}', 'aid'],
      ['{"aid": 5, "templates": {}}', 'aid'],
      ['{"aid": "6", "templates": {}}', 'aid'],
      ['{"aid": "5", "templates": {"1": {"sig": "a"}}}', 'templates."1"'],
      ['{"aid": "5", "templates": {"001": {"sig": "a"}}}', 'templates."001"'],
      ['{"aid": "5", "templates": {"256": {"sig": "a"}}}', 'templates."256"'],
      ['{"aid": "5", "templates": {"ab": {"sig": "a"}}}', 'templates."ab"'],
      ['{"aid": "5", "templates": {"01": "x"}}', 'templates."01"'],
      ['{"aid": "5", "templates": {"01": {"sig": ""}}}', 'templates."01".sig'],
      ['{"aid": "5", "templates": {"01": {"sig": 7}}}', 'templates."01".sig'],
      ['{"aid": "5", "templates": {"01": {"last_vals_bin": []}}}', 'templates."01".sig'],
      ['{"aid": "5", "templates": {"01": {"sig": "a", "siq": 1}}}', 'templates."01"."siq"'],
      ['{"aid": "5", "templates": {"01": {"sig": "a", "last_vals_bin": "QQ=="}}}', 'templates."01".last_vals_bin'],
      ['{"aid": "5", "templates": {"01": {"sig": "a", "last_vals_bin": null}}}', 'templates."01".last_vals_bin'],
      ['{"aid": "5", "templates": {"01": {"sig": "a", "last_vals_bin": ["QQ==", 5]}}}', 'templates."01".last_vals_bin[1]'],
      // "*" is what the reference's lenient decoder reads as "" (and a later HEART as a wrong value).
      ['{"aid": "5", "templates": {"01": {"sig": "a", "last_vals_bin": ["*"]}}}', 'templates."01".last_vals_bin[0]'],
      ['{"aid": "5", "templates": {"01": {"sig": "a", "last_vals_bin": ["QQ"]}}}', 'templates."01".last_vals_bin[0]'],
      ['{"aid": "5", "templates": {"01": {"sig": "a", "last_vals_bin": ["QR=="]}}}', 'templates."01".last_vals_bin[0]'],
      ['{"aid": "5", "templates": {"01": {"sig": "a", "last_vals_bin": ["QU JD"]}}}', 'templates."01".last_vals_bin[0]'],
      ['{"aid": "5", "templates": {"01": {"sig": "a", "last_vals_bin": ["QQ==QQ=="]}}}', 'templates."01".last_vals_bin[0]'],
      ['{"aid": "5", "templates": {"01": {"sig": "a", "last_vals_bin": ["/w=="]}}}', 'templates."01".last_vals_bin[0]'], // not UTF-8
    ];
    for (const [text, field] of cases) {
      const e = storeError(() => decodeRegistryFile(5, text));
      expect([text, e.code]).toEqual([text, 'ERR_FUSION_STORE_CORRUPT']);
      expect(e.message, text).toContain(`${field}:`);
      expect(e.aid).toBe(5);
    }
    // Valid, canonical files load clean.
    expect(decodeRegistryFile(5, '{"aid": "5", "templates": {}}').dirty).toBe(false);
    const ok = decodeRegistryFile(5, '{"aid": "5", "templates": {"01": {"sig": "a", "last_vals_bin": ["QQ==", "", "QUI="]}, "02": {"sig": "b", "last_vals_bin": []}}}');
    expect(shape(ok)).toEqual([
      [1, 'a', ['A', '', 'AB']],
      [2, 'b', []],
    ]);
    expect(ok.dirty).toBe(false);
  });

  it('accepts the JSON syntax the reference accepts, except duplicate keys', () => {
    expect(decodeRegistryFile(1, ' {"aid": "1", "templates": {"01": {"sig": "a\\u00e9\\n"}}} \n').templates.get(1)?.sig).toBe('aé\n');
    const dup = '{"aid": "1", "templates": {"01": {"sig": "a"}, "02": {"sig": "b"}, "01": {"sig": "c"}}}';
    for (const bad of [dup, '', ' ', '{', '{"templates": {}', '{"a" 1}', "{'a': 1}", '{"a": 1,}', '[1,]', '{"a": 01}', '{"a": "\u0001"}', '{"a": "\\x"}', '{} {}', '\ufeff{}', 'nan', '{"a": .5}', '[[[[[[[[[[[[[[[[[[[[[[[[[[[['.repeat(40)]) {
      const e = storeError(() => decodeRegistryFile(1, bad));
      expect([bad, e.code]).toEqual([bad, 'ERR_FUSION_STORE_CORRUPT']);
      expect(e.cause, JSON.stringify(bad)).toBeInstanceOf(SyntaxError);
    }
  });
});

describe('registry files through the file template store', () => {
  it('round-trips registries through files at the reference paths', async () => {
    const root = join(tempDir(), 'device_registry');
    const s = await openFileTemplateStore(root);
    expect(await load(s, 42)).toBeNull();
    expect(existsSync(root)).toBe(false); // loading creates nothing
    await save(s, sample(), sample(4_294_967_295));
    expect(listFiles(root)).toEqual(['00/00/42.json', '42/94/4294967295.json']);
    expect(readFileSync(join(root, '00/00/42.json'), 'utf8')).toBe(SAMPLE_TEXT);
    const again = await openFileTemplateStore(root);
    const back = (await load(again, 42))!;
    expect(back.aid).toBe(42);
    expect(back.dirty).toBe(false);
    expect(shape(back)).toEqual(shape(sample()));
    expect(back.findSig(SIG1)).toBe(back.templates.get(1));

    back.put(1, SIG1, ['K.A01', 'XYZ']);
    back.remove(2);
    await save(again, back);
    expect(shape((await load(await openFileTemplateStore(root), 42))!)).toEqual([
      [1, SIG1, ['K.A01', 'XYZ']],
      [100, 'X.1.{TS}|', null],
    ]);
    await again.write([{ op: 'delete', kind: 'templates', key: '42' }]);
    await again.write([{ op: 'delete', kind: 'templates', key: '42' }]); // deleting what is not there is fine
    await again.flush();
    expect(await load(await openFileTemplateStore(root), 42)).toBeNull();
    expect(listFiles(root)).toEqual(['42/94/4294967295.json']); // no temporary files left
  });

  it('never reads a file of the wrong shape as empty, so no write overwrites it unseen', async () => {
    const root = tempDir();
    const seen: string[] = [];
    const strict = await openFileTemplateStore({ root });
    const quarantine = await openFileTemplateStore({ root, onCorrupt: 'quarantine', onQuarantine: (e) => seen.push(e.message) });
    const path = registryFilePath(root, 9);
    mkdirSync(dirname(path), { recursive: true });
    for (const content of ['{}', '[]', 'null', '5', '{"aid": "9", "tmpl": {}}', '{"aid": "9", "templates": {"01": {"sig": "a", "last_vals_bin": ["*"]}}}', '{"aid": "9", "templ', '', '\u00ff']) {
      writeFileSync(path, content);
      const e = await rejection(strict.get('templates', '9'));
      expect([content, e.code, e.path]).toEqual([content, 'ERR_STORE_CORRUPT', path]);
      // The registry codec's own error, naming the field, is the cause.
      expect(e.cause).toBeDefined();
      expect(readFileSync(path, 'utf8')).toBe(content); // left in place
      expect(await quarantine.get('templates', '9')).toBeUndefined();
      expect(existsSync(path)).toBe(false);
      const moved = listFiles(root).filter((f) => f.includes('.corrupt-'));
      expect(moved.map((f) => readFileSync(join(root, f), 'utf8'))).toContain(content);
      expect(moved[0]).toMatch(/9\.json\.corrupt-\d+-\d+$/);
      for (const f of moved) rmSync(join(root, f));
    }
    expect(seen).toHaveLength(9);
    // After a quarantine the AID can be written afresh.
    await save(quarantine, sample(9));
    expect(shape((await load(quarantine, 9))!)).toEqual(shape(sample()));
  });

  it('names the field of a registry file of the wrong shape', async () => {
    const root = tempDir();
    const path = registryFilePath(root, 9);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, '{"aid": "9", "templates": {"01": {"sig": "a", "last_vals_bin": ["*"]}}}');
    const e = await rejection((await openFileTemplateStore(root)).get('templates', '9'));
    expect(e.cause).toBeInstanceOf(RegistryStoreError);
    expect((e.cause as RegistryStoreError).code).toBe('ERR_FUSION_STORE_CORRUPT');
    expect(e.message).toContain('last_vals_bin[0]');
  });

  it('removes stale temporary files of killed writers from the registry folders when it opens', async () => {
    const root = tempDir();
    const dir = join(root, '00', '00');
    mkdirSync(dir, { recursive: true });
    const keep = [
      '42.json',
      '.42.json.1.1.tmp.bak', // not the pattern
      'x.tmp',
      `.42.json.${process.pid}.77.tmp`, // a live writer (this process), recent
    ];
    // pid 999999999 cannot run (above the kernel's pid limit): its files are stale at once.
    const stale = ['.42.json.999999999.1.tmp', '.7.json.999999999.12.tmp'];
    for (const f of [...keep, ...stale]) writeFileSync(join(dir, f), 'x');
    const s = await openFileTemplateStore({ root });
    expect([...s.removedTempFiles].sort()).toEqual(stale.map((f) => `00/00/${f}`).sort());
    expect(listFiles(root)).toEqual(keep.map((f) => `00/00/${f}`).sort());
    // Old enough, a live writer's temporary file is stale too; `false` skips the scan.
    expect((await openFileTemplateStore({ root, staleTempMs: false })).removedTempFiles).toEqual([]);
    expect((await openFileTemplateStore({ root, staleTempMs: 0 })).removedTempFiles).toEqual([`00/00/.42.json.${process.pid}.77.tmp`]);
    expect((await rejection(openFileTemplateStore({ root, staleTempMs: -1 }))).code).toBe('ERR_STORE_OPTION');
  });

  it('gives typed errors for bad AIDs and I/O failures', async () => {
    const root = tempDir();
    const s = await openFileTemplateStore({ root, durable: false });
    for (const key of ['-1', '1.5', '4294967296', 'NaN', '042', '../../etc/passwd']) {
      expect((await rejection(s.write([{ op: 'put', kind: 'templates', key, value: registryRecord(new DeviceRegistry(1)) }]))).code).toBe('ERR_STORE_KEY');
    }
    expect(listFiles(root)).toEqual([]);

    // A file where a folder should be: the layout is unusable.
    const blocked = join(tempDir(), 'blocked');
    writeFileSync(blocked, 'not a folder');
    const b = await openFileTemplateStore(blocked);
    await b.write([{ op: 'put', kind: 'templates', key: '42', value: registryRecord(sample()) }]);
    const w = await rejection(b.flush());
    expect(w.code).toBe('ERR_STORE_WRITE');
    expect(w.path).toBe(`${blocked}/00/00/42.json`);
    expect(w.cause).toBeInstanceOf(Error);

    // A folder where the file should be.
    mkdirSync(join(root, '00', '00', '3.json'), { recursive: true });
    expect((await rejection(s.get('templates', '3'))).code).toBe('ERR_STORE_READ');
    await s.write([{ op: 'put', kind: 'templates', key: '3', value: registryRecord(sample(3)) }]);
    expect((await rejection(s.flush())).code).toBe('ERR_STORE_WRITE');
    expect(listFiles(root)).toEqual([]); // the temporary file was removed
  });
});

// ---------------------------------------------------------------------------------------------
// Interoperability with the reference implementation (opensynaptic 1.4.2, Python).

// OPENSYNAPTIC_REFERENCE_PYTHON, else a virtualenv with the reference that this creates (once).
const found = await referencePython();
const reference = found.python === null ? { python: null, why: found.reason } : { python: found.python, why: '' };
if (reference.python === null) {
  console.log(`reference interop tests skipped: no Python with opensynaptic 1.4.2 (${reference.why})`);
}

// Drives the reference engine. Prints one line "RESULT <json>" (its logger may print too).
const PY = `
import sys, json, os, base64
args = json.loads(sys.argv[1])
from opensynaptic.core.pycore.unified_parser import OSVisualFusionEngine
from opensynaptic.core.pycore.solidity import OpenSynapticEngine

def engine(name, root, assigned):
    cfg = os.path.join(args['work'], name + '.json')
    with open(cfg, 'w') as f:
        json.dump({'RESOURCES': {'registry': root}, 'assigned_id': assigned}, f)
    return OSVisualFusionEngine(cfg), OpenSynapticEngine(cfg)

def state(reg):
    return [[tid, tpl['sig'], [v.decode('utf-8') for v in reg['runtime_vals'].get(tid, [])], 'last_vals_bin' in tpl]
            for tid, tpl in reg['data']['templates'].items()]

def fact(dev, v1, v2):
    return {'id': dev, 's': 'ONLINE', 't': 1700000000, 's1_id': 'T1', 's1_s': 'OK', 's1_u': 'Cel', 's1_v': v1,
            's2_id': 'H', 's2_s': 'OK', 's2_u': '%', 's2_v': v2}

out = {}
mode = args['mode']
if mode == 'write':
    # Sender 42 learns two templates and updates one; receiver learns sender 7's template.
    s42, c = engine('s42', args['root'], 42)
    b1 = c.compress(fact('DEV1', 21.5, 40))
    b2 = c.compress({'id': 'DEV2', 's': 'ONLINE', 't': 1700000000, 's1_id': 'P', 's1_s': 'OK', 's1_u': 'Pa', 's1_v': 101325})
    s42.run_engine('42;' + b1, 'FULL')
    s42.run_engine('42;' + b2, 'FULL')
    s42.run_engine('42;' + c.compress(fact('DEV1', 22.5, 40)), 'DIFF')
    out['heart42'] = s42.run_engine('42;' + c.compress(fact('DEV1', 22.5, 40)), 'DIFF').hex()
    s42._sync_to_disk('42')
    out['s42'] = state(s42._RAM_CACHE['42'])
    s7, c7 = engine('s7', os.path.join(args['work'], 'elsewhere'), 7)
    frame = s7.run_engine('7;' + c7.compress(fact('NODE7', 3.25, 55)), 'FULL')
    rx, _ = engine('rx', args['root'], 1)
    learned = rx.decompress(frame)
    assert 'error' not in learned, learned
    rx._sync_to_disk('7')
    out['rx7'] = state(rx._RAM_CACHE['7'])
elif mode == 'read':
    rx, _ = engine('rx2', args['root'], 1)
    res = rx.decompress(bytes.fromhex(args['heart42']))
    out['heart'] = {k: v for k, v in res.items() if k != '__packet_meta__'}
    out['regs'] = {}
    for aid in args['aids']:
        reg = rx._get_active_registry(aid)
        out['regs'][str(aid)] = {'dirty': reg['dirty'], 'state': state(reg)}
    out['same_text'] = {}
    for path in args['files']:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        out['same_text'][path] = json.dumps(json.loads(text), indent=4, ensure_ascii=False) == text
elif mode == 'b64':
    res = []
    for s in args['inputs']:
        try:
            res.append(base64.b64decode(s).hex())
        except Exception:
            res.append(None)
    out['decoded'] = res
print('RESULT ' + json.dumps(out))
`;

function runReference(python: string, args: Record<string, unknown>): Record<string, unknown> {
  const stdout = execFileSync(python, ['-c', PY, JSON.stringify(args)], { encoding: 'utf8', cwd: args['work'] as string, stdio: ['ignore', 'pipe', 'pipe'] });
  const line = stdout
    .split('\n')
    .filter((l) => l.startsWith('RESULT '))
    .pop();
  if (line === undefined) throw new Error(`reference printed no result:\n${stdout}`);
  return JSON.parse(line.slice(7)) as Record<string, unknown>;
}

/**
 * Our registry in the reference's `state()` shape: it reads unknown values as none, and keeps no
 * `last_vals_bin` key for an empty list once read.
 */
function referenceShape(r: DeviceRegistry): Array<[string, string, string[], boolean]> {
  return [...r.templates].map(([tid, t]) => [tid < 10 ? `0${tid}` : String(tid), t.sig, t.values ?? [], (t.values?.length ?? 0) > 0]);
}

describe.skipIf(reference.python === null)(`reference interop (${reference.python ?? `skipped: ${reference.why}`})`, () => {
  const python = reference.python!;

  it('reads what the reference writes, and writes it back byte for byte', { timeout: 60_000 }, async () => {
    const work = tempDir();
    const root = join(work, 'device_registry');
    const res = runReference(python, { mode: 'write', work, root });
    expect(listFiles(root).filter((f) => f.endsWith('.json'))).toEqual(['00/00/42.json', '00/00/7.json']);
    const s = await openFileTemplateStore(root);
    const r42 = (await load(s, 42))!;
    const r7 = (await load(s, 7))!;
    expect(r42.dirty).toBe(false);
    expect(r7.dirty).toBe(false);
    expect(referenceShape(r42)).toEqual(res['s42']);
    expect(referenceShape(r7)).toEqual(res['rx7']);
    expect(r42.templates.size).toBe(2);
    for (const [aid, r] of [
      [42, r42],
      [7, r7],
    ] as const) {
      expect(encodeRegistryFile(r)).toBe(readFileSync(registryFilePath(root, aid), 'utf8'));
    }
    // Written back through the store: the same bytes.
    await save(s, r42, r7);
    for (const aid of [42, 7]) expect(readFileSync(registryFilePath(root, aid), 'utf8')).toBe(encodeRegistryFile(aid === 42 ? r42 : r7));
  });

  it('writes files the reference reads without repair and decodes frames from', { timeout: 60_000 }, async () => {
    const work = tempDir();
    const src = join(work, 'sender');
    const { heart42 } = runReference(python, { mode: 'write', work, root: src });
    // Hand the sender's learned template to a fresh receiver through our store only.
    const dst = join(work, 'receiver');
    const s = await openFileTemplateStore(dst);
    await save(s, (await load(await openFileTemplateStore(src), 42))!);
    const odd = new DeviceRegistry(4_294_967_295);
    odd.put(1, 'N\u00e9\u20ac\u{1f600}.1.{TS}|@"q"\\ \t\n\u0001\u001f\u007f\u2028|T>\x01:\x01|', ['K.Cel', 'é€😀"\\\n']);
    odd.put(100, 'H.1.{TS}|', null);
    odd.put(2, 'E.1.{TS}|', []);
    odd.put(255, 'Z.1.{TS}|T>\x01:\x01|', ['', ' ']);
    await save(s, odd);
    const files = [registryFilePath(dst, 42), registryFilePath(dst, 4_294_967_295)];
    const res = runReference(python, { mode: 'read', work, root: dst, heart42, aids: [42, 4_294_967_295], files }) as {
      heart: Record<string, unknown>;
      regs: Record<string, { dirty: boolean; state: unknown }>;
      same_text: Record<string, boolean>;
    };
    expect(res.heart['error']).toBeUndefined();
    expect(res.heart).toMatchObject({ id: 'DEV1', s1_id: 'T1', s1_v: 22.5, s2_v: 40 });
    expect(res.regs['42']!.dirty).toBe(false);
    expect(res.regs['4294967295']).toEqual({ dirty: false, state: referenceShape(odd) });
    expect(res.same_text).toEqual(Object.fromEntries(files.map((f) => [f, true])));
  });

  it('decodes base64 exactly like the reference on random inputs', { timeout: 60_000 }, () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const alphabet = 'QUJDRA+/=====  -_!\n0aZ';
    const inputs = Array.from({ length: 3000 }, () => Array.from({ length: rand(14) }, () => alphabet[rand(alphabet.length)]).join(''));
    const work = tempDir();
    const res = runReference(python, { mode: 'b64', work, inputs }) as { decoded: Array<string | null> };
    const ours = inputs.map((s) => {
      const b = base64Decode(s);
      return b === null ? null : Buffer.from(b).toString('hex');
    });
    expect(ours).toEqual(res.decoded);
  });
});
