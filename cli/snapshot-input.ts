// What snapshot apply can read of a snapshot directory on this machine
// before it asks the target to load it: the manifest's source node and a
// summary. The target's agent reads the directory on its own machine and
// checks every file (manifest checksum, sizes, sha256, names) before
// anything changes; this only finds the source and catches a wrong path.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitCode, SteepError } from '../lib/errors';
import { shellWord } from '../lib/format';
import { Manifest, manifestFile } from '../lib/snapshot/manifest';

export interface SnapshotInput {
  dir: string;
  // undefined when the directory is not on this machine
  manifest?: Pick<Manifest, 'snapshot_id' | 'source' | 'consistent_lsn' | 'compression' | 'totals' | 'expires_at'>;
}

export function readSnapshotInput(input: string, from: string | undefined): SnapshotInput {
  const dir = path.resolve(input);
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat) {
    // Without --from nothing names the source; with it, the directory may be on the target agent's machine only.
    if (from === undefined) {
      throw new SteepError(`--input ${input}: ${dir} does not exist here`, ExitCode.badArguments,
        `give the directory snapshot generate wrote (its manifest names the source); if it is only on the target agent's machine, add --from <source>`);
    }
    return { dir };
  }
  if (!stat.isDirectory()) throw new SteepError(`--input ${input}: ${dir} is not a directory`, ExitCode.badArguments, 'give the directory snapshot generate wrote, not a file in it');
  const file = path.join(dir, manifestFile);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (from !== undefined) return { dir };
    throw new SteepError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.badArguments,
      `is ${dir} a snapshot directory? snapshot generate writes manifest.json last, once every part is written; --from <source> names the source without it`);
  }
  let manifest: SnapshotInput['manifest'];
  try {
    manifest = JSON.parse(text);
  } catch {
    manifest = undefined;
  }
  const source = manifest?.source?.node_id;
  if (typeof source !== 'string' || typeof manifest?.snapshot_id !== 'string') {
    if (from !== undefined) return { dir };
    throw new SteepError(`${file} is not a snapshot manifest (no snapshot_id and source.node_id)`, ExitCode.badArguments,
      `give --from <source> to name the source; the target's agent checks the manifest and refuses a damaged one`);
  }
  return { dir, manifest };
}

// "snapshot snap_… of node_a at 0/3000060: 5 tables, 12 parts, 14.2MB stored (zstd)"
export function describeInput(s: SnapshotInput, bytesText: (n: number) => string): string {
  const m = s.manifest;
  if (!m) return `snapshot in ${shellWord(s.dir)} (not readable here: the target's agent reads it)`;
  const totals = m.totals ? `: ${m.totals.tables} tables, ${m.totals.parts} parts, ${bytesText(m.totals.stored_bytes)} stored (${m.compression})` : '';
  return `snapshot ${m.snapshot_id} of ${m.source.node_id} at ${m.consistent_lsn}${totals}`;
}
