import { Queryable } from './queryable';

// The server's version as a number (160000 for 16.0): what it can do is
// decided from this, never assumed.
export async function serverVersionNum(db: Queryable): Promise<number> {
  return Number((await db.query('SHOW server_version_num')).rows[0].server_version_num);
}
