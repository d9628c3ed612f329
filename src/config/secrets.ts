import { readFileSync } from 'node:fs';

export class SecretReferenceError extends Error {}

const REFERENCE = /\$\{([^}]*)\}/g;

/**
 * Replaces `${ENV_VAR}` and `${file:/path}` references inside every string of a parsed YAML
 * document. References are resolved after parsing so that a secret's value can never change
 * the document's structure. Errors name the key path, never the secret.
 */
export function resolveSecretReferences(
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: (string | number)[] = [],
): unknown {
  if (typeof value === 'string') return resolveString(value, env, path);
  if (Array.isArray(value)) return value.map((v, i) => resolveSecretReferences(v, env, [...path, i]));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveSecretReferences(v, env, [...path, k]);
    return out;
  }
  return value;
}

function resolveString(text: string, env: NodeJS.ProcessEnv, path: (string | number)[]): string {
  return text.replace(REFERENCE, (_whole, ref: string) => {
    const where = path.join('.') || '(root)';
    if (ref.startsWith('file:')) {
      const file = ref.slice('file:'.length);
      try {
        return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
        throw new SecretReferenceError(`${where}: secret file ${file} cannot be read (${code})`);
      }
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(ref)) {
      throw new SecretReferenceError(`${where}: "\${${ref}}" is not a valid reference (use \${ENV_VAR} or \${file:/path})`);
    }
    const v = env[ref];
    if (v === undefined || v === '') throw new SecretReferenceError(`${where}: environment variable ${ref} is not set`);
    return v;
  });
}
