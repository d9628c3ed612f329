import { readFileSync } from 'node:fs';
import { parseDocument, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema';
import { resolveSecretReferences, SecretReferenceError } from './secrets';

/** A configuration that cannot be used; `problems` are "key.path: reason" lines. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  return parseConfigText(text, env, file);
}

/** Syntax errors after the first few are nearly always echoes of them. */
const SHOWN_YAML_ERRORS = 3;

export function parseConfigText(text: string, env: NodeJS.ProcessEnv = process.env, file = '(config)'): Config {
  return validateConfig(parseYaml(text, file), env);
}

function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const shown = doc.errors.slice(0, SHOWN_YAML_ERRORS).map((e) => yamlProblem(file, e));
    const more = doc.errors.length - shown.length;
    throw new ConfigError(more > 0 ? [...shown, `(${more} more YAML error${more > 1 ? 's' : ''} after these, most likely caused by the first)`] : shown);
  }
  return doc.toJS();
}

/**
 * Only what the CA needs (`tls` and `server.https.hostnames`), for `ca export`: the upstream
 * secrets and clients need not be present where the trust exports are made.
 */
export function loadTrustSettings(file: string, env: NodeJS.ProcessEnv = process.env): { dir: string; hostnames?: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  const raw = (parseYaml(text, file) ?? {}) as { tls?: unknown; server?: { https?: unknown } };
  let picked: { tls?: unknown; https?: unknown };
  try {
    picked = resolveSecretReferences({ tls: raw.tls, https: raw.server?.https }, env) as typeof picked;
  } catch (e) {
    if (e instanceof SecretReferenceError) throw new ConfigError([e.message]);
    throw e;
  }
  const tls = configSchema.shape.tls.safeParse(picked.tls);
  const https = configSchema.shape.server.unwrap().shape.https.safeParse(picked.https);
  const problems = [
    ...(tls.success ? [] : formatIssues(tls.error.issues, ['tls'])),
    ...(https.success ? [] : formatIssues(https.error.issues, ['server', 'https'])),
  ];
  if (problems.length > 0 || !tls.success || !https.success) throw new ConfigError(problems);
  return { dir: tls.data.dir, hostnames: https.data?.hostnames };
}

/** `FILE:LINE:COLUMN: message` and the yaml library's own excerpt with its caret. */
function yamlProblem(file: string, e: YAMLError): string {
  const [first, ...excerpt] = e.message.split('\n');
  const where = e.linePos ? `${file}:${e.linePos[0].line}:${e.linePos[0].col}` : file;
  const message = first.replace(/ at line \d+, column \d+:?$/, '');
  const context = excerpt.filter((l, i) => l.trim() !== '' || i > 0).join('\n    ').trimEnd();
  return `${where}: YAML: ${message}${context ? `\n    ${context}` : ''}`;
}

export function validateConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  let resolved: unknown;
  try {
    resolved = resolveSecretReferences(raw, env);
  } catch (e) {
    if (e instanceof SecretReferenceError) throw new ConfigError([e.message]);
    throw e;
  }
  const result = configSchema.safeParse(resolved ?? {});
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues));
  return result.data;
}

function formatIssues(issues: z.core.$ZodIssue[], prefix: PropertyKey[] = []): string[] {
  return issues.map((issue) => {
    const path = [...prefix, ...issue.path];
    const where = path.length ? path.map(String).join('.') : '(root)';
    if (issue.code === 'unrecognized_keys') {
      return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    return `${where}: ${issue.message}`;
  });
}
