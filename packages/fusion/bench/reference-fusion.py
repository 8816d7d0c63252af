"""Times the reference implementation (opensynaptic 1.4.2 pycore) on the fusion benchmark workloads.

Usage:
    python reference-fusion.py '<workload json>' [--sensors 1,8] [--repeat 7] [--min-time 0.1] [--warmup 0.5]

It runs as `python -c "<reference-prelude.py><this file's text>" '<workload json>' ...` (see
@opensynaptic/config's reference.js: the prelude gives write_config and per_call_ns).

The workload argument (the JS bench builds the same inputs from the same JSON):
    {
      "clock": 1700000000,   # seconds returned by time.time() throughout, so fact "t" = clock
      "sender": 42,          # assigned_id of the sending engine; run_engine input is "<sender>;<body>"
      "receiver": 1,         # assigned_id of the receiving engine
      "device": "DEV1",      # standardize() device id
      "status": "ONLINE",    # standardize() device status
      "sensors": [           # N sensors = the first N entries
        {"input": ["S1", "OK", 21.5, "Cel"],        # standardize() sensor tuple: id, state, value, unit
         "unit": "temperature", "value": 294.65},   # what standardize() makes of it (checked)
        ...
      ],
      "alt": 294.75          # the DIFF stream alternates s1_v between sensors[0].value and alt
    }

For N sensors the fact is {"id": device, "s": status, "t": clock, "s<i>_id": input[0],
"s<i>_s": input[1], "s<i>_u": unit, "s<i>_v": value} for i = 1..N, and the body is compress(fact).
Workloads, each timed per call:
    compress          OpenSynapticEngine.compress(fact)
    standardize       OpenSynapticStandardizer.standardize(device, status, inputs)
    run_engine DIFF   sender run_engine("<sender>;<body>", "DIFF"), bodies alternating so exactly
                      one value (s1_v) changes per call; a FULL is sent first so the template exists
    run_engine HEART  sender run_engine of the same body every call (nothing changes)
    receive DIFF      receiver decompress() of the two DIFF frames in turn, after it learned the FULL
    receive HEART     receiver decompress() of the HEART frame

Prints one JSON line: {"<N>": {"<workload>": median ns per call, ...}, ...}.
"""

import argparse
import itertools
import json
import os
import sys
import tempfile
import time

WORKLOADS = ('compress', 'standardize', 'run_engine DIFF', 'run_engine HEART', 'receive DIFF', 'receive HEART')


def parse_args(argv):
    p = argparse.ArgumentParser(description='Time the opensynaptic 1.4.2 reference on the fusion workloads.')
    p.add_argument('workload', help='workload JSON (see the top of this script)')
    p.add_argument('--sensors', nargs='+', default=None,
                   help='sensor counts, e.g. "1,8" or "1 8" (default: 1 and all sensors)')
    p.add_argument('--repeat', type=int, default=7, help='timed repeats per workload (median is reported)')
    p.add_argument('--min-time', type=float, default=0.1, help='seconds per repeat, at least')
    p.add_argument('--warmup', type=float, default=0.5, help='seconds of busy work before the first timing')
    args = p.parse_args(argv)
    args.workload = json.loads(args.workload)
    if args.sensors is None:
        args.sensors = sorted({1, len(args.workload['sensors'])})
    else:
        args.sensors = [int(x) for tok in args.sensors for x in tok.split(',') if x.strip()]
    return args


def fact_for(w, n, s1_value=None):
    fact = {'id': w['device'], 's': w['status'], 't': int(w['clock'])}
    for i, sensor in enumerate(w['sensors'][:n], start=1):
        fact[f's{i}_id'] = sensor['input'][0]
        fact[f's{i}_s'] = sensor['input'][1]
        fact[f's{i}_u'] = sensor['unit']
        fact[f's{i}_v'] = sensor['value']
    if s1_value is not None:
        fact['s1_v'] = s1_value
    return fact


def check(cond, message):
    if not cond:
        raise SystemExit(f'reference-fusion: {message}')


def bench(w, n, root, repeat, min_time):
    from opensynaptic.core.pycore.solidity import OpenSynapticEngine
    from opensynaptic.core.pycore.standardization import OpenSynapticStandardizer
    from opensynaptic.core.pycore.unified_parser import OSVisualFusionEngine

    check(1 <= n <= len(w['sensors']), f'{n} sensors asked, the workload has {len(w["sensors"])}')
    sender_cfg = write_config(os.path.join(root, f'{n}-sender'), w['sender'])
    receiver_cfg = write_config(os.path.join(root, f'{n}-receiver'), w['receiver'])
    engine = OpenSynapticEngine(sender_cfg)
    standardizer = OpenSynapticStandardizer(sender_cfg)
    out = {}

    fact = fact_for(w, n)
    inputs = [tuple(s['input']) for s in w['sensors'][:n]]
    got = standardizer.standardize(w['device'], w['status'], inputs)
    check(got == fact, f'standardize() gives {got}, the workload says {fact}')
    out['compress'] = per_call_ns(lambda: engine.compress(fact), repeat, min_time)
    out['standardize'] = per_call_ns(lambda: standardizer.standardize(w['device'], w['status'], inputs), repeat, min_time)

    raw_a = f"{w['sender']};{engine.compress(fact)}"
    raw_b = f"{w['sender']};{engine.compress(fact_for(w, n, w['alt']))}"
    check(raw_a != raw_b, 'alt encodes like sensors[0].value; the DIFF stream would not change')

    # Frames for the receiver, from a sender that has seen nothing yet.
    first = OSVisualFusionEngine(sender_cfg)
    full = first.run_engine(raw_a, 'FULL')
    diff_b = first.run_engine(raw_b, 'DIFF')
    diff_a = first.run_engine(raw_a, 'DIFF')
    heart = first.run_engine(raw_a, 'DIFF')
    check([full[0], diff_b[0], diff_a[0], heart[0]] == [0x3F, 0xAA, 0xAA, 0x7F], 'unexpected frame kinds')

    sender = OSVisualFusionEngine(sender_cfg)
    sender.run_engine(raw_a, 'FULL')
    # Continues a, b, a, b... from the FULL of a: every call sends a one-value DIFF.
    next_raw = itertools.cycle((raw_b, raw_a)).__next__
    out['run_engine DIFF'] = per_call_ns(lambda: sender.run_engine(next_raw(), 'DIFF'), repeat, min_time)
    sender.run_engine(raw_b, 'DIFF')
    check(sender.run_engine(raw_a, 'DIFF')[0] == 0xAA, 'sender stopped sending DIFF')
    check(sender.run_engine(raw_a, 'DIFF')[0] == 0x7F, 'sender did not send HEART')
    out['run_engine HEART'] = per_call_ns(lambda: sender.run_engine(raw_a, 'DIFF'), repeat, min_time)

    receiver = OSVisualFusionEngine(receiver_cfg)
    learned = receiver.decompress(full)
    check(learned.get('__packet_meta__', {}).get('template_learned'), f'FULL not learned: {learned}')
    for frame, s1 in ((diff_b, w['alt']), (diff_a, w['sensors'][0]['value']), (heart, w['sensors'][0]['value'])):
        decoded = receiver.decompress(frame)
        check(decoded.get('s1_v') == s1, f'receiver decoded {decoded}, expected s1_v {s1}')
    next_frame = itertools.cycle((diff_b, diff_a)).__next__
    out['receive DIFF'] = per_call_ns(lambda: receiver.decompress(next_frame()), repeat, min_time)
    out['receive HEART'] = per_call_ns(lambda: receiver.decompress(heart), repeat, min_time)
    return {k: round(out[k], 1) for k in WORKLOADS}


def main(argv):
    args = parse_args(argv)
    w = args.workload
    clock = float(w['clock'])
    # Busy time first: after an idle spell the first workload otherwise runs on a cold CPU
    # (clock ramp-up), up to 1.7x slower.
    until = time.perf_counter() + args.warmup
    while time.perf_counter() < until:
        sum(range(1000))
    # Fixed clock: timestamps, cache ages and registry sync throttling all read time.time().
    time.time = lambda: clock
    result = {}
    with tempfile.TemporaryDirectory(prefix='os-reference-fusion-') as root:
        for n in args.sensors:
            result[str(n)] = bench(w, n, root, args.repeat, args.min_time)
    print(json.dumps(result))


if __name__ == '__main__':
    main(sys.argv[1:])
