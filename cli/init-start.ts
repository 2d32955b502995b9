// What node start and snapshot apply share: the flags every init takes and
// the options they give, the manual schema check before the start, the
// word about a missing agent, and following the started init to its end
// with Ctrl+C cancelling it, the last lines and the exit code (SPEC §4.8).
import { Flags } from '@oclif/core';
import { Client, ClientConfig } from 'pg';
import { connectToNode } from '../lib/connection';
import { syncSchema } from '../lib/schema-sync';
import { cancelInit } from '../lib/sql/cancelInit';
import { InitStatus } from '../lib/sql/getInitStatus';
import { getLeftBehind } from '../lib/sql/getLeftBehind';
import { getNode } from '../lib/sql/getNode';
import { isOffline, offlineReason } from '../lib/health-format';
import { quoteIdent } from '../lib/identifiers';
import { getNodeOverview } from '../lib/sql/listNodes';
import { jsonFlag } from './base-command';
import { askToProceed } from './confirm';
import { describeCancelled, exitCodeForInit, followInit, followWithCancel, progressRenderer } from './init-follow';

// The flags of every init command besides its own (--from, --parallel, --schema-sync, --resume, ...).
export const initFlags = {
  force: Flags.boolean({ description: 'empty target tables that already hold rows (on this node only, not replicated)' }),
  timeout: Flags.string({ description: 'fail the init if not synchronized within this (seconds, or an interval like "2 hours")' }),
  'reverse-slot-ttl': Flags.string({
    description: 'once synchronized, keep a slot for the reverse direction this long (seconds or an interval; default 1 day; 0: none)',
  }),
  wait: Flags.boolean({ description: 'follow the init until it ends (--no-wait: queue it and return; follow it with node progress)', default: true, allowNo: true }),
  yes: Flags.boolean({ char: 'y', description: 'schema sync manual: proceed without asking (for scripts)' }),
  json: jsonFlag,
};

// A duration flag as SQL takes it: whole seconds as a number, else the
// interval text as typed (the SQL side reads and range-checks it).
export const secondsOrInterval = (value: string): number | string => (/^\d+$/.test(value) ? Number(value) : value);

// Only what was given: start_init completes the defaults, and a resume
// keeps what the failed init had. Values as typed (init_options reads and
// range-checks them), whole seconds as numbers.
export function initOptions(flags: {
  'schema-sync'?: string;
  parallel?: number;
  force?: boolean;
  resume?: boolean;
  timeout?: string;
  'reverse-slot-ttl'?: string;
}): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  if (flags['schema-sync'] !== undefined) options.schema_sync = flags['schema-sync'];
  if (flags.parallel !== undefined) options.parallel = flags.parallel;
  if (flags.force) options.force = true;
  if (flags.resume) options.resume = true;
  if (flags.timeout !== undefined) options.timeout = secondsOrInterval(flags.timeout);
  if (flags['reverse-slot-ttl'] !== undefined) options.reverse_slot_ttl = secondsOrInterval(flags['reverse-slot-ttl']);
  return options;
}

// The agent heartbeats its node every few seconds; without one the work
// waits, which deserves a word rather than a still bar. node_overview
// decides (offline; 'no agent' / 'agent silent' in a database older than
// 0.9.0) and says why, as for node list and the TUI.
export async function warnIfNoAgent(client: Client, nodeId: string, what = 'the init'): Promise<void> {
  const node = await getNodeOverview(client, nodeId);
  if (node && isOffline(node)) {
    process.stderr.write(`warning: node ${quoteIdent(nodeId)} is offline: ${offlineReason(node)}; ${what} waits until its agent runs\n`);
  }
}

// Manual mode: the differences are shown and accepted here, before the
// init is queued; the agent, unattended, takes the start as the answer.
export async function confirmSchemaManually(target: Client, targetId: string, sourceId: string, yes: boolean, app: string): Promise<void> {
  const source = await connectToNode(await getNode(target, sourceId), app);
  try {
    await syncSchema({
      source,
      target,
      sourceNodeId: sourceId,
      targetNodeId: targetId,
      mode: 'manual',
      confirm: async (differences) => yes || askToProceed(differences, sourceId, targetId, 'initialize with these differences?'),
    });
  } finally {
    await source.end().catch(() => undefined);
  }
}

// Follows the init live on stderr until it settles (Ctrl+C asks the node to
// cancel and keeps following until it is clean; a second stops waiting:
// cancelOnInterrupt says what each one does), then prints what it came to
// and sets the exit code. --json: the settled init_status on stdout.
export async function followToEnd(
  config: ClientConfig,
  client: Client,
  targetId: string,
  sourceId: string,
  json: boolean,
  log: (line: string) => void,
): Promise<InitStatus> {
  const renderer = progressRenderer(process.stderr);
  const final = await followWithCancel(followInit(config, client, targetId, { render: (s) => renderer.render(s) }), renderer, {
    nodeId: targetId,
    requestCancel: () => cancelInit(client, targetId),
    exitCode: exitCodeForInit,
  });
  if (json) process.stdout.write(`${JSON.stringify(final, null, 2)}\n`);
  process.exitCode = exitCodeForInit(final);
  if (final.state === 'synchronized') {
    if (!json) log(`${targetId} is synchronized with ${sourceId}`);
    const skipped = final.progress?.not_replicated ?? [];
    if (!json && skipped.length) {
      process.stderr.write(`warning: not replicated (logical replication cannot carry them): ${skipped.map((r) => `${r.label} (${r.reason})`).join(', ')}\n`);
    }
  } else if (final.state === 'uninitialized') {
    process.stderr.write(`${describeCancelled(targetId, await getLeftBehind(client, targetId))}\n`);
  } else {
    process.stderr.write(`error: initialization of ${targetId} ${final.state}: ${final.progress?.error ?? ''}\n`);
  }
  return final;
}
