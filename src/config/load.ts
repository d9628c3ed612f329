import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
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
  return parseConfigText(text, env);
}

export function parseConfigText(text: string, env: NodeJS.ProcessEnv = process.env): Config {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  return validateConfig(doc.toJS(), env);
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

function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const where = issue.path.length ? issue.path.join('.') : '(root)';
    if (issue.code === 'unrecognized_keys') {
      return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    return `${where}: ${issue.message}`;
  });
}
