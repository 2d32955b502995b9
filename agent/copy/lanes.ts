// N workers serving one queue while a report runs every everyMs: the shape
// of the direct copy, the two-phase load (copy/workers.ts) and the snapshot
// generate (snapshot/generate.ts). A cancel or shutdown signal, or the first
// failure of a worker or of a report, aborts the lanes' signal; that
// failure is thrown once every lane has ended.
export async function runLanes(options: {
  lanes: number;
  signals: AbortSignal[];
  everyMs: number;
  lane(n: number, signal: AbortSignal): Promise<void>;
  report(): Promise<void>;
}): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  for (const signal of options.signals) signal.addEventListener('abort', stop, { once: true });
  let failure: unknown;
  const fail = (err: unknown) => {
    failure ??= err;
    controller.abort();
  };
  const running = Promise.all(Array.from({ length: options.lanes }, (_, i) => options.lane(i + 1, controller.signal).catch(fail)));
  let done = false;
  void running.then(() => (done = true));
  try {
    while (!done && !controller.signal.aborted) {
      await options.report().catch(fail);
      await Promise.race([running, new Promise((resolve) => setTimeout(resolve, options.everyMs))]);
    }
    await running;
  } finally {
    for (const signal of options.signals) signal.removeEventListener('abort', stop);
  }
  if (failure) throw failure;
}
