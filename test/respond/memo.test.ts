import { clearMemo, memoUsage, PARSED_MAX_BYTES, parseJsonBody, SHAPED_MAX_BYTES, shapedOnce, sizeShapedMemo } from '../../src/core/body-memo';

const body = (i: number, size = 1000) => Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(size) }));

describe('memo of parsed and shaped bodies', () => {
  beforeEach(() => {
    sizeShapedMemo(16 * SHAPED_MAX_BYTES);
    clearMemo();
  });

  it('parses and shapes a body once per view', () => {
    const b = body(1);
    const parsed = parseJsonBody(b);
    expect(parsed).toEqual({ i: 1, pad: 'x'.repeat(1000) });
    expect(parseJsonBody(b)).toBe(parsed);
    let shapes = 0;
    const shape = () => {
      shapes++;
      return Buffer.from('shaped');
    };
    const first = shapedOnce(b, 'a', shape);
    expect(shapedOnce(b, 'a', shape)).toBe(first);
    shapedOnce(b, 'b', shape);
    expect(shapedOnce(b, 'a', shape)).toBe(first);
    expect(shapes).toBe(2);
    // An equal body in another Buffer is another body.
    expect(parseJsonBody(Buffer.from(b))).not.toBe(parsed);
  });

  it('remembers that a body is not JSON', () => {
    const b = Buffer.from('not json');
    expect(parseJsonBody(b)).toBeUndefined();
    expect(parseJsonBody(b)).toBeUndefined();
    expect(memoUsage().parsed.bodies).toBe(1);
  });

  it('keeps parsed bodies for recently used bodies only, within PARSED_MAX_BYTES', () => {
    const size = 10_000;
    const n = Math.ceil((PARSED_MAX_BYTES / size) * 2);
    const bodies = Array.from({ length: n }, (_, i) => body(i, size));
    const hot = bodies[0];
    const hotParsed = parseJsonBody(hot);
    for (const b of bodies.slice(1)) {
      parseJsonBody(b);
      parseJsonBody(hot); // used all along: stays
      expect(memoUsage().parsed.bytes).toBeLessThanOrEqual(PARSED_MAX_BYTES);
    }
    expect(parseJsonBody(hot)).toBe(hotParsed);
    expect(memoUsage().parsed.bodies).toBeLessThan(n / 2);
    // The least recently used were dropped: parsed again, into a new object.
    expect(parseJsonBody(bodies[1])).toEqual({ i: 1, pad: 'x'.repeat(size) });
  });

  it('keeps the shaped bytes of a working set much larger than the parsed table, within SHAPED_MAX_BYTES', () => {
    const size = 2_000;
    // A scan's working set: more bodies than the parsed table holds, fewer than the shaped one does.
    const working = Array.from({ length: Math.floor(SHAPED_MAX_BYTES / (2 * size + 400)) - 10 }, (_, i) => body(i, size));
    expect(working.length * size).toBeGreaterThan(PARSED_MAX_BYTES * 2);
    let shapes = 0;
    const shape = (b: Buffer) => () => {
      shapes++;
      return Buffer.from(b);
    };
    for (const b of working) shapedOnce(b, 'v', shape(b));
    for (const b of working) shapedOnce(b, 'v', shape(b)); // the second pass: every answer from the table
    expect(shapes).toBe(working.length);
    // A much larger set evicts the least recently used, and the bound holds.
    const more = Array.from({ length: working.length * 2 }, (_, i) => body(100_000 + i, size));
    for (const b of more) shapedOnce(b, 'v', shape(b));
    expect(memoUsage().shaped.bytes).toBeLessThanOrEqual(SHAPED_MAX_BYTES);
    shapes = 0;
    shapedOnce(working[0], 'v', shape(working[0]));
    expect(shapes).toBe(1);
  });

  it('bounds the views kept per body', () => {
    const b = body(1, 100);
    for (let i = 0; i < 200; i++) shapedOnce(b, `view ${i}`, () => Buffer.alloc(1000));
    expect(memoUsage().shaped.bytes).toBeLessThanOrEqual(64 * 1000 + b.length + 200);
    expect(memoUsage().shaped.bodies).toBe(1);
  });

  it('sizes the shaped table with the cache: a sixteenth, at least 4 MiB', () => {
    sizeShapedMemo(256 * 1024 ** 2);
    expect(memoUsage().shaped.maxBytes).toBe(16 * 1024 ** 2);
    sizeShapedMemo(1024 ** 3);
    expect(memoUsage().shaped.maxBytes).toBe(64 * 1024 ** 2);
    sizeShapedMemo(16 * 1024 ** 2);
    expect(memoUsage().shaped.maxBytes).toBe(4 * 1024 ** 2);
  });
});
