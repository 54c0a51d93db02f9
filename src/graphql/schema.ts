/** Imports every domain's GraphQL module (each registers its types) and builds the schema once. */
import './errors';
import '../experiments/graphql';
import '../metrics/graphql';
import '../assignments/graphql';
import '../layers/graphql';
import '../events/graphql';
import '../users/graphql';
import '../results/graphql';
import '../results/breakdown-graphql';
import '../auth/graphql';
import '../scheduling/graphql';
import '../webhooks/graphql';
import '../monitoring/graphql';
import '../bandits/graphql';
import '../live/graphql';
import { builder } from './builder';

export const schema = builder.toSchema({ sortSchema: false });
