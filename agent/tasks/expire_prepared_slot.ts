// The expiry of a slot this node prepared for a later init (init_slots),
// queued by steep_repl.prepare_slot for its expires_at: the slot stops
// retaining WAL for an init that never came. SQL does it
// (steep_repl.expire_prepared_slot, which also emits slot.expired); a row
// whose expiry was moved later is queued again for then.
import { SteepTask } from '../task';

export const expire_prepared_slot: SteepTask = async (payload, ctx) => {
  const slotName = String(payload.slot_name);
  const { rows } = await ctx.helpers.query('SELECT steep_repl.expire_prepared_slot($1) AS outcome', [slotName]);
  const outcome = rows[0].outcome as string;
  ctx.logger.log(outcome === 'expired' || outcome === 'in_use' ? 'warn' : 'info', 'slot.expire_checked', {
    slot_name: slotName,
    outcome,
    job_id: ctx.jobId,
  });
};
