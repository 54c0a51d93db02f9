import type { Principal } from '../auth/authenticator';
import type { Database } from '../db/client';
import type { Actor } from '../experiments/service';
import type { AssignmentDeps } from '../assignments/service';
import type { Loaders } from './loaders';

/** Everything a resolver may use; built per request by the HTTP layer. */
export interface GraphQLContext {
  db: Database;
  loaders: Loaders;
  actor: Actor;
  /** Who is calling and with which scopes (every scope, as "anonymous", when auth is off). */
  auth: Principal;
  requestId: string;
  /** Assignment's process-wide parts: configuration cache, remembered assignments, write batching. */
  assignment: AssignmentDeps;
  /** Invoked inside the transaction of every configuration change (cache invalidation). */
  onExperimentChange?: (experimentId: string, tx: import('../db/client').Db) => Promise<void> | void;
  /** Invoked after such a change committed. */
  afterExperimentChange?: () => void;
  /** Change notifications for subscriptions (src/live/updates.ts); null: subscriptions are refused. */
  live: import('../live/updates').LiveUpdates | null;
  /** Webhook secrets' key and address rules (disabled when absent). */
  webhooks?: import('../config').WebhookConfig;
}
