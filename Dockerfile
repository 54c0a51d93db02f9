# syntax=docker/dockerfile:1
# One production path: the image runs exactly what `npm run build` produces (dist/, bundled by esbuild),
# with the production dependencies beside it. The build stage installs everything (its postinstall applies
# patches/ to node_modules with patch-package, a dev dependency), builds, then prunes the dev dependencies;
# the patched, pruned node_modules is what the runtime stage copies, so no install runs twice.

FROM node:20-bookworm-slim AS base
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

FROM base AS build
COPY package.json package-lock.json ./
COPY patches ./patches
RUN --mount=type=cache,target=/root/.npm npm ci
# Sources for the build; .dockerignore keeps tests, .git, dist/ and local data out.
COPY . .
RUN npm run build && npm prune --omit=dev

FROM base AS runtime
ENV NODE_ENV=production \
    PORT=4000 \
    HOST=0.0.0.0
# Owned by root and read-only to the app; only .data/ (embedded PGlite when DATABASE_URL is unset) is
# writable. package.json marks the project root (src/paths.ts), drizzle/ holds the migrations.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/drizzle ./drizzle
RUN mkdir -p .data && chown node:node .data
USER node
EXPOSE 4000
CMD ["node", "dist/main.js"]
