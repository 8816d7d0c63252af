"""Times the reference node (opensynaptic 1.4.2 pycore OpenSynaptic) on transmit and receive.

Usage:
    python reference-node.py '<workload json>' [--sensors 1,8] [--repeat 7] [--min-time 0.1]

The workload is the one node.bench.mjs builds (see there): clock (seconds), sender and receiver
ids, device, status, sensors (standardize() tuples) and alt (the first sensor's other reading).
Workloads, each timed per call, in DIFF steady state (the FULL went first):
    transmit DIFF   sender node.transmit(sensors, t=clock), the first reading alternating
    decode DIFF     receiver node.receive() of the two DIFF frames in turn (fusion only)
    receive DIFF    receiver node.receive_via_protocol() of the same frames (the whole receive path)

Prints one JSON line: {"<N>": {"<workload>": median ns per call, ...}, ...}. Runs after
@opensynaptic/config's reference-prelude.py (write_config, per_call_ns).
"""

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time

def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument('workload')
    p.add_argument('--sensors', default='1,8')
    p.add_argument('--repeat', type=int, default=7)
    p.add_argument('--min-time', type=float, default=0.1)
    args = p.parse_args(argv)
    w = json.loads(args.workload)
    # The node reads the wall clock; the bench's clock is fixed, as on our side.
    time.time = lambda: float(w['clock'])
    with contextlib.redirect_stdout(io.StringIO()):
        from opensynaptic.core.pycore.core import OpenSynaptic
    root = tempfile.mkdtemp(prefix='osyn-node-bench-')
    out = {}
    for n in [int(x) for x in args.sensors.split(',')]:
        with contextlib.redirect_stdout(io.StringIO()):
            tx = OpenSynaptic(write_config(os.path.join(root, f'{n}-tx'), w['sender']))
            rx = OpenSynaptic(write_config(os.path.join(root, f'{n}-rx'), w['receiver']))
        a = [list(s['input']) for s in w['sensors'][:n]]
        b = [list(s) for s in a]
        b[0][2] = w['alt']
        kw = {'device_id': w['device'], 'device_status': w['status'], 't': w['clock']}
        with contextlib.redirect_stdout(io.StringIO()):
            # The handshake sends FULL until the template is confirmed; DIFF follows.
            full = tx.transmit(a, **kw)[0]
            rx.receive(full)
            for _ in range(16):
                frame = tx.transmit(b, **kw)[0]
                if frame[0] != 0x3f:
                    break
                rx.receive(frame)
            diffs = [tx.transmit(a, **kw)[0], tx.transmit(b, **kw)[0]]
        if full[0] != 0x3f or diffs[0][0] != 0xaa or diffs[1][0] != 0xaa:
            raise SystemExit(f'reference-node: unexpected frame kinds {full[0]:#x} {diffs[0][0]:#x} {diffs[1][0]:#x}')
        state = {'flip': False, 'k': 0}

        def transmit():
            state['flip'] = not state['flip']
            tx.transmit(b if state['flip'] else a, **kw)

        def decode():
            state['k'] ^= 1
            rx.receive(diffs[state['k']])

        def receive():
            state['k'] ^= 1
            rx.receive_via_protocol(diffs[state['k']])

        with contextlib.redirect_stdout(io.StringIO()):
            out[str(n)] = {
                'transmit DIFF': per_call_ns(transmit, args.repeat, args.min_time),
                'decode DIFF': per_call_ns(decode, args.repeat, args.min_time),
                'receive DIFF': per_call_ns(receive, args.repeat, args.min_time),
            }
    print(json.dumps(out))


if __name__ == '__main__':
    main(sys.argv[1:])
