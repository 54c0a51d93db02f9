# syntax=docker/dockerfile:1
# The server runs from TypeScript source through tsx (a runtime dependency), so there is no build
# step: one stage installs production dependencies, the final stage adds the source and drops root.

FROM node:20-bookworm-slim AS base
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

FROM base AS deps
COPY package.json package-lock.json ./
# Production dependencies only: dev tools (jest, swc, drizzle-kit, testcontainers) stay out of the image.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev

FROM base AS runtime
ENV NODE_ENV=production \
    PORT=4000 \
    HOST=0.0.0.0
COPY --from=deps /app/node_modules ./node_modules
# Source, migrations (drizzle/) and seed data; .dockerignore keeps tests, .git and local data out.
# Owned by root and read-only to the app; only .data/ (embedded PGlite when DATABASE_URL is unset)
# is writable.
COPY . .
RUN mkdir -p .data && chown node:node .data
USER node
EXPOSE 4000
CMD ["node", "--import", "tsx", "src/main.ts"]
