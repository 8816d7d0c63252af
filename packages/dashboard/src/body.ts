/** What the body reader takes of a request: its method, headers and chunks (node:http's `IncomingMessage` is one). */
export interface RequestLike extends AsyncIterable<Uint8Array> {
  readonly headers: Record<string, string | string[] | undefined>;
  readonly method?: string | undefined;
}

/** Why a body was refused: not JSON by its Content-Type, too large, or not JSON text. */
export type BodyProblem = { kind: 'type'; contentType: string } | { kind: 'size'; max: number } | { kind: 'json'; text: string };

/**
 * Reads a JSON request body of at most `max` bytes (never more is kept: past it, the rest is left
 * for the HTTP server to discard); `fail` makes the error each caller answers with. With
 * `requireJsonType`, a Content-Type other than application/json is refused first (a page on
 * another site cannot send that without a preflight).
 */
export async function readJsonBody(req: RequestLike, max: number, fail: (problem: BodyProblem) => Error, requireJsonType = false): Promise<unknown> {
  if (requireJsonType) {
    const header = req.headers['content-type'];
    const type = typeof header === 'string' ? header : '';
    if (!/^application\/json\s*(;|$)/i.test(type)) throw fail({ kind: 'type', contentType: type });
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > max) throw fail({ kind: 'size', max });
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch {
    throw fail({ kind: 'json', text });
  }
}
