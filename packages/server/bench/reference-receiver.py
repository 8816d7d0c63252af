"""The reference's receive rate for the ingest bench: opensynaptic 1.4.2's node on a UDP socket.

Usage: python reference-receiver.py <seconds>

Binds 127.0.0.1 on a free port and prints {"port": N} (one line), then receives datagrams and runs
each through the reference node's whole receive path (receive_via_protocol: classify, decode the
FULL/DIFF frame through its fusion engine), counting the frames that decode to a fact, until
<seconds> have passed since the first datagram or 2 s pass without one. Prints one JSON line:
received, decoded, seconds (first datagram to last decoded) and per_second. Runs after
@opensynaptic/config's reference-prelude.py (write_config).
"""

import contextlib
import io
import json
import os
import socket
import sys
import tempfile
import time


def main(argv):
    seconds = float(argv[0])
    with contextlib.redirect_stdout(io.StringIO()):
        from opensynaptic.core.pycore.core import OpenSynaptic
        node = OpenSynaptic(write_config(os.path.join(tempfile.mkdtemp(prefix='osyn-ingest-ref-'), 'rx'), 1))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(('127.0.0.1', 0))
    print(json.dumps({'port': sock.getsockname()[1]}), flush=True)
    sock.settimeout(30)
    received = decoded = 0
    first = last = None
    sink = io.StringIO()
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        now = time.perf_counter()
        if first is None:
            first = now
            sock.settimeout(2)
        received += 1
        with contextlib.redirect_stdout(sink):
            out = node.receive_via_protocol(data)
        if sink.tell() > 1 << 20:
            sink.seek(0)
            sink.truncate()
        result = out.get('result') if isinstance(out, dict) and out.get('type') == 'DATA' else None
        if isinstance(result, dict) and result.get('error') is None and 'id' in result:
            decoded += 1
        last = time.perf_counter()
        if last - first >= seconds:
            break
    elapsed = (last - first) if first is not None else 0.0
    print(json.dumps({'received': received, 'decoded': decoded, 'seconds': elapsed, 'per_second': decoded / elapsed if elapsed > 0 else 0}))


if __name__ == '__main__':
    main(sys.argv[1:])
