// The SQL that makes the steep_repl schema, as files: the committed
// migrations (tables and data, in order, never edited once released) and
// the routines (one file per function in migrations/functions, per view in
// migrations/views), which every install re-creates after the migrations.
// `steep-repl install` and the extension build read them from here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { migrationsFolder } from './paths';

export interface SqlFile {
  // relative to migrations/
  file: string;
  body: string;
}

const sqlFiles = (dir: string, pattern: RegExp): SqlFile[] =>
  fs
    .readdirSync(path.join(migrationsFolder, dir))
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => ({ file: `${dir}/${f}`, body: fs.readFileSync(path.join(migrationsFolder, dir, f), 'utf8') }));

// Bodies without graphile-migrate's --! headers.
export function committedMigrations(): SqlFile[] {
  return sqlFiles('committed', /^\d{6}.*\.sql$/).map((m) => ({ ...m, body: m.body.replace(/^(--! [^\n]*\n)+\n?/, '') }));
}

// Functions first (their bodies are checked when called, not when created),
// then the views that may call them.
export function routineFiles(): SqlFile[] {
  return [...sqlFiles('functions', /\.sql$/), ...sqlFiles('views', /\.sql$/)];
}

export function routinesScript(): string {
  return routineFiles()
    .map((r) => `-- from migrations/${r.file}\n${r.body.trim()}\n`)
    .join('\n');
}
