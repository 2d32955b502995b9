// The files of a snapshot directory as the generate writes and removes
// them: the directory checked before anything is made (absolute, a
// directory, empty: a generate never overwrites), each file written under
// <name>.tmp, synced, renamed and its directory synced, so a name that
// exists holds a whole file; and removal of exactly the files a snapshot
// wrote, nothing else.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SteepError } from '../../lib/errors';
import { dataDir, manifestFile, schemaFile, sequencesFile } from '../../lib/snapshot/manifest';

export const tmpSuffix = '.tmp';

// The directory is made if missing. What may already be in it: nothing, or
// an empty data/ (made by an earlier run of this generate killed before
// its slot existed). Returns whether the directory was made now.
export async function prepareOutputDir(dir: string): Promise<{ created: boolean }> {
  if (!path.isAbsolute(dir)) throw new SteepError(`the output directory ${dir} is not an absolute path`, undefined, 'give an absolute path');
  const stat = await fs.promises.stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw dirError(dir, 'cannot be read', err);
  });
  let created = false;
  if (!stat) {
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o750 }).catch((err) => {
      throw dirError(dir, 'cannot be created', err);
    });
    created = true;
  } else {
    if (!stat.isDirectory()) throw new SteepError(`the output directory ${dir} exists and is not a directory`, undefined, 'give a directory that does not exist yet or is empty');
    const entries = await fs.promises.readdir(dir).catch((err) => {
      throw dirError(dir, 'cannot be read', err);
    });
    const ours = entries.length === 1 && entries[0] === dataDir && (await fs.promises.readdir(path.join(dir, dataDir)).catch(() => ['?'])).length === 0;
    if (entries.length && !ours) {
      const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? ` and ${entries.length - 5} more` : '');
      throw new SteepError(
        `the output directory ${dir} is not empty (${shown}): a snapshot is never written over other files`,
        undefined,
        'give a directory that does not exist yet or is empty, or empty this one yourself',
      );
    }
  }
  await fs.promises.access(dir, fs.constants.W_OK).catch((err) => {
    throw dirError(dir, 'is not writable by the agent', err);
  });
  await fs.promises.mkdir(path.join(dir, dataDir), { recursive: true, mode: 0o750 }).catch((err) => {
    throw dirError(dir, `cannot hold a ${dataDir} directory`, err);
  });
  await syncDir(dir);
  return { created };
}

function dirError(dir: string, what: string, err: NodeJS.ErrnoException): SteepError {
  return new SteepError(
    `the output directory ${dir} ${what} (${err.code ?? err.message})`,
    undefined,
    "it is a directory on the machine of the source's agent: give one the agent's OS user may create and write",
  );
}

// A directory's entries (a rename, a new file) reach the disk.
export async function syncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function syncFile(file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// A whole file under its name: written as .tmp, synced, renamed, directory synced.
export async function writeFileDurably(dir: string, name: string, text: string): Promise<{ bytes: number; sha256: string }> {
  const final = path.join(dir, name);
  const tmp = final + tmpSuffix;
  const body = Buffer.from(text, 'utf8');
  await fs.promises.rm(tmp, { force: true });
  await fs.promises.writeFile(tmp, body, { flag: 'wx', mode: 0o640 });
  await syncFile(tmp);
  await fs.promises.rename(tmp, final);
  await syncDir(path.dirname(final));
  return { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

// The files a snapshot wrote or was writing, each with its .tmp: the
// manifest, schema.sql, sequences.json (unless topFiles is false: a
// snapshot that never made its slot wrote none) and one file per part;
// then data/ and the directory itself if nothing else is left in them.
// Anything else in the directory stays. Returns what was removed.
export async function removeSnapshotFiles(
  dir: string,
  partFiles: string[],
  options: { topFiles?: boolean } = {},
): Promise<{ removed: string[]; dirRemoved: boolean; missingDir: boolean }> {
  const removed: string[] = [];
  if (!(await fs.promises.stat(dir).catch(() => undefined))?.isDirectory()) return { removed, dirRemoved: false, missingDir: true };
  const names = [...(options.topFiles === false ? [] : [manifestFile, schemaFile, sequencesFile]), ...partFiles];
  for (const name of names) {
    // names come from the snapshot's rows (data/<safe name>): never a path outside the directory
    if (name.includes('..') || path.isAbsolute(name)) continue;
    for (const file of [name, name + tmpSuffix]) {
      const full = path.join(dir, file);
      const stat = await fs.promises.lstat(full).catch(() => undefined);
      if (!stat?.isFile()) continue;
      await fs.promises.rm(full, { force: true });
      removed.push(file);
    }
  }
  const rmdirIfEmpty = async (d: string) => fs.promises.rmdir(d).then(() => true, () => false);
  await rmdirIfEmpty(path.join(dir, dataDir));
  const dirRemoved = await rmdirIfEmpty(dir);
  if (!dirRemoved) await syncDir(dir).catch(() => undefined);
  return { removed, dirRemoved, missingDir: false };
}
