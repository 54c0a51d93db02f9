/**
 * The peer of the head-to-head read scenario: PostGraphile 5 (amber preset + simplify-inflection, grafserv
 * on node:http) over the bench database, in its own process like the real server. Started by the harness
 * (`node --import tsx bench/peers/postgraphile.ts`, DATABASE_URL + PORT); never part of the product.
 *
 * `GET /__statements` answers how many statements its `pg` clients have sent, so the harness counts SQL
 * per request the same way for every contender (the wrap is on pg.Client, which its pool uses).
 */
import './node20';
import { createServer } from 'node:http';
import { PgSimplifyInflectionPreset } from '@graphile/simplify-inflection';
import pg from 'pg';
import { postgraphile } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/node';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { jsonPgSmartTags } from 'postgraphile/utils';

let statements = 0;
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  statements++;
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof query;

const connectionString = process.env.DATABASE_URL;
const port = Number(process.env.PORT);
if (!connectionString || !port) throw new Error('postgraphile peer: DATABASE_URL and PORT are required');

// Audit entries have no foreign key (they outlive a deleted experiment); a virtual one lets
// PostGraphile join them, as a team using it would declare.
const smartTags = jsonPgSmartTags({
  version: 1,
  config: {
    class: {
      audit_log: { tags: { foreignKey: '(entity_id) references experiments (id)|@fieldName entity' } },
    },
  },
});

const preset: GraphileConfig.Preset = {
  extends: [PostGraphileAmberPreset, PgSimplifyInflectionPreset],
  plugins: [smartTags],
  pgServices: [
    makePgService({
      connectionString,
      schemas: ['public'],
      // The same pool size as the service under test (DB_POOL_SIZE=20 in bench/lib/server.ts).
      poolConfig: { max: 20 },
    }),
  ],
  grafserv: { port, graphqlPath: '/graphql', watch: false },
  grafast: { explain: false },
  schema: { exportSchemaSDLPath: undefined },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
// createHandler (not addTo): no websockets needed, and the two bench routes answer before grafserv.
const handler = serv.createHandler();
const server = createServer((req, res) => {
  if (req.url === '/__statements' || req.url === '/readyz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ statements }));
  } else handler(req, res);
});
// Build the schema before answering /readyz, so the first measured request does not pay for it.
await pgl.getSchema();
server.listen(port, '127.0.0.1');
const stop = () => {
  server.close();
  void Promise.resolve(pgl.release()).finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
