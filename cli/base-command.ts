// Shared by every command: connection flags, --json, and the mapping from
// errors to exit codes (SPEC §4.8). Commands parse, call SQL, render.
import { Command, Flags, Interfaces } from '@oclif/core';
import { Client } from 'pg';
import { connectTo, describeTarget } from '../lib/connection';
import { describeError, exitCodeFor, ExitCode, isNotInstalled, notInstalledError } from '../lib/errors';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>;

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static baseFlags = {
    db: Flags.string({
      description:
        'connection URL of the node to act on, postgres://user@host:5432/dbname (default: STEEP_REPL_DB, then PGHOST/PGPORT/PGDATABASE/PGUSER); the password comes from the URL, PGPASSWORD or pgpass',
      helpGroup: 'CONNECTION',
    }),
  };

  protected async withClient<R>(db: string | undefined, fn: (client: Client) => Promise<R>): Promise<R> {
    const client = await connectTo(db, `steep-repl ${this.id ?? ''}`.trim());
    try {
      return await fn(client);
    } catch (err) {
      throw isNotInstalled(err) ? notInstalledError(describeTarget(db)) : err;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  protected printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  protected async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    // oclif's own parse errors (missing or invalid arguments) exit 2.
    if (err.oclif?.exit !== undefined && !(err as { code?: string }).code?.startsWith?.('SR')) {
      if (err.oclif.exit === 0) return;
      process.stderr.write(`error: ${err.message}\n`);
      process.exitCode = err.oclif.exit === 2 ? ExitCode.badArguments : err.oclif.exit;
      return;
    }
    process.stderr.write(`error: ${describeError(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
}

export const jsonFlag = Flags.boolean({ description: 'print machine-readable JSON' });
