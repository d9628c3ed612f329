/**
 * A pure function of one string, remembered for the values seen recently: the table is emptied when
 * it reaches `max` values, so a client sending ever new values costs memory for at most `max` answers.
 * For per-request parsing of values clients repeat on every request (Authorization, Host, …).
 */
export function memoizeRecent<T>(compute: (value: string) => T, max = 256): (value: string) => T {
  const known = new Map<string, T>();
  return (value) => {
    if (known.has(value)) return known.get(value) as T;
    const result = compute(value);
    if (known.size >= max) known.clear();
    known.set(value, result);
    return result;
  };
}
