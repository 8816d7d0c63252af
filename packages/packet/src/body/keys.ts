/** Sensor values and non-integral unit coefficients keep this many decimals unless told otherwise. */
export const DEFAULT_BODY_PRECISION = 4;

/** `[s{i}_id, s{i}_s, s{i}_u, s{i}_v]` for sensor i (from 1), built once instead of on every call. */
const SENSOR_KEYS: string[][] = [];

export function sensorKeys(i: number): string[] {
  let k = SENSOR_KEYS[i];
  if (!k) {
    k = [`s${i}_id`, `s${i}_s`, `s${i}_u`, `s${i}_v`];
    SENSOR_KEYS[i] = k;
  }
  return k;
}
