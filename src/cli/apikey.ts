/**
 * npm run apikey -- create --name dashboard --scopes read
 * npm run apikey -- list [--all]
 * npm run apikey -- revoke <name|id>
 */
import { isUuid } from '../common/validation';
import { parseArgs } from 'node:util';
import { createApiKey, listApiKeys, revokeApiKey } from '../auth/service';
import { SCOPES } from '../auth/scopes';
import { migrateDatabase } from '../db/migrate';
import { withDatabase } from './common';

const USAGE = `usage:
  npm run apikey -- create --name <name> --scopes <${SCOPES.join('|')}>[,…]
  npm run apikey -- list [--all]
  npm run apikey -- revoke <name|id>`;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { name: { type: 'string' }, scopes: { type: 'string' }, all: { type: 'boolean' } },
});
const [command, target] = positionals;
const actor = `cli:${process.env.USER ?? 'unknown'}`;

await withDatabase(async (handle) => {
  await migrateDatabase(handle);
  if (command === 'create') {
    if (!values.name || !values.scopes) throw new Error(USAGE);
    const { key, apiKey } = await createApiKey(handle.db, actor, {
      name: values.name,
      scopes: values.scopes.split(',').map((s) => s.trim()),
    });
    console.log(`created API key "${apiKey.name}" (${apiKey.scopes.join(', ')}), id ${apiKey.id}`);
    console.log('The key is shown once; store it now:');
    console.log(key);
  } else if (command === 'list') {
    const keys = await listApiKeys(handle.db, values.all ?? false);
    if (keys.length === 0) console.log('no API keys');
    for (const k of keys) {
      console.log(
        [
          k.id,
          k.name.padEnd(20),
          k.prefix,
          k.scopes.join(',').padEnd(22),
          `last used ${k.lastUsedAt?.toISOString() ?? 'never'}`,
          k.revokedAt ? `REVOKED ${k.revokedAt.toISOString()}` : '',
        ].join('  '),
      );
    }
  } else if (command === 'revoke') {
    if (!target) throw new Error(USAGE);
    const uuid = isUuid(target);
    const row = await revokeApiKey(handle.db, actor, uuid ? { id: target } : { name: target });
    console.log(`revoked API key "${row.name}" (${row.id})`);
  } else {
    throw new Error(USAGE);
  }
});
