/** A map that forgets its oldest entries beyond `max`: for memos of content-addressed values. */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(k: K, v: V): this {
    if (!this.has(k) && this.size >= this.max) {
      const first = this.keys().next();
      if (!first.done) this.delete(first.value);
    }
    return super.set(k, v);
  }
}
