/**
 * A cached answer's body is the same Buffer on every hit, so work derived from it — the parsed
 * JSON, and the bytes shaped for one client view — is kept beside it and dies with it. The parsed
 * object is shared: shaping and learning only ever read it.
 */
const parsedBodies = new WeakMap<Buffer, { value: unknown }>();
const shapedBodies = new WeakMap<Buffer, Map<string, Buffer>>();
const MAX_VIEWS_PER_BODY = 64;

export function parseJsonBody(body: Buffer): unknown {
  const known = parsedBodies.get(body);
  if (known) return known.value;
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    value = undefined;
  }
  parsedBodies.set(body, { value });
  return value;
}

/** The shaped bytes of `body` for one view (client bases, and the client where filtering applies). */
export function shapedOnce(body: Buffer, view: string, shape: () => Buffer): Buffer {
  let views = shapedBodies.get(body);
  const known = views?.get(view);
  if (known) return known;
  const shaped = shape();
  if (!views) shapedBodies.set(body, (views = new Map()));
  if (views.size >= MAX_VIEWS_PER_BODY) views.clear();
  views.set(view, shaped);
  return shaped;
}
