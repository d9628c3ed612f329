# syntax=docker/dockerfile:1
#
# bitbucket-sidecar: build once, run as an unprivileged user with production dependencies only.
#   docker build -t bitbucket-sidecar .
#   docker run --rm -p 8080:8080 -p 443:443 bitbucket-sidecar            # demo mode
#   docker run ... bitbucket-sidecar serve --config /etc/bitbucket-sidecar/config.yaml
#
# Port 443 as a non-root user: Docker (>= 20.10) sets net.ipv4.ip_unprivileged_port_start=0 in every
# container's network namespace, so any user may bind 443 there. compose.yaml sets the same sysctl
# explicitly (older engines, Podman) and drops every capability. See docs/deployment.md "Run with Docker Compose".

ARG NODE_IMAGE=node:24-bookworm-slim

# --- toolchain: native modules (better-sqlite3, the webhook queue) download a prebuilt binary when
# one exists for this Node and platform, and are compiled by node-gyp otherwise.
FROM ${NODE_IMAGE} AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./

# --- deps: production dependencies only; the runtime stage takes this node_modules as it is --------
FROM toolchain AS deps
RUN npm ci --omit=dev --no-audit --no-fund

# --- build: dev dependencies, TypeScript → dist/ -------------------------------------------------
FROM toolchain AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime ------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# git: the demo's embedded Bitbucket serves real repositories, and git mirrors need it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# uid 10001, not 1000: the Jenkins image runs as 1000 and mounts the TLS directory read-only; a
# different uid keeps the private keys there (mode 0600) unreadable to Jenkins. The TLS directory
# itself is 0755 so that Jenkins can read the public trust exports (ca.pem, ca-bundle.pem, truststore.p12).
RUN groupadd --system --gid 10001 sidecar \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/bitbucket-sidecar --no-create-home --shell /usr/sbin/nologin sidecar \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/bitbucket-sidecar \
 && install -d -o 10001 -g 10001 -m 0755 /var/lib/bitbucket-sidecar/tls
WORKDIR /app
# NODE_OPTIONS bounds V8's heap for the default cache.maxBytes (256 MiB): 4 MiB semi-spaces (the young
# generation; Node's default is 16 MiB each) and an old space of 64 MiB + cache.maxBytes. An old-space
# bound under ~512 MiB also makes V8 grow its heap by ~1.3× the live data rather than up to 4×. With
# another cache.maxBytes, set --max-old-space-size=<64 + cache.maxBytes in MiB> (docs/configuration.md,
# Memory).
# MALLOC_MMAP_THRESHOLD_ keeps glibc's threshold for serving an allocation from mmap at its default
# 128 KiB: by default glibc raises it to the size of each large block freed, after which large
# transient buffers come from the main heap and leave holes it does not return (RSS after the memory
# benchmark's fill: 168 → 158 MB, no CPU cost on hits or misses measured).
ENV NODE_ENV=production \
    HOME=/var/lib/bitbucket-sidecar \
    NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=320" \
    MALLOC_MMAP_THRESHOLD_=131072
COPY package.json package-lock.json ./
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 10001:10001
VOLUME ["/var/lib/bitbucket-sidecar"]
EXPOSE 443 8080
# Liveness only (the process answers). compose.yaml uses /_sidecar/ready to hold Jenkins back.
HEALTHCHECK --interval=10s --timeout=4s --start-period=30s --retries=3 \
  CMD ["node", "dist/ops/healthcheck.js", "http://127.0.0.1:8080/_sidecar/health"]
ENTRYPOINT ["node", "dist/main.js"]
CMD ["demo", "--host", "0.0.0.0", "--port", "8080", "--https-port", "443", "--tls-dir", "/var/lib/bitbucket-sidecar/tls"]
