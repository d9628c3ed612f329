/**
 * Log lines of one event-loop turn reach the file in one write at the end of the turn, in order;
 * none is lost when the process exits right after logging (process.exit, an uncaught exception),
 * and no `exit` listener is left behind once the lines are out.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LinesPerTurn } from '../../src/ops/logger';

const DIST_LOGGER = path.join(__dirname, '../../dist/ops/logger.js');

function sink() {
  const writes: string[] = [];
  return { writes, sink: { write: (s: string) => writes.push(s), flushSync: () => undefined } };
}

describe('LinesPerTurn', () => {
  it('hands the lines of one turn to the sink in one write, after the turn', async () => {
    const { writes, sink: s } = sink();
    const exitListeners = process.listenerCount('exit');
    const b = new LinesPerTurn(s);
    for (let i = 0; i < 5; i++) b.write(`line ${i}\n`);
    expect(writes).toEqual([]);
    expect(process.listenerCount('exit')).toBe(exitListeners + 1);
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual(['line 0\nline 1\nline 2\nline 3\nline 4\n']);
    expect(process.listenerCount('exit')).toBe(exitListeners);
    b.write('next\n');
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual(['line 0\nline 1\nline 2\nline 3\nline 4\n', 'next\n']);
  });

  it('writes at once past 64 KiB', () => {
    const { writes, sink: s } = sink();
    const b = new LinesPerTurn(s);
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) b.write(line);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toBe(line.repeat(64));
    b.flushSync();
  });

  describe('a process that exits right after logging', () => {
    let dir: string;
    beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'log-batching-'))));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it.each([
      ['process.exit', 'process.exit(3)', 3],
      ['an uncaught exception', 'throw new Error("boom")', 1],
    ])('keeps every line (%s)', (_name, ending, code) => {
      const file = path.join(dir, `${code}.log`);
      const script = `
        const { createLogger } = require(${JSON.stringify(DIST_LOGGER)});
        const log = createLogger({ destination: ${JSON.stringify(file)} });
        for (let i = 0; i < 2000; i++) log.info({ i }, 'line');
        ${ending};`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      expect(r.status).toBe(code);
      const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { i: number });
      expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    });
  });
});
