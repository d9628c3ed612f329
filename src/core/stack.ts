import type { Source } from './call';

/** One layer of a source stack: its name, and how it wraps the source below it. */
export type SourceLayer<N extends string> = readonly [name: N, wrap: (inner: Source) => Source];

/**
 * Builds a stack of sources from `bottom` upwards, `layers` listed bottom first, and returns each
 * layer's source by name (the top one answers requests; a lower one serves whoever must bypass the
 * layers above it, such as a refresher reading below the cache).
 */
export function stackSources<N extends string>(bottom: Source, layers: readonly SourceLayer<N>[]): Record<N, Source> {
  const out = {} as Record<N, Source>;
  let current = bottom;
  for (const [name, wrap] of layers) {
    current = wrap(current);
    out[name] = current;
  }
  return out;
}
