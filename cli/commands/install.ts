import { BaseCommand } from '../base-command';
import { describeTarget } from '../../lib/connection';
import { installSchema } from '../../lib/install';
import { jsonLogger } from '../../lib/log';

export default class Install extends BaseCommand<typeof Install> {
  static description = "Install or upgrade steep_repl's schema and the job queue in a database (idempotent)";
  static examples = ['<%= config.bin %> install --db postgres://admin@db1:5432/app'];

  async run(): Promise<void> {
    const { flags } = await this.parse(Install);
    const logger = jsonLogger({ command: 'install' }, process.stderr);
    await installSchema(flags.db, logger);
    this.log(`steep_repl installed in ${describeTarget(flags.db)}`);
  }
}
