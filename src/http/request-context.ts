import { AsyncLocalStorage } from 'node:async_hooks';

/** Per-request values every log line and masked error can reach without threading them through calls. */
export interface RequestStore {
  requestId: string;
  /** The GraphQL operation's name once it runs (null: anonymous; undefined: none ran, or not GraphQL). */
  operation?: string | null;
}

export const requestContext = new AsyncLocalStorage<RequestStore>();

export const currentRequestId = () => requestContext.getStore()?.requestId;
