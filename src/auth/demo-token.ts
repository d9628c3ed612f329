import { createHash } from 'node:crypto';
import { TOKEN_LENGTH, TOKEN_PREFIX } from './tokens';

/**
 * The demo's fixed token. It is public on purpose (README, compose, JCasC) and only ever grants
 * access to the embedded fake Bitbucket of demo mode: `serve` never accepts it unless configured.
 */
export const DEMO_TOKEN = (() => {
  let body = '';
  for (let i = 0; body.length < TOKEN_LENGTH; i++) {
    body += createHash('sha512').update(`bitbucket-sidecar demo token ${i}`).digest('base64url');
  }
  return (TOKEN_PREFIX + 'demo_' + body).slice(0, TOKEN_LENGTH);
})();
