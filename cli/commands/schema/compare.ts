import { Args } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode } from '../../../lib/errors';
import { tableLabel } from '../../../lib/identifiers';
import { compareFingerprints, fingerprintSet } from '../../../lib/schema-sync';
import { table } from '../../render';
import { parseSchemas, resolveNodes, schemasFlag, summarize, withNodes } from '../../schema-nodes';

export default class SchemaCompare extends BaseCommand<typeof SchemaCompare> {
  static description =
    'Compare the tables of two nodes: node-a is the reference (the source of an init), node-b the node that would receive data. ' +
    'Exit code 0 when every table matches, 3 when any differs, exists on one node only or cannot be replicated ' +
    '(NOT_REPLICATED: an unlogged or foreign table or a materialized view on node-a).';
  static examples = ['<%= config.bin %> schema compare node_a node_b', '<%= config.bin %> schema compare node_a node_b --schemas public,sales --json'];
  static args = {
    'node-a': Args.string({ description: 'reference node (source)', required: true }),
    'node-b': Args.string({ description: 'compared node (target)', required: true }),
  };
  static flags = { schemas: schemasFlag, json: jsonFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SchemaCompare);
    const schemas = parseSchemas(flags.schemas);
    const [a, b] = [args['node-a'], args['node-b']];
    const tables = await this.withClient(flags.db, async (registry) => {
      const nodes = await resolveNodes(registry, [a, b]);
      return withNodes(nodes, 'steep-repl schema compare', async ([clientA, clientB]) =>
        compareFingerprints(clientB, await fingerprintSet(clientA, schemas, false), schemas),
      );
    });
    const onlyOn = (status: string) => (status === 'REMOTE_ONLY' ? a : status === 'LOCAL_ONLY' ? b : null);
    const differing = tables.filter((t) => t.status !== 'MATCH').length;
    if (flags.json) {
      this.printJson({
        source_node: a,
        target_node: b,
        summary: summarize(tables, a, b),
        tables: tables.map((t) => ({ ...t, only_on: onlyOn(t.status) })),
      });
    } else {
      const rows = tables.flatMap((t) => {
        if (t.status === 'MATCH') return [[tableLabel(t), t.status, '-']];
        if (t.status === 'REMOTE_ONLY' || t.status === 'LOCAL_ONLY') return [[tableLabel(t), t.status, `only on ${onlyOn(t.status)}`]];
        return t.differences.map((d, i) => [i === 0 ? tableLabel(t) : '', i === 0 ? t.status : '', d.detail]);
      });
      if (rows.length) this.log(table(['TABLE', 'STATUS', 'DIFFERENCE'], rows).trimEnd());
      this.log(summarize(tables, a, b));
    }
    if (differing > 0) process.exitCode = ExitCode.schemaMismatch;
  }
}
