import { Args } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { captureFingerprints } from '../../../lib/sql/captureFingerprints';
import { parseSchemas, resolveNodes, schemasFlag, withNodes } from '../../schema-nodes';

export default class SchemaCapture extends BaseCommand<typeof SchemaCapture> {
  static description = "Fingerprint every user table of a node and store the set in that node's steep_repl.schema_fingerprints";
  static examples = ['<%= config.bin %> schema capture node_a --db postgres://admin@db1/app', '<%= config.bin %> schema capture node_b --schemas public,sales --json'];
  static args = { node: Args.string({ description: 'node id (resolved through the registry of --db)', required: true }) };
  static flags = { schemas: schemasFlag, json: jsonFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SchemaCapture);
    const schemas = parseSchemas(flags.schemas);
    const captured = await this.withClient(flags.db, async (registry) => {
      const nodes = await resolveNodes(registry, [args.node]);
      return withNodes(nodes, 'steep-repl schema capture', async ([client]) => {
        const started = process.hrtime.bigint();
        const { tables, captured_at } = await captureFingerprints(client, nodes[0].node_id, schemas);
        const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
        return { node_id: nodes[0].node_id, tables, captured_at, elapsed_ms: Math.round(elapsedMs) };
      });
    });
    if (flags.json) return this.printJson(captured);
    this.log(
      `captured ${captured.tables} table fingerprint${captured.tables === 1 ? '' : 's'} of node ${captured.node_id} ` +
        `at ${captured.captured_at.toISOString()} (${captured.elapsed_ms} ms)`,
    );
  }
}
