/**
 * The floor of the head-to-head read scenario: each read's rows as ONE hand-written SQL statement that
 * builds the JSON answer in PostgreSQL, behind a bare node:http handler (no GraphQL, no auth, no
 * validation). What is left is the round trip, PostgreSQL's work and the socket: the limit any GraphQL
 * server over the same database approaches. Started by the harness (`node --import tsx
 * bench/peers/floor.ts`, DATABASE_URL + PORT); never part of the product.
 */
import { createServer, type IncomingMessage } from 'node:http';
import postgres from 'postgres';

const connectionString = process.env.DATABASE_URL;
const port = Number(process.env.PORT);
if (!connectionString || !port) throw new Error('floor peer: DATABASE_URL and PORT are required');

const sql = postgres(connectionString, { max: 20, onnotice: () => {} });
let statements = 0;

const variantsOf = (fields: string) => `(
  SELECT coalesce(json_agg(json_build_object(${fields}) ORDER BY v.position, v.id), '[]')
    FROM experiment_variants v WHERE v.experiment_id = e.id)`;

/** One statement per read, named as the service names its raw SQL; $1 is `first` or the key. */
const READS: Record<string, string> = {
  '/list': `/* floorList */
    SELECT json_build_object('experiments', coalesce(json_agg(json_build_object(
             'id', e.id, 'key', e.key, 'name', e.name, 'status', upper(e.status::text),
             'variants', ${variantsOf(`'id', v.id, 'name', v.name, 'weight', v.weight`)})
           ORDER BY e.created_at DESC, e.id DESC), '[]'))::text AS body
      FROM (SELECT * FROM experiments ORDER BY created_at DESC, id DESC LIMIT $1::int) e`,
  '/dashboard': `/* floorDashboard */
    SELECT json_build_object(
             'totalCount', (SELECT count(*) FROM experiments WHERE status = 'running'),
             'experiments', coalesce(json_agg(json_build_object(
               'id', e.id, 'key', e.key, 'name', e.name, 'status', upper(e.status::text),
               'assignmentCount', (SELECT count(*) FROM experiment_assignments a WHERE a.experiment_id = e.id),
               'variants', (SELECT coalesce(json_agg(json_build_object(
                    'id', s.variant_id, 'name', s.variant_name, 'weight', v.weight, 'isControl', v.is_control,
                    'metrics', json_build_object('exposures', s.exposures, 'uniqueUsers', s.unique_users,
                      'conversions', s.conversions, 'conversionRate', s.conversion_rate))), '[]')
                  FROM get_experiment_summary(e.id) s JOIN experiment_variants v ON v.id = s.variant_id))
             ORDER BY e.created_at DESC, e.id DESC), '[]'))::text AS body
      FROM (SELECT * FROM experiments WHERE status = 'running'
             ORDER BY created_at DESC, id DESC LIMIT $1::int) e`,
  '/experiment': `/* floorExperiment */
    SELECT json_build_object('experiment', (SELECT json_build_object(
             'id', e.id, 'key', e.key, 'name', e.name, 'status', upper(e.status::text),
             'variants', ${variantsOf(`'id', v.id, 'name', v.name, 'weight', v.weight, 'isControl', v.is_control, 'config', v.config`)},
             'auditLog', (SELECT coalesce(json_agg(json_build_object('id', a.id, 'action', a.action,
                    'actor', a.actor, 'createdAt', a.created_at, 'details', a.details)
                    ORDER BY a.created_at DESC, a.id DESC), '[]')
                  FROM (SELECT * FROM audit_log a WHERE a.entity_id = e.id
                         ORDER BY a.created_at DESC, a.id DESC LIMIT 20) a))
           FROM experiments e WHERE e.key = $1::text))::text AS body`,
};

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const server = createServer(async (req, res) => {
  try {
    if (req.url === '/__statements' || req.url === '/readyz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ statements }));
      return;
    }
    const statement = READS[req.url ?? ''];
    if (!statement || req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    const { arg } = JSON.parse(await readBody(req)) as { arg: string | number };
    statements++;
    const [row] = await sql.unsafe<{ body: string }[]>(statement, [arg], { prepare: true });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"data":${row.body}}`);
  } catch (error) {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ message: String(error) }] }));
  }
});
server.listen(port, '127.0.0.1');
const stop = () => {
  server.close();
  void sql.end({ timeout: 5 }).finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
