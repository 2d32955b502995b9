// The agent's task list: one file per task, named as the job identifier.
import { SteepTask } from '../task';
import { detach_node } from './detach_node';
import { expire_prepared_slot } from './expire_prepared_slot';
import { init_direct } from './init_direct';
import { init_manual } from './init_manual';
import { init_snapshot } from './init_snapshot';
import { init_two_phase } from './init_two_phase';
import { merge_nodes } from './merge_nodes';
import { probe_node } from './probe_node';
import { reinit_node } from './reinit_node';
import { snapshot_expire } from './snapshot_expire';
import { snapshot_generate } from './snapshot_generate';
import { snapshot_remove_files } from './snapshot_remove_files';
import { snapshot_watch } from './snapshot_watch';
import { verify_node } from './verify_node';

export const tasks: Record<string, SteepTask> = {
  detach_node,
  expire_prepared_slot,
  init_direct,
  init_manual,
  init_snapshot,
  init_two_phase,
  merge_nodes,
  probe_node,
  reinit_node,
  snapshot_expire,
  snapshot_generate,
  snapshot_remove_files,
  snapshot_watch,
  verify_node,
};
