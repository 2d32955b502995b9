#!/usr/bin/env node
// Rewrites the Previous/Hash headers of the committed migrations in order,
// with graphile-migrate's own parser and hashing, after a not yet released
// migration was edited. Never run it on migrations a deployed database has
// applied.
const fs = require('node:fs');
const path = require('node:path');
const { calculateHash } = require('graphile-migrate/dist/hash');
const { parseMigrationText, serializeMigration } = require('graphile-migrate/dist/migration');

const dir = path.join(__dirname, 'committed');
let previous = null;
for (const file of fs.readdirSync(dir).filter((f) => /^\d{6}.*\.sql$/.test(f)).sort()) {
  const full = path.join(dir, file);
  const { headers, body } = parseMigrationText(full, fs.readFileSync(full, 'utf8'), false);
  const hash = calculateHash(body, previous);
  fs.writeFileSync(full, serializeMigration(body, { Previous: previous ?? '-', Hash: hash, Message: headers.Message }));
  previous = hash;
}
