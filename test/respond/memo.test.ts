import { clearMemo, MEMO_MAX_BYTES, memoUsage, parseJsonBody, shapedOnce } from '../../src/respond/memo';

const body = (i: number, size = 1000) => Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(size) }));

describe('memo of parsed and shaped bodies', () => {
  beforeEach(() => clearMemo());

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
    expect(shapes).toBe(2);
    // An equal body in another Buffer is another body.
    expect(parseJsonBody(Buffer.from(b))).not.toBe(parsed);
  });

  it('remembers that a body is not JSON', () => {
    const b = Buffer.from('not json');
    expect(parseJsonBody(b)).toBeUndefined();
    expect(parseJsonBody(b)).toBeUndefined();
    expect(memoUsage().bodies).toBe(1);
  });

  it('keeps derived work for recently used bodies only, within MEMO_MAX_BYTES', () => {
    const size = 10_000;
    const n = Math.ceil((MEMO_MAX_BYTES / size) * 2);
    const bodies = Array.from({ length: n }, (_, i) => body(i, size));
    const hot = bodies[0];
    const hotParsed = parseJsonBody(hot);
    for (const b of bodies.slice(1)) {
      parseJsonBody(b);
      shapedOnce(b, 'v', () => Buffer.from(b));
      parseJsonBody(hot); // used all along: stays
      expect(memoUsage().bytes).toBeLessThanOrEqual(MEMO_MAX_BYTES);
    }
    expect(parseJsonBody(hot)).toBe(hotParsed);
    expect(memoUsage().bodies).toBeLessThan(n / 2);
    // The least recently used were dropped: parsed again, into a new object.
    const early = bodies[1];
    const again = parseJsonBody(early);
    expect(again).toEqual({ i: 1, pad: 'x'.repeat(size) });
    let reshaped = false;
    shapedOnce(early, 'v', () => {
      reshaped = true;
      return Buffer.from(early);
    });
    expect(reshaped).toBe(true);
  });

  it('counts views replaced beyond the per-body limit', () => {
    const b = body(1, 100);
    for (let i = 0; i < 200; i++) shapedOnce(b, `view ${i}`, () => Buffer.alloc(1000));
    // At most 64 views of 1000 bytes, the body and its (absent) parsed object.
    expect(memoUsage().bytes).toBeLessThanOrEqual(64 * 1000 + b.length);
    expect(memoUsage().bodies).toBe(1);
  });
});
