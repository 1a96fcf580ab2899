# The api and worker image (infra/ deploys it on ECS Fargate). One image, two commands:
#   docker build -t autovibe .
#   docker run autovibe                     # the api: npm run api
#   docker run autovibe npm run worker      # a worker
# Both need DATABASE_URL and TEMPORAL_ADDRESS (README "Temporal connection" for TLS and API keys).
FROM node:20-bookworm-slim

# git: project repositories and remotes; ca-certificates: TLS to Temporal, AWS and model providers.
RUN apt-get update \
  && apt-get install -y --no-install-recommends git ca-certificates tar \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only (tsx runs the TypeScript sources; Pulumi and the test tools stay out).
RUN npm ci --omit=dev && npm cache clean --force

COPY . .
RUN mkdir -p /var/lib/autovibe && chown node:node /var/lib/autovibe

ENV NODE_ENV=production \
    AUTOVIBE_HOME=/var/lib/autovibe \
    HOST=0.0.0.0 \
    PORT=3000
USER node
EXPOSE 3000
CMD ["npm", "run", "api"]
