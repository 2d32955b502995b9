// The agent's task list: one file per task, named as the job identifier.
import { SteepTask } from '../task';
import { detach_node } from './detach_node';
import { expire_prepared_slot } from './expire_prepared_slot';
import { init_direct } from './init_direct';
import { init_snapshot } from './init_snapshot';
import { init_two_phase } from './init_two_phase';
import { probe_node } from './probe_node';

export const tasks: Record<string, SteepTask> = {
  detach_node,
  expire_prepared_slot,
  init_direct,
  init_snapshot,
  init_two_phase,
  probe_node,
};
