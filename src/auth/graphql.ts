/** API key management for admins. The key itself is shown once, in the createApiKey result. */
import { ConflictError, NotFoundError, ValidationError } from '../common/errors';
import { LIMITS } from '../config';
import { builder } from '../graphql/builder';
import { enumValues } from '../graphql/enums';
import type { InputFieldsOf } from '../graphql/input';
import type { ApiKeyInfo } from './repository';
import { SCOPES } from './scopes';
import { type CreateApiKeyInput as CreateInput, createApiKey, listApiKeys, revokeApiKey } from './service';

const SCOPE_HELP: Record<(typeof SCOPES)[number], string> = {
  read: 'Queries: experiments, results, assignments (dashboards).',
  assign: 'assignVariant and record* mutations (client services).',
  write: 'Create, change and run experiments; implies read.',
  admin: 'Manage API keys; implies every other scope.',
};

const ScopeEnum = builder.enumType('Scope', {
  description:
    'read: queries (dashboards). assign: assignVariant and record* (client services). write: experiment management (implies read). admin: API keys (implies all).',
  values: enumValues(SCOPES, SCOPE_HELP),
});

const ApiKeyRef = builder.objectRef<ApiKeyInfo>('ApiKey').implement({
  authScopes: { admin: true },
  description: 'An API key’s metadata. The secret is never stored or shown again after creation.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable id; revoke by it.' }),
    name: t.exposeString('name', { description: 'Appears as the actor in the audit log.' }),
    prefix: t.exposeString('prefix', { description: 'The first characters of the key, to recognise it.' }),
    scopes: t.field({
      type: [ScopeEnum],
      description: 'Scopes as granted (implied ones not listed).',
      resolve: (k) => k.scopes as (typeof SCOPES)[number][],
    }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When the key was created.',
      resolve: (k) => k.createdAt,
    }),
    lastUsedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'Updated at most once a minute.',
      resolve: (k) => k.lastUsedAt,
    }),
    revokedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'Set once revoked; a revoked key is refused.',
      resolve: (k) => k.revokedAt,
    }),
  }),
});

const CreatedRef = builder.objectRef<{ key: string; apiKey: ApiKeyInfo }>('CreateApiKeySuccess').implement({
  authScopes: { admin: true },
  description: 'The new key. Copy `key` now: only its hash is stored.',
  fields: (t) => ({
    key: t.exposeString('key', { description: 'Send as `Authorization: Bearer <key>`.' }),
    apiKey: t.field({ type: ApiKeyRef, description: 'The stored metadata.', resolve: (r) => r.apiKey }),
  }),
});

const CreateApiKeyInput = builder.inputRef<CreateInput, false>('CreateApiKeyInput').implement({
  description: 'A new API key.',
  fields: (t) =>
    ({
      name: t.string({
        required: true,
        description: `Unique among active keys, e.g. "dashboard" or "sona-recommender"; letters, digits, spaces and \`_ . @ -\`, at most ${LIMITS.apiKeyNameMaxLength} characters.`,
      }),
      scopes: t.field({ type: [ScopeEnum], required: true, description: 'At least one scope.' }),
    }) satisfies InputFieldsOf<CreateInput>,
});

builder.queryField('apiKeys', (t) =>
  t.field({
    type: [ApiKeyRef],
    authScopes: { admin: true },
    description: 'API keys, oldest first.',
    args: { includeRevoked: t.arg.boolean({ required: false, description: 'Also list revoked keys.' }) },
    resolve: (_r, { includeRevoked }, ctx) => listApiKeys(ctx.db, includeRevoked ?? false),
  }),
);

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreatedRef,
    description: 'Creates an API key and returns it once.',
    authScopes: { admin: true },
    errors: { types: [ValidationError, ConflictError] },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true, description: 'Name and scopes.' }) },
    resolve: (_r, { input }, ctx) => createApiKey(ctx.db, ctx.auth.name, input),
  }),
  revokeApiKey: t.field({
    type: ApiKeyRef,
    authScopes: { admin: true },
    description: 'Revokes a key at once on every instance.',
    errors: { types: [ValidationError, NotFoundError] },
    args: { id: t.arg.id({ required: true, description: 'The key’s id (see apiKeys).' }) },
    resolve: (_r, { id }, ctx) => revokeApiKey(ctx.db, ctx.auth.name, { id }),
  }),
}));

const ViewerRef = builder
  .objectRef<{ name: string; scopes: Set<(typeof SCOPES)[number]> }>('Viewer')
  .implement({
    // Any accepted key may know itself.
    authScopes: { read: true, assign: true, write: true, admin: true },
    description: 'The caller as the server sees it: which key, with which scopes (implied ones included).',
    fields: (t) => ({
      name: t.exposeString('name', {
        description: 'The key’s name (the audit actor); "anonymous" when the server requires no key.',
      }),
      scopes: t.field({
        type: [ScopeEnum],
        description:
          'Every scope the key holds, implied ones included (a `write` key lists `read` too). A dashboard shows its management actions only with `write`.',
        resolve: (v) => SCOPES.filter((s) => v.scopes.has(s)),
      }),
    }),
  });

builder.queryField('viewer', (t) =>
  t.field({
    type: ViewerRef,
    authScopes: { read: true, assign: true, write: true, admin: true },
    description:
      'Who is calling: open to any accepted key (no scope needed), so a client can tell what it may show before asking for it.',
    resolve: (_r, _a, ctx) => ({ name: ctx.auth.name, scopes: ctx.auth.scopes }),
  }),
);
