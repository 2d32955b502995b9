// lib/identifiers against the server itself: quoteIdent must return what
// quote_ident() returns, and tableLabel what format('%I.%I') returns.
import { quoteIdent, tableLabel } from '../lib/identifiers';
import { clusterA, query } from './support/clusters';

const oddNames = [
  '',
  'plain',
  '_under_score',
  'with space',
  ' leading',
  'trailing ',
  'it"s',
  '""',
  "it's",
  'Capital',
  'ALLCAPS',
  'camelCase',
  'ünïcødé',
  'ノード',
  'emoji 🐘',
  'dollar$',
  'a$b',
  '$1',
  '1st',
  '42',
  'x1',
  'a.b',
  'semi;colon',
  'tab\there',
  'new\nline',
  'back\\slash',
  'hyphen-ated',
  'select',
  'Select',
  'user',
  'order',
  'name',
  'text',
  'between',
  'x'.repeat(63),
];

describe('quoteIdent and tableLabel', () => {
  const url = () => clusterA().url();

  it('quote every keyword of the server as quote_ident does', async () => {
    const keywords = await query<{ word: string; catcode: string; quoted: string }>(
      url(),
      'SELECT word, catcode, quote_ident(word) AS quoted FROM pg_get_keywords() ORDER BY word',
    );
    expect(keywords.length).toBeGreaterThan(400);
    const mismatches = keywords.filter((k) => quoteIdent(k.word) !== k.quoted);
    expect(mismatches).toEqual([]);
    // every category is there, so the comparison covers both sides of the rule
    expect(new Set(keywords.map((k) => k.catcode))).toEqual(new Set(['U', 'C', 'T', 'R']));
  });

  it('quote odd names as quote_ident does: spaces, quotes, capitals, unicode, $, digits first', async () => {
    const rows = await query<{ name: string; quoted: string }>(
      url(),
      'SELECT n AS name, quote_ident(n) AS quoted FROM unnest($1::text[]) WITH ORDINALITY AS t(n, i) ORDER BY i',
      [oddNames],
    );
    expect(rows.map((r) => [r.name, quoteIdent(r.name)])).toEqual(rows.map((r) => [r.name, r.quoted]));
  });

  it("label schema and table as format('%I.%I') does", async () => {
    const pairs = oddNames.flatMap((schema, i) => [
      { schema_name: schema, table_name: oddNames[(i + 7) % oddNames.length] },
      { schema_name: 'public', table_name: schema },
    ]);
    const rows = await query<{ label: string }>(
      url(),
      "SELECT format('%I.%I', s, t) AS label FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(s, t, i) ORDER BY i",
      [pairs.map((p) => p.schema_name), pairs.map((p) => p.table_name)],
    );
    expect(pairs.map(tableLabel)).toEqual(rows.map((r) => r.label));
    expect(tableLabel({ schema_name: 'public', table_name: 'select' })).toBe('public."select"');
  });
});
