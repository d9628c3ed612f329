import { BodyMemo, PARSED_MAX_BYTES, SHAPED_MAX_BYTES } from '../../src/core/body-memo';

const body = (i: number, size = 1000) => Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(size) }));

describe('memo of parsed and shaped bodies', () => {
  let memo: BodyMemo;
  beforeEach(() => {
    memo = new BodyMemo(16 * SHAPED_MAX_BYTES);
  });

  it('parses and shapes a body once per view', () => {
    const b = body(1);
    const parsed = memo.parse(b);
    expect(parsed).toEqual({ i: 1, pad: 'x'.repeat(1000) });
    expect(memo.parse(b)).toBe(parsed);
    let shapes = 0;
    const shape = () => {
      shapes++;
      return Buffer.from('shaped');
    };
    const first = memo.shapedOnce(b, 'a', shape);
    expect(memo.shapedOnce(b, 'a', shape)).toBe(first);
    memo.shapedOnce(b, 'b', shape);
    expect(memo.shapedOnce(b, 'a', shape)).toBe(first);
    expect(shapes).toBe(2);
    // An equal body in another Buffer is another body.
    expect(memo.parse(Buffer.from(b))).not.toBe(parsed);
  });

  it('remembers that a body is not JSON', () => {
    const b = Buffer.from('not json');
    expect(memo.parse(b)).toBeUndefined();
    expect(memo.parse(b)).toBeUndefined();
    expect(memo.usage().parsed.bodies).toBe(1);
  });

  it('keeps parsed bodies for recently used bodies only, within PARSED_MAX_BYTES', () => {
    const size = 10_000;
    const n = Math.ceil((PARSED_MAX_BYTES / size) * 2);
    const bodies = Array.from({ length: n }, (_, i) => body(i, size));
    const hot = bodies[0];
    const hotParsed = memo.parse(hot);
    for (const b of bodies.slice(1)) {
      memo.parse(b);
      memo.parse(hot); // used all along: stays
      expect(memo.usage().parsed.bytes).toBeLessThanOrEqual(PARSED_MAX_BYTES);
    }
    expect(memo.parse(hot)).toBe(hotParsed);
    expect(memo.usage().parsed.bodies).toBeLessThan(n / 2);
    // The least recently used were dropped: parsed again, into a new object.
    expect(memo.parse(bodies[1])).toEqual({ i: 1, pad: 'x'.repeat(size) });
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
    for (const b of working) memo.shapedOnce(b, 'v', shape(b));
    for (const b of working) memo.shapedOnce(b, 'v', shape(b)); // the second pass: every answer from the table
    expect(shapes).toBe(working.length);
    // A much larger set evicts the least recently used, and the bound holds.
    const more = Array.from({ length: working.length * 2 }, (_, i) => body(100_000 + i, size));
    for (const b of more) memo.shapedOnce(b, 'v', shape(b));
    expect(memo.usage().shaped.bytes).toBeLessThanOrEqual(SHAPED_MAX_BYTES);
    shapes = 0;
    memo.shapedOnce(working[0], 'v', shape(working[0]));
    expect(shapes).toBe(1);
  });

  it('bounds the views kept per body', () => {
    const b = body(1, 100);
    for (let i = 0; i < 200; i++) memo.shapedOnce(b, `view ${i}`, () => Buffer.alloc(1000));
    expect(memo.usage().shaped.bytes).toBeLessThanOrEqual(64 * 1000 + b.length + 200);
    expect(memo.usage().shaped.bodies).toBe(1);
  });

  it('sizes the shaped table with the cache: a sixteenth, at least 4 MiB', () => {
    memo = new BodyMemo(256 * 1024 ** 2);
    expect(memo.usage().shaped.maxBytes).toBe(16 * 1024 ** 2);
    memo = new BodyMemo(1024 ** 3);
    expect(memo.usage().shaped.maxBytes).toBe(64 * 1024 ** 2);
    memo = new BodyMemo(16 * 1024 ** 2);
    expect(memo.usage().shaped.maxBytes).toBe(4 * 1024 ** 2);
  });
});
