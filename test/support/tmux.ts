// A command running in a real terminal: a detached tmux session on a tmux
// server of this test file's own (-L), driven with send-keys and read with
// capture-pane. kill() stops the server and everything running in it.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

export class TmuxSession {
  private readonly socket: string;

  constructor(
    readonly name: string,
    command: string,
    readonly width = 100,
    readonly height = 30,
  ) {
    this.socket = `steep-${name}-${process.pid}`;
    this.tmux('new-session', '-d', '-s', name, '-x', String(width), '-y', String(height), command);
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }

  capture(): string {
    return this.tmux('capture-pane', '-p', '-t', this.name);
  }

  // A tmux format value of the pane, e.g. alternate_on or cursor_flag.
  paneFlag(format: string): string {
    return this.tmux('display-message', '-p', '-t', this.name, `#{${format}}`).trim();
  }

  resize(width: number, height: number): void {
    this.tmux('resize-window', '-t', this.name, '-x', String(width), '-y', String(height));
  }

  sendKeys(...keys: string[]): void {
    this.tmux('send-keys', '-t', this.name, ...keys);
  }

  async waitFor(what: RegExp | ((screen: string) => boolean), timeoutMs = 30000, label = String(what)): Promise<string> {
    const test = typeof what === 'function' ? what : (screen: string) => what.test(screen);
    const deadline = Date.now() + timeoutMs;
    let screen = '';
    while (Date.now() < deadline) {
      screen = this.capture();
      if (test(screen)) return screen;
      // The command echoes NAME-EXIT rc=N when it ends: nothing more will come.
      if (/-EXIT rc=\d+/.test(screen)) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`screen did not show ${label} (waited up to ${timeoutMs} ms); last screen:\n${screen}`);
  }

  kill(): void {
    let socketPath = '';
    try {
      socketPath = this.tmux('display-message', '-p', '#{socket_path}').trim();
      this.tmux('kill-server');
    } catch {
      // already gone
    }
    // tmux leaves its socket file behind.
    if (socketPath) fs.rmSync(socketPath, { force: true });
  }
}
