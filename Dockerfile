# syntax=docker/dockerfile:1
#
# aggregate-features-daily: the nightly batch job as a container image.
#
#   docker build -t REGISTRY/aggregate-features-daily:$(node -p "require('./package.json').version") .
#
# Three stages: `build` compiles TypeScript with the dev dependencies and packs the package with
# `npm pack` (so the image holds exactly what the published package holds: dist/, migrations/,
# package.json); `production-deps` installs that package's production dependencies from the
# lockfile; `runtime` copies the result onto a clean slim Node image, owned by root and run as an
# unprivileged numeric user, so a read-only root filesystem works and the code cannot be
# changed by the process that runs it. test/deploy/package.test.ts replays the first two stages
# without a Docker engine.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build \
 && npm pack --pack-destination /tmp \
 && mkdir /package \
 && tar -xzf /tmp/aggregate-features-daily-*.tgz -C /package --strip-components=1

FROM ${NODE_IMAGE} AS production-deps
WORKDIR /app
COPY --from=build /package/ ./
COPY package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: node running as PID 1 ignores SIGTERM (no default handler for init), so without
# it a Job's pod would only stop at the end of terminationGracePeriodSeconds, by SIGKILL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=production-deps /app ./
# The `node` user of the base image, by number so that Kubernetes' runAsNonRoot can check it.
USER 1000:1000
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli.js"]
