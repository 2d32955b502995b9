// The streams a snapshot's data files go through. gzip is Node's zlib;
// zstd and lz4 are the system's zstd and lz4 commands (Debian packages),
// fed through stdin/stdout: Node 20's zlib has no zstd, and the npm
// bindings either compress whole buffers only (@mongodb-js/zstd) or bring
// a native addon of their own (lz4-napi); the commands stream, are kept by
// the distribution, and run beside the agent on a core of their own.
import { spawn, spawnSync } from 'node:child_process';
import { Duplex, PassThrough } from 'node:stream';
import * as zlib from 'node:zlib';
import { SteepError } from '../errors';
import { Compression } from './manifest';

// Fast levels: a snapshot is written once and its size matters less than
// the time the source's snapshot is held open.
const commands: Record<'zstd' | 'lz4', { compress: string[]; decompress: string[]; install: string }> = {
  zstd: { compress: ['-q', '-c', '-1', '-T1'], decompress: ['-d', '-q', '-c'], install: 'apt install zstd' },
  lz4: { compress: ['-q', '-c', '-1'], decompress: ['-d', '-q', '-c'], install: 'apt install lz4' },
};

export function compressor(compression: Compression): Duplex {
  if (compression === 'none') return new PassThrough();
  if (compression === 'gzip') return zlib.createGzip({ level: 1 });
  return command(compression, commands[compression].compress);
}

export function decompressor(compression: Compression): Duplex {
  if (compression === 'none') return new PassThrough();
  if (compression === 'gzip') return zlib.createGunzip();
  return command(compression, commands[compression].decompress);
}

// Whether this machine can write or read the compression; a clear error if not.
export function checkCompression(compression: Compression, where: string): void {
  if (compression === 'none' || compression === 'gzip') return;
  const probe = spawnSync(compression, ['-V'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    throw new SteepError(
      `the ${compression} command is not on ${where}'s PATH (the agent runs it to ${compression === 'zstd' ? 'read and write .zst' : 'read and write .lz4'} files)`,
      undefined,
      `install it (${commands[compression].install}), or generate with --compression gzip or none`,
    );
  }
}

// A child process as a duplex stream: what is written goes to its stdin,
// what it prints is read. A failure of the command (exit code, signal) is
// an error of the stream with what it printed on stderr; destroying the
// stream ends the command.
function command(name: 'zstd' | 'lz4', args: string[]): Duplex {
  const child = spawn(name, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
  // the output ends only once the command exited well, so a reader never
  // takes a cut-off stream for a whole one
  const output = new PassThrough();
  child.stdout.pipe(output, { end: false });
  const duplex = Duplex.from({ writable: child.stdin, readable: output });
  child.on('error', (err) => duplex.destroy(new SteepError(`running ${name} failed: ${err.message}`, undefined, commands[name].install)));
  child.on('close', (code, signal) => {
    if (code === 0) output.end();
    else duplex.destroy(new SteepError(`${name} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`));
  });
  duplex.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return duplex;
}
