// A verify that cannot go on, with what to do next: the run ends failed
// with this message and hint, and no table is marked diverged.
export class VerifyError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'VerifyError';
  }
}
