// Removes dist/ so that every build (npm run build, and so npm pack and npm publish) starts afresh: no output of a deleted or moved source file is run by a test or ships.
const fs = require('node:fs');
const path = require('node:path');

fs.rmSync(path.join(__dirname, '..', 'dist'), { recursive: true, force: true });
