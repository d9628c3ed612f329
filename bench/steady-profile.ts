/**
 * Preloaded into a benchmarked process (`node -r …/steady-profile.js`): records a CPU profile of the
 * steady state only — from STEADY_PROFILE_AFTER_MS (default 2500) for STEADY_PROFILE_MS (default
 * 3000) — into the file STEADY_PROFILE names, so start-up does not dilute the figures.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const file = process.env.STEADY_PROFILE;
if (file) {
  const session = new Session();
  session.connect();
  const after = Number(process.env.STEADY_PROFILE_AFTER_MS ?? 2500);
  const span = Number(process.env.STEADY_PROFILE_MS ?? 3000);
  setTimeout(() => {
    session.post('Profiler.enable', () =>
      session.post('Profiler.start', () =>
        setTimeout(() => session.post('Profiler.stop', (_err, res) => writeFileSync(file, JSON.stringify(res.profile))), span).unref(),
      ),
    );
  }, after).unref();
}
