// Reads of a status that notifications ask for, one at a time, and one
// more after it when asked meanwhile: reads that overlap could land out of
// order and show an older status last.
export interface Rereader {
  // asks for a read
  (): void;
  // the read under way, if any (awaited before the connection closes)
  current(): Promise<unknown> | undefined;
}

export function oneReadAtATime(readOnce: () => Promise<unknown>, stopped: () => boolean): Rereader {
  let reading: Promise<unknown> | undefined;
  let readAgain = false;
  const reread = (): void => {
    if (stopped()) return;
    if (reading) {
      readAgain = true;
      return;
    }
    reading = readOnce().finally(() => {
      reading = undefined;
      if (readAgain && !stopped()) {
        readAgain = false;
        reread();
      }
    });
  };
  return Object.assign(reread, { current: () => reading });
}
