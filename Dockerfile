# geokv node image: builds the TypeScript once, ships dist/ with production
# dependencies only. Every container runs one node; docker-compose.yml says
# which (`geokv node --node <id>`).
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci && npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY regions ./regions
COPY deploy/compose-regions ./compose-regions
VOLUME ["/data"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["node", "--help"]
