import type { IncomingMessage } from 'node:http';

/**
 * Bytes of delivery bodies held in memory at once, across every connection to the relay. The
 * relay's door needs no credentials, so without this bound anyone who reaches it could make the
 * process hold `maxBodyBytes` per open connection.
 */
export class InFlightBytes {
  private used = 0;
  /** Highest `used` seen (tests, diagnostics). */
  peak = 0;

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  tryReserve(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    if (this.used > this.peak) this.peak = this.used;
    return true;
  }

  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

export interface IntakeSettings {
  maxBodyBytes: number;
  /** From the moment the request head is in until the last body byte. */
  bodyTimeoutMs: number;
}

export type Intake =
  | { ok: true; body: Buffer; /** Gives the body's bytes back to the in-flight budget. */ release(): void }
  | { ok: false; reason: 'too-large' | 'busy' | 'timeout' | 'aborted' };

/**
 * Reads one delivery body under three bounds: at most `maxBodyBytes` (a declared Content-Length
 * over it is refused before a byte is read), within `bodyTimeoutMs`, and only while the shared
 * in-flight budget has room. A declared length is reserved whole up front, so a delivery that has
 * started is never cut off half-way by others; a chunked body reserves as its chunks arrive.
 * On refusal reading stops at once: the caller answers and closes the connection.
 */
export function readDeliveryBody(req: IncomingMessage, s: IntakeSettings, budget: InFlightBytes): Promise<Intake> {
  const raw = req.headers['content-length'];
  const declared = raw !== undefined && /^\d{1,15}$/.test(raw) ? Number(raw) : undefined;
  if (declared !== undefined && declared > s.maxBodyBytes) return Promise.resolve({ ok: false, reason: 'too-large' });
  let reserved = 0;
  if (declared !== undefined && declared > 0) {
    if (!budget.tryReserve(declared)) return Promise.resolve({ ok: false, reason: 'busy' });
    reserved = declared;
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: Intake): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
      req.off('close', onError);
      if (!result.ok) {
        // Stop reading: what is left of the body stays unread and the connection is closed.
        req.pause();
        chunks.length = 0;
        budget.release(reserved);
        reserved = 0;
      }
      resolve(result);
    };
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > s.maxBodyBytes) return finish({ ok: false, reason: 'too-large' });
      if (size > reserved) {
        if (!budget.tryReserve(size - reserved)) return finish({ ok: false, reason: 'busy' });
        reserved = size;
      }
      chunks.push(c);
    };
    const onEnd = (): void => {
      const held = reserved;
      let released = false;
      finish({
        ok: true,
        body: Buffer.concat(chunks, size),
        release: () => {
          if (released) return;
          released = true;
          budget.release(held);
        },
      });
    };
    const onError = (): void => finish({ ok: false, reason: 'aborted' });
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), s.bodyTimeoutMs);
    timer.unref();
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
    req.on('close', onError);
  });
}
