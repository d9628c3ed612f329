/**
 * The import rules of src/, checked by `npm run check:deps` and by test/architecture.test.ts.
 *
 * LAYERS lists the folders of src/ from the bottom up. A folder may import itself, core/ and the
 * folders of lower entries; folders sharing an entry are peers and do not import each other. The
 * composition root (the .ts files directly in src/) may import every layer. The fake Bitbucket is
 * an island: it may import core/ and git-objects/ only (one renderer for the mirror and the fake),
 * and only the demo imports it.
 */
const LAYERS = [
  'core',
  'git-objects',
  'config',
  'routes',
  'auth',
  'scope',
  'respond',
  'upstream',
  ['cache', 'mirror'],
  ['git', 'lfs'],
  ['webhooks', 'ops', 'tls'],
  ['listen', 'doctor'],
];
const ISLAND = 'fake-bitbucket';
const DEMO = 'src/demo.ts';

const folders = LAYERS.flat();
const any = (names) => `^src/(${names.join('|')})/`;

/** One rule per folder: whatever in src/ is not itself, core/ or a lower layer is forbidden. */
function layerRules() {
  return LAYERS.flatMap((entry, level) => {
    const below = LAYERS.slice(0, level).flat();
    return [entry].flat().map((folder) => {
      const allowed = [...new Set(['core', ...below, folder])];
      return {
        name: `layer-${folder}`,
        comment: `${folder}/ may import only ${allowed.join(', ')}`,
        severity: 'error',
        from: { path: `^src/${folder}/` },
        to: { path: '^src/', pathNot: any(allowed) },
      };
    });
  });
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No cycle between files, type-only imports included',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-folder-cycle',
      comment: 'No cycle between folders',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    ...layerRules(),
    {
      name: 'layer-unknown',
      comment: `Every folder of src/ has a place in the layer order (${folders.join(', ')}) or is the ${ISLAND} island`,
      severity: 'error',
      from: { path: '^src/[^/]+/', pathNot: any([...folders, ISLAND]) },
      to: {},
    },
    {
      name: 'island-imports-shared-only',
      comment: `${ISLAND}/ may import only core/ and git-objects/ from the sidecar`,
      severity: 'error',
      from: { path: `^src/${ISLAND}/` },
      to: { path: '^src/', pathNot: any(['core', 'git-objects', ISLAND]) },
    },
    {
      name: 'island-imported-by-demo-only',
      comment: `Only ${DEMO} starts the fake Bitbucket`,
      severity: 'error',
      from: { path: '^src/', pathNot: [`^${DEMO.replace('.', '\\.')}$`, `^src/${ISLAND}/`] },
      to: { path: `^src/${ISLAND}/` },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // `import type` counts: a type-only cycle still ties the files together.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
