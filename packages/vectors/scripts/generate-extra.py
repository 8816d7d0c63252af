"""Records more golden cases from the live reference (pip install opensynaptic==1.4.2).

Writes vectors/base62-extra.json, crc-extra.json, packet-extra.json, compress-extra.json,
pipeline-extra.json, fusion-extra.json and handshake-extra.json in the schemas of the shared vector
files, so the runner checks them with no code change. Seeded, with a fixed clock: two runs give
identical files (new files draw from their own seeded generator, so adding one leaves the others as they are).
Run from the repository root:  /path/to/venv/bin/python packages/vectors/scripts/generate-extra.py
"""
import base64
import contextlib
import io
import json
import os
import random
import struct
import sys
import tempfile

# Every recorded run sees this clock (seconds); set before the reference reads time.time.
import time

CLOCK = [1700000000.0]
time.time = lambda: CLOCK[0]

from opensynaptic.core.pycore.core import OpenSynaptic
from opensynaptic.core.pycore.handshake import OSHandshakeManager
from opensynaptic.core.pycore.solidity import OpenSynapticEngine
from opensynaptic.core.pycore.unified_parser import OSVisualFusionEngine
from opensynaptic.utils import ctx
from opensynaptic.utils.base62.base62 import Base62Codec
from opensynaptic.utils.security.security_core import crc8, crc16_ccitt, derive_session_key

OUT = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'vectors')
SOURCE = 'opensynaptic 1.4.2 pycore'
rng = random.Random(20261121)


def json_safe(v):
    if isinstance(v, float) and v in (float('inf'), float('-inf')):
        return '__+inf__' if v > 0 else '__-inf__'
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_safe(x) for x in v]
    return v


def dump(name, generated_by, cases, **extra):
    doc = {'source': SOURCE, 'generatedBy': generated_by, **extra, 'cases': cases}
    text = json.dumps(json_safe(doc), indent=1, allow_nan=False)
    # JSON has no infinity; 1e999 reads back as one in Python and JavaScript alike.
    text = text.replace('"__+inf__"', '1e999').replace('"__-inf__"', '-1e999')
    with open(os.path.join(OUT, name), 'w') as f:
        f.write(text + '\n')
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



def plain(v):
    """A reference value in the vectors' JSON shape: bytes as hex; error records without `loc`."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items() if k != 'loc'}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def quiet(fn, *args, **kwargs):
    """Runs a reference call with its logger's output (tracebacks of handled errors) swallowed."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def fresh_root():
    """A new, empty root for the reference's global paths (registries it looks up by aid), so no
    scenario sees the files of another and nothing is written into the installed package."""
    ctx.root = tempfile.mkdtemp()
    ctx.registry_dir = os.path.join(ctx.root, 'data', 'device_registry')


def make_node(assigned_id, device_id):
    """A real OpenSynaptic node in its own directory: shipped defaults, SensorId on, no services."""
    folder = tempfile.mkdtemp()
    cfg = os.path.join(folder, 'Config.json')
    quiet(OpenSynaptic, cfg)
    with open(cfg) as f:
        conf = json.load(f)
    conf.update(assigned_id=assigned_id, device_id=device_id, payload_switches={'SensorId': True})
    conf['RESOURCES']['service_plugins'] = {}
    with open(cfg, 'w') as f:
        json.dump(conf, f)
    return quiet(OpenSynaptic, cfg)


def session_record(node, aid):
    s = node.protocol.secure_sessions.get(str(aid))
    if s is None:
        return None
    return plain({k: s.get(k) for k in ('state', 'dict_ready', 'decrypt_confirmed', 'key', 'pending_key', 'first_plaintext_ts', 'pending_timestamp')})


def two_nodes(case_id, script, node_a=(42, 'NODE_A'), node_b=(1, 'SERVER'), note=None):
    """Runs a script of `transmit` / `receive_via_protocol` actions on two real nodes, in the shape
    of handshake.json's secure_session_flow_two_nodes. A receive step's `in` is a hex packet, or
    `{"from_step": n}` for the frame (or reply) step n produced."""
    fresh_root()
    A = make_node(*node_a)
    B = make_node(*node_b)
    aid = int(node_a[0])
    steps = []
    inputs = []
    for n, action in enumerate(script):
        CLOCK[0] = action['clock']
        node = A if action['actor'] == 'A' else B
        step = {'actor': action['actor'], 'action': action['action']}
        if action['action'] == 'transmit':
            frame, _, strategy = quiet(node.transmit, action['sensors'], **action.get('kwargs', {}))
            step.update(sensors=action['sensors'], kwargs=action.get('kwargs', {}), clock=action['clock'], out=frame.hex(), strategy=strategy, cmd=frame[0])
            inputs.append({'actor': action['actor'], 'action': 'transmit', 'clock': action['clock'], 'sensors': action['sensors'], 'kwargs': action.get('kwargs', {})})
        else:
            src = action['in']
            packet = bytes.fromhex(src) if isinstance(src, str) else bytes.fromhex(steps[src['from_step']]['out' if 'out' in steps[src['from_step']] else 'response'])
            out = quiet(node.receive_via_protocol, packet)
            step.update({'in': packet.hex(), 'clock': action['clock'], 'type': out.get('type'), 'cmd': out.get('cmd'), 'result': plain(out.get('result')), 'response': plain(out.get('response'))})
            inputs.append({'actor': action['actor'], 'action': 'receive_via_protocol', 'clock': action['clock'], 'in': packet.hex()})
        step[f'A_session_{aid}'] = session_record(A, aid)
        step[f'B_session_{aid}'] = session_record(B, aid)
        steps.append(step)
    case = {'id': case_id, 'input': {'node_A': {'assigned_id': node_a[0], 'device_id': node_a[1]}, 'node_B': {'assigned_id': node_b[0], 'device_id': node_b[1]}, 'script': inputs},
            'expected': {'steps': steps}}
    if note:
        case['note'] = note
    return case


def secure_flow(t0):
    """The handshake.json flow up to a live secure session: plaintext FULL, DICT_READY, secure HEART,
    CHANNEL_ACK, secure DIFF (steps 0-7)."""
    return [
        {'actor': 'A', 'action': 'transmit', 'clock': t0, 'sensors': [['T1', 'OK', 21.5, 'Cel']]},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 0.1, 'in': {'from_step': 0}},
        {'actor': 'A', 'action': 'receive_via_protocol', 'clock': t0 + 0.2, 'in': {'from_step': 1}},
        {'actor': 'A', 'action': 'transmit', 'clock': t0 + 1, 'sensors': [['T1', 'OK', 21.5, 'Cel']]},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 1.1, 'in': {'from_step': 3}},
        {'actor': 'A', 'action': 'receive_via_protocol', 'clock': t0 + 1.2, 'in': {'from_step': 4}},
        {'actor': 'A', 'action': 'transmit', 'clock': t0 + 2, 'sensors': [['T1', 'OK', 22.0, 'Cel']]},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 2.1, 'in': {'from_step': 6}},
    ]


def lease_after_data_cases(t0):
    """A device asks for an id, sends a data frame with it, and asks again (a restart), to a server
    manager with an allocator (3000..3010) and a parser: in dispatch form (as handshake.json's)."""
    from opensynaptic.utils.id_allocator import IDAllocator
    fresh_root()
    CLOCK[0] = t0 + 1
    frame = bytes(quiet(make_node(3000, 'LEASE_DEV').transmit, [['T1', 'OK', 21.5, 'Cel']])[0])
    fresh_root()
    srv = make_node(1, 'SERVER')
    srv.protocol.id_allocator = quiet(IDAllocator, base_dir=tempfile.mkdtemp(), start_id=3000, end_id=3010)
    request = lambda seq: struct.pack('>BH', 1, seq) + json.dumps({'device_id': 'LEASE_DEV'}).encode()
    steps = [('dispatch_lease_first_request', t0, request(0x51), 'the device asks for an id'),
             ('dispatch_lease_data', t0 + 1, frame, 'its first FULL with that id'),
             ('dispatch_lease_same_device_after_data', t0 + 2, request(0x52), 'the same device asks again (restarted)')]
    cases = []
    for case_id, clock, packet, note in steps:
        CLOCK[0] = clock
        out = quiet(srv.protocol.classify_and_dispatch, packet)
        cases.append({'id': case_id, 'input': {'manager': 'hs_lease', 'role': 'duplex', 'packet': packet.hex(), 'clock': clock, 'has_id_allocator': True, 'allocator': [3000, 3010], 'has_parser': True},
                      'expected': {'type': out.get('type'), 'cmd': out.get('cmd'), 'result': plain(out.get('result')), 'response': plain(out.get('response'))}, 'note': note})
    return cases


def handshake_cases():
    r = random.Random(20261201)
    cases = []
    # Builders on one fresh manager, seq counting from 1 in file order (as in handshake.json).
    mgr = quiet(OSHandshakeManager, registry_dir=tempfile.mkdtemp(), secure_store_path=os.path.join(tempfile.mkdtemp(), 's.json'))
    for count in (48058, 256, 257, 65535, 0):
        cases.append({'id': f'build_id_pool_request_count_{count}', 'input': {'builder': 'build_id_pool_request', 'args': [count], 'kwargs': {}},
                      'expected': {'bytes': mgr.build_id_pool_request(count).hex()}})
    for count in (65536, -1):
        try:
            mgr.build_id_pool_request(count)
            raise SystemExit(f'build_id_pool_request({count}) did not raise')
        except struct.error as e:
            cases.append({'id': f'build_id_pool_request_count_{count}', 'input': {'builder': 'build_id_pool_request', 'args': [count], 'kwargs': {}},
                          'expected': {'raises': {'type': 'struct.error', 'message': str(e)}}})
    # A timestamp sequence under another id: replayed by its shape (`calls`).
    m = quiet(OSHandshakeManager, registry_dir=tempfile.mkdtemp(), secure_store_path=os.path.join(tempfile.mkdtemp(), 's.json'))
    calls = [[r.choice([7, 8, 9]), r.choice([None, *range(5)]) if k % 7 == 6 else r.randrange(100)] for k in range(40)]
    cases.append({'id': 'extra_check_timestamp_random', 'input': {'calls': calls}, 'expected': {'results': [m.check_timestamp(a, t) for a, t in calls]}})

    t0 = 1700000000.0
    flow = secure_flow(t0)
    cases.append(two_nodes('secure_flow_unsolicited_dict_ready', flow + [
        # Any address: SECURE_DICT_READY for aid 42 with another timestamp, to the server holding the key.
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 2.5, 'in': '0d0000002a0000011f71fb04cb'},
        {'actor': 'A', 'action': 'transmit', 'clock': t0 + 3, 'sensors': [['T1', 'OK', 22.5, 'Cel']]},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 3.1, 'in': {'from_step': 9}},
        {'actor': 'A', 'action': 'transmit', 'clock': t0 + 4, 'sensors': [['T1', 'OK', 22.5, 'Cel']]},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 4.1, 'in': {'from_step': 11}},
    ], note='an unsolicited SECURE_DICT_READY (timestamp 1234567890123) reaches the server once the session is secure; the device keeps sending'))
    cases.append(two_nodes('secure_flow_replayed_frame', flow + [
        {'actor': 'A', 'action': 'transmit', 'clock': t0 + 3, 'sensors': [['T1', 'OK', 23.0, 'Cel']]},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 3.1, 'in': {'from_step': 8}},
        # The secure DIFF of step 6 (value 22.0) again, after a newer one.
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 4, 'in': {'from_step': 6}},
    ], note='an old secure frame replayed to the server after a newer one'))
    # t of 10^11 or more is taken as milliseconds: this one needs more than the frame's 48 bits.
    big = float(2 ** 48 + 1700000000000)
    cases.append(two_nodes('secure_flow_timestamp_past_48_bits', [
        {'actor': 'A', 'action': 'transmit', 'clock': t0, 'sensors': [['T1', 'OK', 21.5, 'Cel']], 'kwargs': {'t': big}},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 0.1, 'in': {'from_step': 0}},
        {'actor': 'A', 'action': 'receive_via_protocol', 'clock': t0 + 0.2, 'in': {'from_step': 1}},
        {'actor': 'A', 'action': 'transmit', 'clock': t0 + 1, 'sensors': [['T1', 'OK', 21.5, 'Cel']], 'kwargs': {'t': big + 1000}},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 1.1, 'in': {'from_step': 3}},
        {'actor': 'A', 'action': 'receive_via_protocol', 'clock': t0 + 1.2, 'in': {'from_step': 4}},
        {'actor': 'A', 'action': 'transmit', 'clock': t0 + 2, 'sensors': [['T1', 'OK', 22.0, 'Cel']], 'kwargs': {'t': big + 2000}},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 2.1, 'in': {'from_step': 6}},
    ], note='t of 2^48 ms or more: the frame carries t mod 2^48'))
    cases.append(two_nodes('two_nodes_assigned_id_leading_zeros', [
        {'actor': 'A', 'action': 'transmit', 'clock': t0, 'sensors': [['T1', 'OK', 21.5, 'Cel']]},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 0.1, 'in': {'from_step': 0}},
        {'actor': 'A', 'action': 'receive_via_protocol', 'clock': t0 + 0.2, 'in': {'from_step': 1}},
        {'actor': 'A', 'action': 'transmit', 'clock': t0 + 1, 'sensors': [['T1', 'OK', 22.0, 'Cel']]},
        {'actor': 'B', 'action': 'receive_via_protocol', 'clock': t0 + 1.1, 'in': {'from_step': 3}},
    ], node_a=('0042', 'NODE_A'), note='assigned id given as the text "0042"'))
    cases.extend(lease_after_data_cases(t0))
    CLOCK[0] = t0
    return cases


def pipeline_case(case_id, calls, assigned_id=42):
    fresh_root()
    A = make_node(assigned_id, 'NODE_A')
    B = make_node(1, 'SERVER')
    steps = []
    for call in calls:
        CLOCK[0] = call['clock']
        fn = A.transmit_notimestamp if call['notimestamp'] else A.transmit
        frame, aid, strategy = quiet(fn, call['sensors'], **call['kwargs'])
        steps.append({'packet': frame.hex(), 'length': len(frame), 'cmd': frame[0], 'src_aid': aid, 'strategy': strategy, 'decoded': plain(quiet(B.receive, frame))})
    CLOCK[0] = 1700000000.0
    return {'id': case_id, 'input': {'sender': {'assigned_id': assigned_id, 'device_id': 'NODE_A'}, 'receiver': {'assigned_id': 1}, 'calls': calls}, 'expected': {'steps': steps}}


def pipeline_cases():
    def calls(*sensor_lists):
        return [{'sensors': s, 'kwargs': {}, 'notimestamp': False, 'clock': 1700000000.0 + n} for n, s in enumerate(sensor_lists)]
    return [
        pipeline_case('pipeline_assigned_id_leading_zeros', calls([['T1', 'OK', 21.5, 'Cel']], [['T1', 'OK', 21.5, 'Cel']], [['T1', 'OK', 21.5, 'Cel']], [['T1', 'OK', 22.5, 'Cel']], [['T1', 'OK', 22.5, 'Cel']]), assigned_id='0042'),
        pipeline_case('pipeline_reading_nan_text', calls([['T1', 'OK', 'nan', 'Cel']])),
        pipeline_case('pipeline_reading_inf_text', calls([['T1', 'OK', 21.5, 'Cel'], ['H1', 'OK', '-inf', '%']])),
        # 1e999 is infinity in JSON readers (Python's and JavaScript's alike).
        pipeline_case('pipeline_reading_inf_number', calls([['T1', 'OK', float('inf'), 'Cel']])),
        pipeline_case('pipeline_reading_overflows_on_conversion', calls([['P1', 'OK', 1e308, 'kPa']])),
    ]


def at_sign_cases():
    """FULL frames the reference sends with an @ inside a field, each decoded by a fresh receiver."""
    cases = []
    for n, (dev, sensors) in enumerate([('NODE_A', [['a@b', 'OK', 1.5, 'Cel']]), ('N@DE', [['T1', 'OK', 1.5, 'Cel']]), ('NODE_A', [['T1', 'O@K', 1.5, 'Cel']])]):
        fresh_root()
        A = make_node(42, dev)
        frame, _, _ = quiet(A.transmit, sensors)
        receiver = quiet(OSVisualFusionEngine, config_path=os.path.join(tempfile.mkdtemp(), 'none.json'))
        cases.append({'id': f'extra_decode_at_sign_{n}', 'input': {'frame': frame.hex(), 'receiver_session_key_for_aid_42': None, 'prior_frames': [], 'clock': CLOCK[0]},
                      'expected': {'decoded': plain(quiet(receiver.decompress, frame))}})
    return cases


def compress_cases():
    engine = quiet(OpenSynapticEngine)
    cases = []
    for n, sid in enumerate(['&x', '#y', '&', '#']):
        fact = {'id': 'D', 's': 'ONLINE', 't': 1700000000, 's1_id': sid, 's1_s': 'OK', 's1_u': 'temperature', 's1_v': 1.5}
        text = engine.compress(fact)
        case_id = f'compress_sensor_id_leading_{"amp" if sid[0] == "&" else "hash"}_{n}'
        try:
            decoded = quiet(engine.decompress, text)
        except Exception as e:  # the reference's logger raises while reporting the bad field
            cases.append({'id': case_id, 'input': {'fact': fact}, 'expected': {'compressed': text, 'decompress_raises': {'type': type(e).__name__, 'message': str(e)}}})
            continue
        cases.append({'id': case_id, 'input': {'fact': fact},
                      'expected': {'compressed': text, 'decompressed': decoded, 'decompressed_types': {k: type(v).__name__ for k, v in decoded.items()}}})
    # Fields holding the fusion template's marks (\x01 for a value, {TS} for the timestamp): the
    # reference sends them; its FULL decodes, and its DIFF and HEART rebuilds cannot read them back.
    marked = [('device_id_x01', 'id', 'D\x01X'), ('device_id_ts', 'id', 'D{TS}'), ('state_x01', 's', 'ON\x01LINE'),
              ('sensor_id_x01', 's1_id', 'T\x011'), ('sensor_id_ts', 's1_id', 'T{TS}'), ('sensor_state_x01', 's1_s', 'O\x01K')]
    for name, field, value in marked:
        fact = {'id': 'D', 's': 'ONLINE', 't': 1700000000, 's1_id': 'T1', 's1_s': 'OK', 's1_u': 'temperature', 's1_v': 1.5, field: value}
        text = engine.compress(fact)
        decoded = quiet(engine.decompress, text)
        cases.append({'id': f'compress_template_mark_{name}', 'input': {'fact': fact},
                      'expected': {'compressed': text, 'decompressed': decoded, 'decompressed_types': {k: type(v).__name__ for k, v in decoded.items()}}})
    return cases


def fusion_cases():
    def seq(case_id, steps):
        fresh_root()
        os.chdir(ctx.root)
        sender = OSVisualFusionEngine(config_path=engine_config)
        sender._set_local_id(42)
        receiver = OSVisualFusionEngine(config_path=engine_config)
        out = []
        for s in steps:
            CLOCK[0] = s['clock']
            frame = quiet(sender.run_engine, s['raw'], strategy=s['strategy'])
            out.append({'frame': frame.hex(), 'cmd': frame[0], 'decoded': plain(quiet(receiver.decompress, frame))})
        CLOCK[0] = 1700000000.0
        return {'id': case_id, 'input': {'sender_local_id': 42, 'steps': steps}, 'expected': {'steps': out}}

    def step(raw, strategy, n):
        return {'raw': raw, 'raw_is_bytes': False, 'strategy': strategy, 'clock': 1700000000.0 + n}
    return [
        seq('seq_sensorless_heart', [step('42;NODE_S.1.AYvP5WgA|', 'FULL', 0), step('42;NODE_S.1.AYvP5Wvo|', 'DIFF', 1), step('42;NODE_S.1.AYvP5W_Q|', 'DIFF', 2)]),
        seq('seq_device_id_with_value_mark', [step('42;D\x01X.1.AYvP5WgA|T1>K.A:cmwc|', 'FULL', 0), step('42;D\x01X.1.AYvP5Wvo|T1>K.A:cmwd|', 'DIFF', 1), step('42;D\x01X.1.AYvP5W_Q|T1>K.A:cmwd|', 'DIFF', 2)]),
        seq('seq_sensorless_new_signature_under_diff', [step('42;NODE_S.1.AYvP5WgA|T1>K.A:cmwc|', 'FULL', 0), step('42;NODE_S.1.AYvP5Wvo|', 'DIFF', 1), step('42;NODE_S.1.AYvP5W_Q|', 'DIFF', 2)]),
    ]


if __name__ == '__main__':
    engine_config = os.environ.get('OPENSYNAPTIC_CONFIG', 'Config.json')
    fresh_root()
    os.chdir(ctx.root)
    engine = OSVisualFusionEngine(config_path=engine_config)
    dump('base62-extra.json', 'Base62Codec.encode/decode of seeded sensor-range floats at precision 2/4/6, half of them on exact decimal ties',
         base62_cases(), alphabet='0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ')
    dump('crc-extra.json', 'security_core.crc8 / crc16_ccitt over seeded random data of 0..4099 bytes', crc_cases())
    dump('packet-extra.json', 'OSVisualFusionEngine._finalize_bin with seeded routes (0-6), tids, 48-bit timestamps, bodies and session keys; damaged copies through decompress; FULL frames the reference sends with an @ inside a field',
         packet_cases(engine) + at_sign_cases(), frame_layout='see packet.json')
    dump('compress-extra.json', 'OpenSynapticEngine.compress / decompress of facts whose sensor id starts with & or #', compress_cases())
    dump('pipeline-extra.json', 'OpenSynaptic.transmit on node A and receive on node B (as pipeline.json): assigned id "0042", NaN/infinite readings, an @ in a sensor id',
         pipeline_cases(), notes=['A non-finite value written 1e999 in JSON stands for float("inf").'])
    dump('fusion-extra.json', 'run_engine sequences (as fusion.json) for a sensorless device: HEART of a sensorless template, a sensorless signature under DIFF', fusion_cases())
    dump('handshake-extra.json', 'OSHandshakeManager.build_id_pool_request counts; check_timestamp; two real OpenSynaptic nodes through transmit / receive_via_protocol (as secure_session_flow_two_nodes); classify_and_dispatch of a server with an allocator and a parser: a lease before and after its data',
         handshake_cases(), notes=['Builders share one fresh manager: seq counts from 1 in file order.'])
    sys.exit(0)
