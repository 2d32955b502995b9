// A worker thread of file-hash.ts: hashes the files it is sent, one at a
// time, opened without following a link; answers {sha256} or {error}.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';

const buffer = Buffer.allocUnsafe(1 << 20);

parentPort!.on('message', (file: string) => {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const hash = createHash('sha256');
    for (let n = fs.readSync(fd, buffer); n > 0; n = fs.readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
    parentPort!.postMessage({ sha256: hash.digest('hex') });
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
});
