/**
 * How many answers are computed from mirrors at once (`mirror.maxConcurrentWalks`): each holds one
 * slot while it runs `git rev-list`, walks trees and reads objects through cat-file, so the memory
 * in flight (object data, parsed trees, rev-list output) is bounded by the slot count, whatever
 * the number of requests. Waiting is bounded too: beyond `maxQueued` waiters a request is not
 * answered from the mirror (it goes upstream like any other mirror miss).
 */
export class WalkSlots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Requests sent upstream because every slot and queue place was taken. */
  refused = 0;

  constructor(
    readonly max: number,
    readonly maxQueued: number,
  ) {}

  /** Runs `fn` in a slot; undefined (without running it) when the queue is full. */
  async run<T>(fn: () => Promise<T>): Promise<{ value: T } | undefined> {
    if (this.active >= this.max) {
      if (this.waiting.length >= this.maxQueued) {
        this.refused++;
        return undefined;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.active++;
    try {
      return { value: await fn() };
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter (active stays the same).
      if (next) next();
      else this.active--;
    }
  }

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }
}
