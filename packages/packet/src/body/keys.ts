/**
 * Default largest body text a receiver decodes, in UTF-8 bytes: the largest UDP payload (65,507),
 * so no body a datagram carries comes near it. See `DecompressOptions.maxBodySize`.
 */
export const DEFAULT_MAX_BODY_SIZE = 65_507;

/** Sensor values and non-integral unit coefficients keep this many decimals unless told otherwise. */
export const DEFAULT_BODY_PRECISION = 4;

/** The four keys of sensor `i` (from 1) in a fact. */
export type SensorKeys = readonly [id: string, state: string, unit: string, value: string];

const SENSOR_KEYS: SensorKeys[] = [];

/** `[s{i}_id, s{i}_s, s{i}_u, s{i}_v]` for sensor i (from 1), built once instead of on every call. */
export function sensorKeys(i: number): SensorKeys {
  let k = SENSOR_KEYS[i];
  if (!k) {
    k = [`s${i}_id`, `s${i}_s`, `s${i}_u`, `s${i}_v`];
    SENSOR_KEYS[i] = k;
  }
  return k;
}
