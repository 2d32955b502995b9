// The agent's task list: one file per task, named as the job identifier.
import { SteepTask } from '../task';
import { init_snapshot } from './init_snapshot';
import { probe_node } from './probe_node';

export const tasks: Record<string, SteepTask> = {
  init_snapshot,
  probe_node,
};
