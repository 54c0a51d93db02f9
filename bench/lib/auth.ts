/** The bench's API key: made with the project's own key service in the bench database (admin scope). */
import { createApiKey } from '../../src/auth/service';
import type { DatabaseHandle } from '../../src/db/client';

export async function createBenchKey(handle: DatabaseHandle): Promise<string> {
  const { key } = await createApiKey(handle.db, 'npm run bench', { name: 'bench', scopes: ['admin'] });
  return key;
}
