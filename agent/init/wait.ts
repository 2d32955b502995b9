// A pause that ends early when any of the signals fires.
export function pause(ms: number, signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    if (signals.some((s) => s.aborted)) return resolve();
    const done = () => {
      clearTimeout(timer);
      signals.forEach((s) => s.removeEventListener('abort', done));
      resolve();
    };
    const timer = setTimeout(done, ms);
    signals.forEach((s) => s.addEventListener('abort', done, { once: true }));
  });
}
