// npm run bench -- <name> [args]: runs bench/<name>.ts, which measures
// steep-repl against a baseline run side by side and prints both.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Benchmark {
  description: string;
  run(args: string[]): Promise<void>;
}

function available(): string[] {
  return fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('support'))
    .map((f) => f.replace(/\.js$/, ''));
}

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const names = available();
  if (!name || !names.includes(name)) {
    console.error(`usage: npm run bench -- <${names.join('|')}> [args]`);
    process.exit(2);
  }
  const bench: Benchmark = require(path.join(__dirname, name)).default;
  console.log(`# ${name}: ${bench.description}`);
  await bench.run(args);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
