/**
 * Read-only operations read from a replica: a `query` operation's context gets a replica's database (with
 * the request's deadline) and loaders over it, when the replica set has one close enough to the primary
 * (src/db/replicas.ts). Mutations, and so every read of a request that writes, stay on the primary.
 */
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { ReplicaSet } from '../../db/replicas';
import type { GraphQLContext } from '../../graphql/context';
import { createLoaders } from '../../graphql/loaders';
import type { ServerContext } from '../yoga';

export function useReadReplicas(replicas: ReplicaSet): Plugin<GraphQLContext & ServerContext> {
  return {
    onExecute({ args, extendContext }) {
      if (getOperationAST(args.document, args.operationName)?.operation !== 'query') return;
      const replica = replicas.pick();
      if (!replica) return;
      const { deadline } = args.contextValue;
      const db = deadline ? deadline.database(replica) : replica;
      extendContext({ db, loaders: createLoaders(db) });
    },
  };
}
