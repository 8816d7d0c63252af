"""Records more golden cases from the live reference (pip install opensynaptic==1.4.2).

Writes vectors/base62-extra.json, crc-extra.json and packet-extra.json in the schemas of the shared
vector files, so the runner checks them with no code change. Seeded: two runs give identical files.
Run from the repository root:  .cache/venv/bin/python packages/vectors/scripts/generate-extra.py
"""
import base64
import json
import os
import random
import struct
import sys
import tempfile

from opensynaptic.core.pycore.unified_parser import OSVisualFusionEngine
from opensynaptic.utils.base62.base62 import Base62Codec
from opensynaptic.utils.security.security_core import crc8, crc16_ccitt, derive_session_key

OUT = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'vectors')
SOURCE = 'opensynaptic 1.4.2 pycore'
rng = random.Random(20261121)


def dump(name, generated_by, cases, **extra):
    doc = {'source': SOURCE, 'generatedBy': generated_by, **extra, 'cases': cases}
    with open(os.path.join(OUT, name), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    print(f'{name}: {len(cases)} cases')


def base62_cases():
    cases = []
    for p in (2, 4, 6):
        codec = Base62Codec(precision=p)
        for k in range(150):
            # Sensor-like magnitudes, with exact decimal ties at the rounding digit half the time.
            digits = rng.randint(0, p + 2)
            x = round(rng.uniform(-5000, 5000), digits)
            if k % 2:
                x = float(f'{x:.{p}f}5')
            enc = codec.encode(x)
            cases.append({'id': f'extra_float_p{p}_{k:03d}', 'input': {'kind': 'float', 'x': x, 'x_repr': repr(x), 'precision': p},
                          'expected': {'encoded': enc, 'scaled_product_repr': repr(x * 10 ** p),
                                       'scaled_int': str(int(round(x * 10 ** p))), 'decoded': codec.decode(enc)}})
    return cases


def crc_cases():
    cases = []
    for k in range(60):
        data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 3, 7, 40, 41, 255, 1024, 4099])))
        cases.append({'id': f'extra_crc_{k:03d}', 'input': {'data': data.hex()},
                      'expected': {'crc8': crc8(data), 'crc16_ccitt': crc16_ccitt(data)}})
    return cases


class Secure:
    """Makes the engine's outbound path encrypt with a fixed key, as a live session would."""

    def __init__(self, key):
        self.key = key

    def should_encrypt_outbound(self, aid):
        return self.key is not None

    def get_session_key(self, aid):
        return self.key

    def secure_variant_cmd(self, cmd):
        return {63: 64, 170: 171, 127: 128}.get(cmd, cmd)


def packet_cases(engine):
    cases = []
    for k in range(80):
        cmd = rng.choice([63, 170, 127])
        routes = [rng.randrange(2 ** 32) for _ in range(rng.randint(0, 6))]
        ts = rng.randrange(2 ** 48)
        token = base64.urlsafe_b64encode(struct.pack('>Q', ts)[2:]).decode().rstrip('=')
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 120)))
        tid = rng.randint(0, 255)
        key = derive_session_key(rng.randrange(2 ** 32), rng.randrange(2 ** 44)) if k % 3 == 0 else None
        engine.protocol = Secure(key)
        frame = engine._finalize_bin(cmd, str(tid), token, body, routes, src_aid=routes[-1] if routes else 0)
        cases.append({'id': f'extra_build_{k:03d}', 'input': {
            'cmd': cmd, 'route_ids': routes, 'single_route_fastpath': False, 'tid': str(tid), 'ts_token': token,
            'ts_bytes': struct.pack('>Q', ts)[2:].hex(), 'body': body.hex(), 'src_aid': routes[-1] if routes else 0,
            'session_key': key.hex() if key else None, 'secure_requested': key is not None},
            'expected': {'frame': frame.hex(), 'length': len(frame)}})
        # The same frame damaged: each decoded by a fresh receiver (frame-level outcome only).
        engine.protocol = None
        for j, damaged in enumerate([frame[: rng.randrange(len(frame))], bytes([frame[0] ^ 1]) + frame[1:]]):
            receiver = OSVisualFusionEngine.__new__(OSVisualFusionEngine)
            receiver.__init__(config_path=engine_config)
            decoded = receiver.decompress(damaged)
            if isinstance(decoded.get('error'), str):
                cases.append({'id': f'extra_decode_{k:03d}_{j}', 'input': {
                    'frame': damaged.hex(), 'receiver_session_key_for_aid_42': None, 'prior_frames': [], 'clock': 1700000000.0},
                    'expected': {'decoded': decoded}})
    return cases


if __name__ == '__main__':
    engine_config = os.environ.get('OPENSYNAPTIC_CONFIG', 'Config.json')
    tmp = tempfile.mkdtemp()
    os.chdir(tmp)
    engine = OSVisualFusionEngine(config_path=engine_config)
    dump('base62-extra.json', 'Base62Codec.encode/decode of seeded sensor-range floats at precision 2/4/6, half of them on exact decimal ties',
         base62_cases(), alphabet='0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ')
    dump('crc-extra.json', 'security_core.crc8 / crc16_ccitt over seeded random data of 0..4099 bytes', crc_cases())
    dump('packet-extra.json', 'OSVisualFusionEngine._finalize_bin with seeded routes (0-6), tids, 48-bit timestamps, bodies and session keys; damaged copies through decompress',
         packet_cases(engine), frame_layout='see packet.json')
    sys.exit(0)
