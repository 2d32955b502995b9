// The CLI and the agent as real child processes, from the built dist.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../../lib/paths';

const runJs = path.join(packageRoot, 'bin', 'run.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

// CLI runs still going; a test that failed or timed out while one followed
// an init leaves it here (its listener would retry forever once the servers go).
const cliRuns = new Set<ChildProcess>();

export interface CliRun {
  readonly child: ChildProcess;
  // what it printed so far
  readonly stdout: string;
  readonly stderr: string;
  // once it exited and its output is read
  readonly result: Promise<CliResult>;
}

// A CLI run the caller can watch and signal while it runs.
export function startCli(args: string[], env: Record<string, string | undefined> = {}, input?: string): CliRun {
  const child = spawn(process.execPath, [runJs, ...args], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  cliRuns.add(child);
  child.on('exit', () => cliRuns.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const result = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  child.stdin!.end(input ?? '');
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    result,
  };
}

export function runCli(args: string[], env: Record<string, string | undefined> = {}, input?: string): Promise<CliResult> {
  return startCli(args, env, input).result;
}

export interface LogLine {
  event: string;
  level: string;
  [key: string]: unknown;
}

// An agent process whose JSON log lines the test can wait for.
export class AgentProcess {
  readonly lines: LogLine[] = [];
  readonly raw: string[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  // stdout and stderr ended: no log line will come any more
  private closed = false;
  private waiters: Array<() => void> = [];

  // An agent that logged agent.started, as a DBA has one running.
  static async start(db: string, extraArgs: string[] = [], env: Record<string, string | undefined> = {}, timeoutMs = 20000): Promise<AgentProcess> {
    const agent = new AgentProcess(db, extraArgs, env);
    try {
      await agent.waitForEvent('agent.started', timeoutMs);
    } catch (err) {
      await agent.stop('SIGKILL');
      throw err;
    }
    return agent;
  }

  constructor(db: string, extraArgs: string[] = [], env: Record<string, string | undefined> = {}) {
    this.child = spawn(process.execPath, [runJs, 'agent', '--db', db, ...extraArgs], {
      env: { ...process.env, STEEP_REPL_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        this.raw.push(line);
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          // not a log line (a stack trace, oclif output): kept in raw
        }
        this.waiters.forEach((w) => w());
      }
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    this.child.on('close', () => {
      this.closed = true;
      this.waiters.forEach((w) => w());
    });
    running.add(this);
  }

  get pid(): number {
    return this.child.pid!;
  }

  waitFor(predicate: (line: LogLine) => boolean, timeoutMs = 20000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.find(predicate);
        if (!found && !this.closed) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        if (found) resolve(found);
        else reject(new Error(`agent exited (code ${this.child.exitCode}, signal ${this.child.signalCode}) before the log line; log:\n${this.raw.join('\n')}`));
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`agent log line not seen within ${timeoutMs} ms; log:\n${this.raw.join('\n')}`));
      }, timeoutMs);
      this.waiters.push(check);
      check();
    });
  }

  waitForEvent(event: string, timeoutMs?: number): Promise<LogLine> {
    return this.waitFor((l) => l.event === event, timeoutMs);
  }

  // For an agent expected to exit by itself; kills it if it does not.
  async waitForExit(timeoutMs = 20000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const code = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (code === 'timeout') {
      await this.stop('SIGKILL');
      throw new Error(`agent did not exit within ${timeoutMs} ms; log:\n${this.raw.join('\n')}`);
    }
    running.delete(this);
    return code;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const code = await this.exited;
    running.delete(this);
    return code;
  }
}

const running = new Set<AgentProcess>();

// For afterAll hooks: no agent outlives its test file.
export async function stopAllAgents(): Promise<void> {
  await Promise.all([...running].map((agent) => agent.stop('SIGKILL')));
}

// Run after every test file (jest setupFilesAfterEnv): nothing it started
// outlives it. SIGTERM first (a demo stops its servers, node start cancels
// its init), SIGKILL for what has not exited within 10 s.
export async function stopLeftoverProcesses(): Promise<void> {
  await Promise.all(
    [...cliRuns].map(
      (child) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  await stopAllAgents();
}

// Whether a process still runs: an exited one, or a zombie nobody reaped yet
// (the snapshot holder, reparented when its agent was killed), does not.
export function processRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
