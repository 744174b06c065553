# One image for both the app and the pooler: docker-compose.yaml runs it twice with different commands
# (which is also why there is no HEALTHCHECK here: compose defines one per service).

# ---- build: all dependencies, the generated Prisma client, TypeScript compiled to dist/
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the postinstall (prisma generate) needs the sources, copied below, and nothing
# else is needed to build (PostgreSQL binaries for `npm start`, Prisma's engine download, tsx's esbuild).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run generate && npm run build

# ---- runtime: production dependencies and the compiled code, run as an unprivileged user
FROM node:24.21.0-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional leaves out the 56 MB of PostgreSQL binaries that only `npm start` uses; the
# postinstall would run prisma generate, a dev dependency: the client is already compiled into dist/.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY views ./views
COPY app/public ./app/public
# migrations for `node dist/scripts/migrate.js` (the Prisma CLI, a dev dependency, is not in the image)
COPY prisma ./prisma
USER node
EXPOSE 8000
CMD ["node", "dist/app/server.js"]
