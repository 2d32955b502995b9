import { Queryable } from './queryable';

export interface InitMethod {
  method: string;
  task: string;
  available: boolean;
  options: string[];
  phases: string[];
  position: number;
  description: string;
}

// The methods start_init knows, in the order front ends offer them.
export async function listInitMethods(db: Queryable, options: { availableOnly?: boolean } = {}): Promise<InitMethod[]> {
  const { rows } = await db.query(
    'SELECT * FROM steep_repl.init_methods WHERE available OR NOT $1 ORDER BY position',
    [options.availableOnly ?? false],
  );
  return rows;
}
