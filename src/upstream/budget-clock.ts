/**
 * Time for the budget governor: reading the clock and waking up later. Tests use `ManualClock`
 * (time moves only when told); the budget benchmark uses `scaledClock` (an hour in seconds).
 */
export interface Clock {
  now(): number;
  /** Calls `fn` once `ms` of this clock's time have passed; returns a cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
}

/**
 * The governor keeps the times of past calls. If the clock stepped back (NTP, a VM resumed), they
 * would lie in the future and hold the window shut for as long as the step. Read through this, time
 * never goes back: a step back is absorbed into an offset, and time goes on at its own pace.
 */
export function neverBackwards(clock: Clock): Clock {
  let offset = 0;
  let last = -Infinity;
  return {
    now() {
      const t = clock.now() + offset;
      if (t < last) {
        offset += last - t;
        return last;
      }
      last = t;
      return t;
    },
    setTimer: (ms, fn) => clock.setTimer(ms, fn),
  };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref?.();
    return () => clearTimeout(t);
  },
};

/**
 * A clock running `speed` times faster than the wall clock, starting at `epoch`. Two processes that
 * build it with the same `epoch`, `speed` and `origin` agree on the time.
 */
export function scaledClock(speed: number, epoch: number, origin = Date.now()): Clock {
  return {
    now: () => epoch + (Date.now() - origin) * speed,
    setTimer(ms, fn) {
      const t = setTimeout(fn, Math.max(0, ms / speed));
      t.unref?.();
      return () => clearTimeout(t);
    },
  };
}

/** Time stands still until `advance` moves it; timers due by then fire in order. */
export class ManualClock implements Clock {
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;

  constructor(private t = 0) {}

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  /** Moves time forward by `ms`, firing due timers (each at its own due time). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
  }

  get pendingTimers(): number {
    return this.timers.length;
  }

  /** When the next timer is due, if any. */
  nextDueAt(): number | undefined {
    let at: number | undefined;
    for (const x of this.timers) if (at === undefined || x.at < at) at = x.at;
    return at;
  }
}
