import { Args, Flags } from '@oclif/core';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BaseCommand } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { fingerprintSet } from '../../../lib/schema-sync';
import { parseSchemas, resolveNodes, schemasFlag, withNodes } from '../../schema-nodes';

// The file is checked before anything is read and written under a temporary
// name then renamed, so a failure never leaves a partial or stray file.
function checkOutputPath(output: string): string {
  const file = path.resolve(output);
  const dir = path.dirname(file);
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat) throw new SteepError(`cannot write ${output}: directory ${dir} does not exist`, ExitCode.badArguments);
  if (!stat.isDirectory()) throw new SteepError(`cannot write ${output}: ${dir} is not a directory`, ExitCode.badArguments);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new SteepError(`cannot write ${output}: directory ${dir} is not writable`, ExitCode.badArguments);
  }
  if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new SteepError(`cannot write ${output}: it is a directory`, ExitCode.badArguments);
  return file;
}

function writeAtomically(file: string, output: string, text: string): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(temporary, text, { flag: 'wx' });
    fs.renameSync(temporary, file);
  } catch (err) {
    fs.rmSync(temporary, { force: true });
    throw new SteepError(`cannot write ${output}: ${(err as Error).message}`, ExitCode.badArguments);
  }
}

export default class SchemaExport extends BaseCommand<typeof SchemaExport> {
  static description = "Write a node's table fingerprints (columns, keys, definitions) to a JSON file";
  static examples = ['<%= config.bin %> schema export node_a --output node_a-schema.json'];
  static args = { node: Args.string({ description: 'node id (resolved through the registry of --db)', required: true }) };
  static flags = {
    output: Flags.string({ char: 'o', description: 'JSON file to write (its directory must exist)', required: true }),
    schemas: schemasFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SchemaExport);
    const schemas = parseSchemas(flags.schemas);
    const file = checkOutputPath(flags.output);
    const exported = await this.withClient(flags.db, async (registry) => {
      const nodes = await resolveNodes(registry, [args.node]);
      return withNodes(nodes, 'steep-repl schema export', async ([client]) => ({
        format: 'steep-repl.schema-fingerprints',
        version: 1,
        node_id: nodes[0].node_id,
        exported_at: new Date().toISOString(),
        schemas: schemas ?? null,
        tables: await fingerprintSet(client, schemas),
      }));
    });
    writeAtomically(file, flags.output, `${JSON.stringify(exported, null, 2)}\n`);
    this.log(`wrote ${exported.tables.length} table fingerprint${exported.tables.length === 1 ? '' : 's'} of node ${exported.node_id} to ${flags.output}`);
  }
}
