import { clusterA, createNodeDatabase, dropDatabase, query } from './support/clusters';
import { runCli } from './support/processes';

describe('node registry through the CLI', () => {
  let db: { name: string; url: string };
  beforeAll(async () => {
    db = await createNodeDatabase(clusterA(), 'registry');
  });
  afterAll(async () => {
    await dropDatabase(clusterA(), db.name);
  });

  it('registers a node with an odd id and lists it', async () => {
    const id = 'Nöde "b" with spaces';
    const reg = await runCli(['node', 'register', id, '--host', '127.0.0.1', '--port', '5433', '--dbname', 'app', '--db', db.url]);
    expect(reg.stderr).toBe('');
    expect(reg.code).toBe(0);
    const list = await runCli(['node', 'list', '--json', '--db', db.url]);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((n: { node_id: string }) => n.node_id)).toEqual([id]);
    const rows = await query(db.url, 'SELECT port, dbname, init_state FROM steep_repl.nodes WHERE node_id = $1', [id]);
    expect(rows).toEqual([{ port: 5433, dbname: 'app', init_state: 'uninitialized' }]);
  });
});
