import { removeRun } from '../../lib/embedded-cluster';

export default async function globalTeardown(): Promise<void> {
  const runDir = process.env.STEEP_TEST_RUN_DIR;
  if (runDir) await removeRun(runDir);
}
