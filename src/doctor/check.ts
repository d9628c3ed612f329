/** One line of `bitbucket-sidecar doctor`: what was checked, whether it passed, and what to do if not. */
export interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
  /** What the operator should do; only on a failed check. */
  fix?: string;
}

export const pass = (check: string, detail: string): CheckResult => ({ check, ok: true, detail });
export const fail = (check: string, detail: string, fix: string): CheckResult => ({ check, ok: false, detail, fix });

/** The error code Node gives a failed connection (ENOTFOUND, ECONNREFUSED, …), or its message. */
export function errorCode(e: unknown): string {
  let err = e as { code?: unknown; cause?: unknown; message?: unknown } | undefined;
  for (let depth = 0; err && depth < 4; depth++) {
    if (typeof err.code === 'string' && !err.code.startsWith('UND_ERR_')) return err.code;
    if (!err.cause) break;
    err = err.cause as typeof err;
  }
  const top = e as { code?: unknown; message?: unknown };
  return typeof top?.code === 'string' ? top.code : String(top?.message ?? e);
}

/** The report: one line per check, ✓ or ✗, the fix indented under a failure. */
export function formatReport(results: readonly CheckResult[]): string {
  const lines = results.flatMap((r) => (r.ok ? [`✓ ${r.check}: ${r.detail}`] : [`✗ ${r.check}: ${r.detail}`, `    → ${r.fix ?? 'see docs/operations.md#troubleshooting'}`]));
  const failed = results.filter((r) => !r.ok).length;
  lines.push(failed === 0 ? `all ${results.length} checks passed` : `${failed} of ${results.length} checks failed`);
  return `${lines.join('\n')}\n`;
}
