# The zt-mesh proxy image. The build context is the repository root, since the
# proxy depends on the config package (packages/proxy-config) by name:
#   docker build -t ghcr.io/zt-mesh/proxy:<version in proxy/package.json> .
# The base image is pinned by tag to the same Node as the repo's dev toolchain
# (the `node` devDependency of the root package.json); a test keeps them equal.

FROM node:24.21.0-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages/proxy-config/package.json packages/proxy-config/tsconfig.json packages/proxy-config/
COPY proxy/package.json proxy/tsconfig.json proxy/
# Only the proxy's workspaces: the Pulumi program's dependencies stay out.
RUN npm ci --workspace zt-mesh-proxy --workspace @zt-mesh/proxy-config --ignore-scripts --no-audit --no-fund
COPY packages/proxy-config/src packages/proxy-config/src
COPY proxy/src proxy/src
RUN npm run build

FROM node:24.21.0-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/proxy-config/package.json packages/proxy-config/
COPY proxy/package.json proxy/
# Production dependencies only: TypeScript is a dev dependency that the lock also
# marks optional (an optional peer of @pulumi/pulumi), hence both omits.
RUN npm ci --omit=dev --omit=optional --workspace zt-mesh-proxy --workspace @zt-mesh/proxy-config --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/packages/proxy-config/dist packages/proxy-config/dist
COPY --from=build /src/proxy/dist proxy/dist
WORKDIR /app/proxy
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 4140 4141 9990
# The V8 flags are the DaemonSet's too (PROXY_COMMAND in components/proxy-daemonset.ts).
ENTRYPOINT ["node", "--max-semi-space-size=4", "dist/main.js"]
