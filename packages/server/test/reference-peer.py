# A peer made of the reference implementation (opensynaptic 1.4.2 pycore), driven by the server's
# interop tests. Runs after @opensynaptic/config's reference-prelude.py (write_config, logging off).
# argv[1] is a JSON job; prints "READY <json>" once it listens and "RESULT <json>" at the end.
#
# Jobs (`mode`):
#   transmit  reference nodes (OpenSynaptic, one per device) send readings to our server:
#             ensure_id / ensure_time when asked, transmit() per reading, the frame out through the
#             reference's UDP or TCP transporter (core/transport_layer/protocols), its MQTT
#             transporter (services/transporters/drivers/mqtt, paho-mqtt) or, with
#             `replies`, through dispatch_with_reply (the server's answer is fed back into the
#             node's classify_and_dispatch, so secure sessions come up). Each frame is also read
#             by a reference receiver node (receive_via_protocol): what the reference decodes.
#   receive   a reference receiver for frames of our node: `runtime` (the reference's
#             ReceiverRuntime, core/Receiver.py, on UDP), `udp`/`tcp` (the reference's listen()
#             with a callback into receive_via_protocol; `replies` sends its responses back, as a
#             server on the reference's handshake would), `mqtt` (its MQTT transporter's
#             listen(), subscribed through a broker), `uart` (the reference's UART
#             listener, STX/ETX over a serial device, pyserial), or `rs485` (its RS-485 listener,
#             STX/ETX with an LRC byte, pyserial).
#   rs485-send  the reference's RS-485 driver writes frames to a serial device.
import contextlib
import io
import json
import os
import socket
import sys
import tempfile
import threading
import time

job = json.loads(sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()):
    from opensynaptic.core.pycore.core import OpenSynaptic
root = tempfile.mkdtemp(prefix='osyn-interop-')


def node(name, assigned_id, role='duplex'):
    """A reference node with a config and registry of its own (its constructor prints)."""
    path = write_config(os.path.join(root, name), assigned_id)
    if role != 'duplex':
        with open(path) as f:
            cfg = json.load(f)
        cfg['OpenSynaptic_Setting'] = {'device_role': role}
        with open(path, 'w') as f:
            json.dump(cfg, f)
    with contextlib.redirect_stdout(io.StringIO()):
        return OpenSynaptic(path)


def plain(value):
    """JSON-safe copy of a decoded fact (bytes as hex)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, float) and value != value:
        return None
    return value


def outcome(d):
    return {'type': d.get('type'), 'cmd': d.get('cmd'), 'result': plain(d.get('result')), 'response': plain(d.get('response'))}


def transmit():
    host, port, proto = job['host'], job['port'], job['proto']
    from opensynaptic.core.transport_layer.protocols import tcp, udp
    if proto == 'mqtt':
        from opensynaptic.services.transporters.drivers import mqtt as transporter
    else:
        transporter = {'tcp': tcp, 'udp': udp}[proto]
    cfg = {'transport_options': {'host': host, 'port': port}, 'application_options': {'host': host, 'port': port, 'topic': job.get('topic', 'os/sensors/raw')}}
    receiver = node('reference-receiver', 1)
    devices = []
    for i, d in enumerate(job['devices']):
        n = node(f'dev-{i}', d.get('aid', 4294967295))
        n.device_id = d['deviceId']
        info = {'deviceId': d['deviceId'], 'frames': []}
        if d.get('ensureId') and not d.get('afterRounds'):
            info['ensureId'] = bool(n.ensure_id(host, port, device_meta=dict(d.get('meta') or {}), timeout=5.0))
        if d.get('ensureTime'):
            before = time.time()
            info['serverTime'] = n.ensure_time(host, port, timeout=3.0)
            info['clockAtSync'] = [before, time.time()]
            info['lastServerTime'] = getattr(n.protocol, 'last_server_time', 0)
        if d.get('ping'):
            # PING through the reference's request/answer path; the answer goes to its handshake.
            ping = n.protocol.build_ping()
            reply = n.dispatch_with_reply(ping, host, port, timeout=3.0)
            info['ping'] = {'sent': bytes(ping).hex(), 'reply': None if reply is None else bytes(reply).hex()}
        info['aid'] = n._normalize_assigned_id(n.assigned_id)
        devices.append((n, info))
    # Raw packets to our server from one socket (one device), and the same bytes from the same
    # address to the reference receiver: both answers.
    probes = []
    if job.get('probes'):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(('127.0.0.1', 0))
        addr = sock.getsockname()
        for h in job['probes']:
            packet = bytes.fromhex(h)
            sock.sendto(packet, (host, port))
            sock.settimeout(job.get('probeTimeout', 0.5))
            try:
                reply = sock.recvfrom(4096)[0]
            except socket.timeout:
                reply = None
            d = receiver.receive_via_protocol(packet, addr)
            probes.append({'hex': h, 'ours': None if reply is None else bytes(reply).hex(), 'reference': outcome(d)})
        sock.close()
    # Round by round, device after device: the frames interleave as a fleet's do.
    for r, readings in enumerate(job['rounds']):
        for (n, info), reading in zip(devices, readings):
            if reading is None:
                continue
            kw = {'device_id': info['deviceId']}
            if reading.get('t') is not None:
                kw['t'] = reading['t']
            if reading.get('noTimestamp'):
                frame = n.transmit_notimestamp(reading['sensors'], **kw)[0]
            else:
                frame = n.transmit(reading['sensors'], **kw)[0]
            frame = bytes(frame)
            entry = {'round': r, 'hex': frame.hex(), 'cmd': frame[0]}
            if job.get('replies') and proto == 'udp':
                # The reference's own request/answer path: the answer goes to the node's handshake.
                reply = n.dispatch_with_reply(frame, host, port, timeout=job.get('replyTimeout', 0.5))
                entry['reply'] = None if reply is None else bytes(reply).hex()
            else:
                if proto == 'mqtt':
                    # Its MQTT transporter connects, publishes and disconnects per frame, with one
                    # fixed client id by default: a broker then lets the next connection take the
                    # session over, and a publish not read yet is lost. One id per frame.
                    cfg['application_options']['client_id'] = f'ref-{info["deviceId"]}-{r}'
                entry['sent'] = bool(transporter.send(frame, cfg))
            entry['decoded'] = outcome(receiver.receive_via_protocol(frame, ('127.0.0.1', 40000 + r)))
            info['frames'].append(entry)
            if job.get('pause'):
                time.sleep(job['pause'])
    # Devices that come up only now (a restart after the others' readings) ask for their id.
    for (n, info), d in zip(devices, job['devices']):
        if d.get('ensureId') and d.get('afterRounds'):
            info['ensureId'] = bool(n.ensure_id(host, port, device_meta=dict(d.get('meta') or {}), timeout=5.0))
            info['aid'] = n._normalize_assigned_id(n.assigned_id)
    print('RESULT ' + json.dumps({'devices': [info for _, info in devices], 'probes': probes}), flush=True)


def wait_bound(kind, port, within=15.0):
    """Until the listener thread has bound its port, read from /proc/net (probing by binding
    the port ourselves could make its bind fail); elsewhere a pause."""
    table = '/proc/net/tcp' if kind == 'tcp' else '/proc/net/udp'
    if not os.path.exists(table):
        time.sleep(0.5)
        return
    want = f':{port:04X}'
    end = time.time() + within
    while time.time() < end:
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                # local address, and for TCP the LISTEN state (0A)
                if cols[1].endswith(want) and (kind != 'tcp' or cols[3] == '0A'):
                    return
        time.sleep(0.02)
    raise SystemExit(f'the reference {kind} listener did not bind 127.0.0.1:{port} within {within} s')


def receive():
    kind = job['kind']
    rx = node('reference-server', job.get('aid', 1), job.get('role', 'duplex'))
    got = []
    done = threading.Event()
    lock = threading.Lock()

    def record(data, addr, d):
        with lock:
            got.append({'hex': bytes(data).hex(), 'addr': str(addr), **outcome(d)})
            if job.get('progress'):
                print(f'GOT {len(got)} {bytes(data).hex()}', flush=True)
            if len(got) >= job['count']:
                done.set()

    port = job.get('port', 0)
    opened = threading.Event()
    if kind in ('uart', 'rs485'):
        # The listeners open their port in their own thread and say nothing: watch pyserial.
        import serial
        init = serial.Serial.__init__

        def watched(self, *a, **kw):
            init(self, *a, **kw)
            opened.set()
        serial.Serial.__init__ = watched
    if kind == 'runtime':
        from opensynaptic.core.Receiver import ReceiverRuntime
        dispatch = rx.protocol.classify_and_dispatch

        def observed(data, addr=None):
            d = dispatch(data, addr)
            record(data, addr, d)
            return d
        rx.protocol.classify_and_dispatch = observed
        runtime = ReceiverRuntime(node=rx, listen_ip='127.0.0.1', listen_port=port, shard_count=1, queue_size=256)
        runtime.start()
        ready = {'port': port}
    elif kind in ('udp', 'tcp'):
        from opensynaptic.core.transport_layer.protocols import tcp, udp
        proto = {'tcp': tcp, 'udp': udp}[kind]
        reply_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def on_frame(data, addr):
            d = rx.receive_via_protocol(bytes(data), addr)
            if job.get('replies') and d.get('response'):
                # The listener gives no socket to answer on; answers go to the sender's port.
                reply_sock.sendto(bytes(d['response']), (addr[0], job.get('replyPort') or addr[1]))
            record(data, addr, d)
        cfg = {'transport_options': {'listen_host': '127.0.0.1', 'listen_port': port}}
        threading.Thread(target=proto.listen, args=(cfg, on_frame), daemon=True).start()
        ready = {'port': port}
    elif kind == 'mqtt':
        import paho.mqtt.client as paho
        from opensynaptic.services.transporters.drivers import mqtt
        # listen() gives no hook for "subscribed": watch for the broker's SUBACK on its client.
        subscribed = threading.Event()
        init = paho.Client.__init__

        def watched(self, *a, **kw):
            init(self, *a, **kw)
            self.on_subscribe = lambda *_: subscribed.set()
        paho.Client.__init__ = watched

        def on_frame(data, addr):
            record(data, addr, rx.receive_via_protocol(bytes(data), addr))
        cfg = {'application_options': {'host': '127.0.0.1', 'port': port, 'topic': job.get('topic', 'os/sensors/#')}}
        threading.Thread(target=mqtt.listen, args=(cfg, on_frame), daemon=True).start()
        if not subscribed.wait(15):
            raise SystemExit('the reference MQTT listener did not subscribe within 15 s')
        ready = {'port': port}
    elif kind == 'rs485':
        from opensynaptic.core.physical_layer.protocols import rs485

        def on_frame(data, addr):
            record(data, addr, rx.receive_via_protocol(bytes(data), addr))
        cfg = {'physical_options': {'port': job['path'], 'baudrate': job.get('baudrate', 115200)}}
        threading.Thread(target=rs485.listen, args=(cfg, on_frame), daemon=True).start()
        ready = {'path': job['path']}
    elif kind == 'uart':
        from opensynaptic.core.physical_layer.protocols import uart

        def on_frame(data, addr):
            record(data, addr, rx.receive_via_protocol(bytes(data), addr))
        cfg = {'physical_options': {'port': job['path'], 'baudrate': job.get('baudrate', 115200)}}
        threading.Thread(target=uart.listen, args=(cfg, on_frame), daemon=True).start()
        ready = {'path': job['path']}
    else:
        raise SystemExit(f'unknown receiver kind {kind}')
    if kind in ('runtime', 'udp', 'tcp'):
        wait_bound(kind, port)
    if kind in ('uart', 'rs485') and not opened.wait(15):
        raise SystemExit(f'the reference {kind} listener did not open {job["path"]} within 15 s')
    print('READY ' + json.dumps(ready), flush=True)
    done.wait(job.get('timeout', 20))
    with lock:
        # What its id allocator handed out (to our node's ID_REQUEST), by id.
        leases = {str(k): plain(v) for k, v in (getattr(rx.id_allocator, '_allocated', None) or {}).items()}
        print('RESULT ' + json.dumps({'got': got, 'complete': done.is_set(), 'leases': leases}), flush=True)
    os._exit(0)


def rs485_send():
    """The reference's RS-485 driver (hardware_drivers/RS485.py, pyserial) writes each frame to a serial device."""
    from opensynaptic.hardware_drivers.RS485 import RS485_Driver
    driver = RS485_Driver(port=job['path'], baudrate=job.get('baudrate', 115200))
    packets = []
    for h in job['frames']:
        packets.append(bytes(driver.send(bytes.fromhex(h))).hex())
        time.sleep(0.02)
    if driver.ser:
        driver.ser.close()
    print('RESULT ' + json.dumps({'packets': packets, 'opened': driver.ser is not None}), flush=True)


{'transmit': transmit, 'receive': receive, 'rs485-send': rs485_send}[job['mode']]()
