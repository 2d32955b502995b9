// Questions a command asks once on the terminal (or as one line read from
// piped stdin); no answer is a no. --yes skips them in scripts.
import * as readline from 'node:readline';
import { describeDifferences, TableDifference } from '../lib/schema-sync';

// Manual schema sync shows the blocking differences, then asks.
export function askToProceed(differences: TableDifference[], source: string, target: string, question: string): Promise<boolean> {
  const blocking = differences.filter((d) => d.blocking);
  process.stderr.write(`node ${target} differs from node ${source}:\n${describeDifferences(blocking)}\n`);
  return confirmAction(question);
}

export function confirmAction(question: string): Promise<boolean> {
  process.stderr.write(`${question} [y/N] `);
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin });
    let answer: boolean | undefined;
    rl.once('line', (line) => {
      answer = /^\s*y(es)?\s*$/i.test(line);
      rl.close();
    });
    rl.once('close', () => {
      // End of input without an answer: the prompt line still needs its end.
      if (answer === undefined) process.stderr.write('\n');
      resolve(answer ?? false);
    });
  });
}
