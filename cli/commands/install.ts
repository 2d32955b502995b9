import { BaseCommand } from '../base-command';
import { describeTarget } from '../../lib/connection';
import { installSchema } from '../../lib/install';
import { jsonLogger } from '../../lib/log';

export default class Install extends BaseCommand<typeof Install> {
  static summary = "Install or upgrade steep_repl's schema and the job queue in a database (idempotent)";
  static description = `Creates the schemas graphile_worker (the job queue) and steep_repl (registry, state machine, progress, audit log) from the committed migrations, or brings them up to date. Running it again changes nothing; installs started at the same time into one database take turns (the later ones log install.waiting and wait).

Needs a role that may create schemas in the database (its owner or a superuser). Run it once on every node, then register the nodes and start an agent per node.`;
  static examples = ['<%= config.bin %> install --db postgres://admin@db1:5432/app'];

  async run(): Promise<void> {
    const { flags } = await this.parse(Install);
    const logger = jsonLogger({ command: 'install' }, process.stderr);
    await installSchema(flags.db, logger);
    this.log(`steep_repl installed in ${describeTarget(flags.db)}`);
  }
}
