// node detach and node remove (issue 9 item 7): a synchronized pair's
// subscription, publication and slots are removed on both sides by the
// node's agent, the result is what a check found, the node is
// uninitialized with its rows kept, and only then may it be removed.
// Also item 12: a start on a synchronized node says how to start again.
import { query } from './support/clusters';
import { clusterA, clusterB } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus } from './support/init-pair';
import { registryState } from './support/registry-state';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';

jest.setTimeout(180000);

// Everything a pair may hold, on both sides: subscriptions, slots,
// publications and prepared slots.
async function replicationObjects(pair: InitPair) {
  const side = async (url: string) => ({
    subscriptions: (await query(url, 'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1')).map((r) => r.subname),
    slots: (await query(url, 'SELECT slot_name FROM pg_replication_slots WHERE database = current_database() ORDER BY 1')).map((r) => r.slot_name),
    publications: (await query(url, 'SELECT pubname FROM pg_publication ORDER BY 1')).map((r) => r.pubname),
    prepared: (await query(url, 'SELECT slot_name FROM steep_repl.init_slots ORDER BY 1')).map((r) => r.slot_name),
  });
  return { source: await side(pair.source.url), target: await side(pair.target.url) };
}

// The registries as a refusal must leave them; the agents' heartbeats move last_seen and status.
async function registries(pair: InitPair) {
  return Promise.all(
    [pair.source.url, pair.target.url].map(async (url) => {
      const state = await registryState(url);
      return { ...state, nodes: (state.nodes as Array<Record<string, unknown>>).map(({ last_seen: _l, status: _s, ...n }) => n) };
    }),
  );
}

const quoteIdent = (id: string) => `"${id.replace(/"/g, '""')}"`;
const nothing = { subscriptions: [], slots: [], publications: [], prepared: [] };

describe('node detach', () => {
  let pair: InitPair;
  let targetAgent: AgentProcess;

  beforeAll(async () => {
    pair = await createInitPair({
      tag: 'node_detach',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Detach "Src" ü',
      targetId: 'detach tgt select',
      rows: 2000,
    });
    // both nodes' agents: a detach reaches the other side through them
    await AgentProcess.start(pair.source.url);
    targetAgent = await AgentProcess.start(pair.target.url);
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
  });

  const cli = (args: string[], input?: string) => runCli([...args], {}, input);

  it('refuses node remove of a synchronized node and of its source, and start again says how to re-initialize', async () => {
    const started = await cli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]);
    expect(started.stderr).not.toMatch(/error/);
    expect(started.code).toBe(0);
    expect((await initStatus(pair.target)).state).toBe('synchronized');
    const before = await replicationObjects(pair);
    expect(before.target.subscriptions).toEqual([pair.replicationName]);
    expect(before.source.publications).toContain(pair.replicationName);
    expect(before.source.slots).toContain(pair.replicationName);

    const registriesBefore = await registries(pair);
    // the synchronized node, in its own registry
    const self = await cli(['node', 'remove', pair.target.id, '--db', pair.target.url]);
    expect(self.code).toBe(1);
    expect(self.stderr).toContain(`node "${pair.target.id}" still has replication objects in this database: `);
    expect(self.stderr).toContain(`subscription ${pair.replicationName} (streaming from node ${quoteIdent(pair.source.id)})`);
    expect(self.stderr).toContain(`hint: remove them first with: steep-repl node detach '${pair.target.id}'`);
    // its source, in the target's registry: the target is the one to detach
    const source = await cli(['node', 'remove', pair.source.id, '--db', pair.target.url]);
    expect(source.code).toBe(1);
    expect(source.stderr).toContain(`still has replication objects in this database: `);
    expect(source.stderr).toContain(`subscription ${pair.replicationName} (streaming from node ${quoteIdent(pair.source.id)})`);
    expect(source.stderr).toContain(`steep-repl node detach '${pair.target.id}'`);
    // the target, in the source's registry: the publication and slot are for it
    const fed = await cli(['node', 'remove', pair.target.id, '--db', pair.source.url]);
    expect(fed.code).toBe(1);
    expect(fed.stderr).toContain(`publication ${pair.replicationName} (for node "${pair.target.id}")`);
    expect(fed.stderr).toContain(`slot ${pair.replicationName} (for node "${pair.target.id}")`);

    // item 12: a second start names the way to start again
    const again = await cli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`node "${pair.target.id}" is already synchronized (initialized from ${quoteIdent(pair.source.id)})`);
    expect(again.stderr).toContain(`steep-repl node detach '${pair.target.id}'`);
    expect(again.stderr).toContain(`steep-repl node start '${pair.target.id}' --from '${pair.source.id}' --force`);
    expect(again.stderr).not.toMatch(/illegal init_state transition/);

    // a detach not confirmed changes nothing either
    const declined = await cli(['node', 'detach', pair.target.id, '--db', pair.target.url], 'n\n');
    expect(declined.stderr).toContain(`subscription ${pair.replicationName} (streams from ${pair.source.id})`);
    expect(declined.stderr).toMatch(/\[y\/N\]/);
    expect(declined.code).toBe(4);
    // from the wrong database, SQL refuses
    await expect(query(pair.source.url, 'SELECT steep_repl.detach_node($1)', [pair.target.id])).rejects.toMatchObject({
      code: 'SR004',
      message: expect.stringContaining(`detach_node runs on the database of node "${pair.target.id}"`),
    });

    expect(await registries(pair)).toEqual(registriesBefore);
    expect(await replicationObjects(pair)).toEqual(before);
    expect((await initStatus(pair.target)).state).toBe('synchronized');
  });

  it('detaches the synchronized node: nothing left on either side (checked), uninitialized, rows kept; start --force brings the pair back', async () => {
    const rowsBefore = await contentHashes(pair.target.url);
    const result = await cli(['node', 'detach', pair.target.id, '--yes', '--json', '--db', pair.target.url]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const outcome = JSON.parse(result.stdout);
    expect(outcome).toMatchObject({ node_id: pair.target.id, state: 'uninitialized', left: [], unreachable: [] });
    expect(outcome.checked.sort()).toEqual([pair.source.id, pair.target.id].sort());
    expect(outcome.removed).toContain(`subscription ${pair.replicationName} on ${pair.target.id}`);
    expect(outcome.removed).toContain(`publication ${pair.replicationName} on ${pair.source.id}`);

    expect(await replicationObjects(pair)).toEqual({ source: nothing, target: nothing });
    const status = await initStatus(pair.target);
    expect(status).toMatchObject({ state: 'uninitialized', source_node_id: null, progress: null });
    expect(await contentHashes(pair.target.url)).toEqual(rowsBefore);
    const [event] = await query(pair.target.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'node.detached' ORDER BY audit_id DESC LIMIT 1");
    expect(event.details.removed).toEqual(outcome.removed);

    // the hint of item 12 works: start again with --force, then the pair is back
    const again = await cli(['node', 'start', pair.target.id, '--from', pair.source.id, '--force', '--db', pair.target.url]);
    if (again.code !== 0) {
      // the why first: a long diff is cut short in CI's output
      const failures = targetAgent.lines.filter((l) => /failed$/.test(l.event)).map((l) => JSON.stringify(l));
      throw new Error(`start --force exited ${again.code}: ${again.stderr.slice(0, 2000)}\nagent: ${failures.join('\n')}`);
    }
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
  });

  it('detaching the source removes the pair too and returns the node it fed to uninitialized; then both can be removed', async () => {
    expect((await initStatus(pair.target)).state).toBe('synchronized');
    const result = await cli(['node', 'detach', pair.source.id, '--yes', '--db', pair.source.url]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`detached node ${pair.source.id}: it is uninitialized and keeps its rows`);
    expect(result.stdout).toContain(`subscription ${pair.replicationName} on ${pair.target.id}`);
    expect(result.stdout).toContain(`publication ${pair.replicationName} on ${pair.source.id}`);
    expect(result.stdout).toContain(`also uninitialized now (they streamed from ${pair.source.id}): ${pair.target.id}`);
    expect(result.stdout).toMatch(/left: nothing \(checked on /);

    expect(await replicationObjects(pair)).toEqual({ source: nothing, target: nothing });
    expect((await initStatus(pair.target)).state).toBe('uninitialized');
    const [fed] = await query(pair.target.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'node.detached' ORDER BY audit_id DESC LIMIT 1");
    expect(fed.details).toMatchObject({ reason: `its source ${pair.source.id} was detached`, detached_with: pair.source.id });

    for (const [node, db] of [
      [pair.target.id, pair.source.url],
      [pair.source.id, pair.target.url],
    ]) {
      const removed = await cli(['node', 'remove', node, '--db', db]);
      expect(removed.stderr).toBe('');
      expect(removed.code).toBe(0);
      expect(removed.stdout).toBe(`removed node ${node}\n`);
    }
  });
});
