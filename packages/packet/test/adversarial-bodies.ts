/**
 * Body texts for the linear-time tests (this package's and fusion's): adversarial shapes that
 * were quadratic, other shapes tried, and benign bodies of the same size to compare with.
 */

/** Body size of every case: about the largest a UDP datagram carries. */
export const SIZE = 60 * 1024;
const HEAD = 'D.1.AYvP5WgA|';

/** `pre`, then `unit` repeated, then `post`: about SIZE characters. */
export function fill(pre: string, unit: string, post: string): string {
  return pre + unit.repeat(Math.max(0, Math.ceil((SIZE - pre.length - post.length) / unit.length))) + post;
}

/** A benign body of SIZE characters: ordinary sensors. Run `r` differs from the others. */
export const benignBody = (r: number): string => fill(HEAD, `TEMPERATURE_SENSOR_${r}>OK.Pa:1B${r}|`, '');

/**
 * Bodies that took quadratic time (the comment says what was searched or matched repeatedly),
 * and the other shapes tried while looking for more. `r` varies the text per run, inside the
 * long part, so that no cache of units or states answers for a repeated one.
 */
export const ADVERSARIAL: Record<string, (r: number) => string> = {
  // pyStrip's `^\s+|\s+$` retried the tail match from every space of an inner run.
  'spaces inside a unit symbol': (r) => fill(`${HEAD}S>K.1,x${r}`, ' ', 'y:1|'),
  'ideographic spaces inside a unit symbol': (r) => fill(`${HEAD}S>K.1,x${r}`, '\u3000', 'y:1|'),
  // pyTrailingDigits's unanchored `\d+$` restarted at every digit of an inner run.
  'digits inside a unit symbol': (r) => fill(`${HEAD}S>K.1,x${r}`, '1', 'a1:1|'),
  'non-ASCII digits inside a unit symbol': (r) => fill(`${HEAD}S>K.1,x${r}`, '\u0661', 'a\u0661:1|'),
  // lastIndexOf(':') from every segment back to an early ':'.
  "segments with '>' and no ':' after an early ':'": (r) => fill(`${HEAD}S${r}>K.Z:1|`, 'a>b|', ''),
  // indexOf('>') from every segment to a late '>'.
  "segments without '>' before a late one": (r) => fill(HEAD, 'a|', `S${r}>K.Z:1|`),
  // indexOf('.') from every sensor to a late '.' (compared with as many sensors that have one).
  "sensors without '.' before a late one": (r) => fill(HEAD, `a${r}>Z:1|`, '&x.y|'),
  'a long float coefficient that is no float': (r) => fill(`${HEAD}S>K.${r}.`, '1', 'x,K:1|'),
  'a long non-ASCII digit coefficient': (r) => fill(`${HEAD}S>K.${r}.`, '\u0661', ',K:1|'),
  'a unit of many parts': (r) => fill(`${HEAD}S>K.1,K${r}`, '/a', ':1|'),
  'a unit of many commas': (r) => fill(`${HEAD}S>K.x${r}`, ',', 'K:1|'),
  'a msg followed by many bars': (r) => fill(`${HEAD}S${r}>K.Z:1|@aGk`, '|', ''),
  'a long state': (r) => fill(`${HEAD}S>${r}`, 'K', '.Z:1|'),
};

/** Cases with many short sensors, compared with a benign body that has as many. */
export const DENSE = new Set(["sensors without '.' before a late one"]);
export const denseBody = (r: number): string => fill(HEAD, `a${r}>K.Z:1|`, '');
