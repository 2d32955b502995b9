import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command';
import { startAgent } from '../../agent/main';
import { jsonLogger } from '../../lib/log';

export default class AgentCommand extends BaseCommand<typeof AgentCommand> {
  static description = "Run this node's agent: executes queued jobs, heartbeats, logs one JSON object per line";
  static examples = ['<%= config.bin %> agent --db postgres://admin@db1:5432/app'];
  static flags = {
    concurrency: Flags.integer({ description: 'jobs run at the same time', default: 4, min: 1, max: 32 }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(AgentCommand);
    const logger = jsonLogger({ component: 'agent' });
    const agent = await startAgent({ connectionString: flags.db, logger, concurrency: flags.concurrency });
    const onSignal = (signal: NodeJS.Signals) => void agent.stop(`received ${signal}`);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    await agent.done;
  }
}
