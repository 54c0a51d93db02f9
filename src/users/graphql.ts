/** Media Gateway users, with the experiments they are in. */
import { parse, uuid } from '../common/validation';
import { AssignmentRef, storedAssignment } from '../assignments/graphql';
import { builder } from '../graphql/builder';
import type { UserRow } from './repository';

const UserRef = builder.objectRef<UserRow>('User').implement({
  authScopes: { read: true },
  description: 'A Media Gateway user. Its id is the unit id used for assignment.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The user’s UUID; pass it as `userId` to assignVariant.' }),
    username: t.exposeString('username', { description: 'Unique handle in the Media Gateway.' }),
    email: t.exposeString('email', { description: 'Contact address (personal data: do not log it).' }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When the account was created.',
      resolve: (u) => u.createdAt,
    }),
    assignments: t.field({
      type: [AssignmentRef],
      description: 'Stored assignments of this user, newest first.',
      resolve: async (u, _a, ctx) => {
        const rows = await ctx.loaders.assignmentsByUserId.load(u.id);
        return Promise.all(rows.map((row) => storedAssignment(ctx, row)));
      },
    }),
  }),
});

builder.queryField('user', (t) =>
  t.field({
    type: UserRef,
    nullable: true,
    authScopes: { read: true },
    description: 'A Media Gateway user with their experiment assignments; null when no user has this id.',
    args: { id: t.arg.id({ required: true, description: 'The user’s UUID.' }) },
    resolve: (_r, { id }, ctx) => ctx.loaders.userById.load(parse(uuid('id'), id, ['id'])),
  }),
);
