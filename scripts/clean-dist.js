// Removes dist/ so that `npm pack` and `npm publish` (prepack) build it afresh: no output of a deleted source file ships.
const fs = require('node:fs');
const path = require('node:path');

fs.rmSync(path.join(__dirname, '..', 'dist'), { recursive: true, force: true });
