// What makes two servers' hashes comparable: the same session settings on
// both (values that reach the hash or the key text as text come out the
// same), and a canary: one typed row hashed on each must give the same
// number, else the servers hash values differently (another build, another
// byte order) and no comparison of theirs can be trusted.
import { Client } from 'pg';
import { VerifyError } from './errors';

// One side of a comparison: a session and how messages name it.
export interface Side {
  client: Client;
  // "node b", "peer a"
  name: string;
}

const settings: Array<[string, string]> = [
  ['TimeZone', 'UTC'],
  ['DateStyle', 'ISO'],
  ['IntervalStyle', 'postgres'],
  ['extra_float_digits', '1'],
  ['bytea_output', 'hex'],
  // pass 1 groups by width_bucket, whose groups the planner overestimates
  // (about one per row): it would sort whole rows to disk rather than hash
  // the few thousand buckets. Sorts still happen where nothing else can.
  ['enable_sort', 'off'],
];

export async function prepareSession(client: Client): Promise<void> {
  await client.query(`SELECT ${settings.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ')}`, settings.flat());
}

// Every kind of value the hash treats in its own way: integers of each
// width, numeric with trailing zeros, text beyond ASCII, a timestamp with
// time zone, floats, bytea, uuid, date, interval, an array, jsonb.
const canarySql = `
  SELECT hash_record_extended(ROW(1::int2, 2::int4, 3::int8, 3000.00::numeric, 'steep ü ✓'::text, 'v'::varchar(4),
                                  '2024-02-29 12:34:56.789+05'::timestamptz, '2024-02-29 12:34:56'::timestamp, true,
                                  1.5::float8, 2.25::float4, '\\x01ff'::bytea, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
                                  '2024-01-01'::date, '1 day 02:03:04'::interval, ARRAY[1, NULL, 3]::int[], '{"a": [1, "b"]}'::jsonb,
                                  NULL::text), 0)::text AS hash`;

export async function checkHashCanary(a: Side, b: Side): Promise<void> {
  const [ha, hb] = await Promise.all([a, b].map(async (s) => (await s.client.query(canarySql)).rows[0].hash as string));
  if (ha !== hb) {
    throw new VerifyError(
      `the servers hash values differently: the same row hashes to ${ha} on ${a.name} and to ${hb} on ${b.name}`,
      'their contents cannot be compared by hashes; compare them another way (e.g. pg_dump of the tables)',
    );
  }
}
