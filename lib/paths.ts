import * as fs from 'node:fs';
import * as path from 'node:path';

// The package root, from source (tsx, jest) and from dist alike.
function findPackageRoot(start: string): string {
  for (let dir = start; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'migrations'))) return dir;
  }
  throw new Error(`cannot find the steep-repl package root above ${start}`);
}

export const packageRoot = findPackageRoot(__dirname);
export const migrationsFolder = path.join(packageRoot, 'migrations');
