# Run before every reference benchmark script (runReferenceJson prepends it): what they share.
import json
import logging
import os
import statistics
import timeit

# The reference logs on import and on every learned template; that would both skew the timings
# and pollute stdout, whose last line is the result.
logging.disable(logging.CRITICAL)


def write_config(directory, assigned_id):
    """A config of its own per node or engine, so registries and caches stay in `directory`."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, 'Config.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({
            'assigned_id': assigned_id,
            # standardize() emits s<i>_id only with this switch, and compress() stops at the first
            # sensor without one.
            'payload_switches': {'SensorId': True},
            'engine_settings': {'precision': 4, 'use_ms': True},
            'RESOURCES': {'registry': 'registry'},
        }, f)
    return path


def per_call_ns(fn, repeat=7, min_time=0.1):
    """Median ns per call of `fn` over `repeat` runs of about `min_time` seconds each."""
    timer = timeit.Timer(fn)
    # A short calibration instead of autorange(), whose 0.2 s floor per repeat would triple the run.
    number = 1
    while (elapsed := timer.timeit(number)) < min_time / 10:
        number *= 10
    number = max(1, round(number * min_time / elapsed))
    return statistics.median(t / number for t in timer.repeat(repeat=repeat, number=number)) * 1e9

