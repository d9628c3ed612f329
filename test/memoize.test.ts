import { memoizeRecent } from '../src/core/memoize';

describe('memoizeRecent', () => {
  it('computes once per value seen recently, and forgets everything past its bound', () => {
    const calls: string[] = [];
    const upper = memoizeRecent((v) => (calls.push(v), v.toUpperCase()), 3);
    expect([upper('a'), upper('a'), upper('b')]).toEqual(['A', 'A', 'B']);
    expect(calls).toEqual(['a', 'b']);
    upper('c');
    upper('d'); // the fourth value empties the table
    upper('a');
    expect(calls).toEqual(['a', 'b', 'c', 'd', 'a']);
  });

  it('remembers undefined answers too', () => {
    let n = 0;
    const none = memoizeRecent(() => (n++, undefined));
    none('x');
    none('x');
    expect(n).toBe(1);
  });
});
