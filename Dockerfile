# syntax=docker/dockerfile:1
#
# Container images of sealed-secrets-rs.
#
#   docker build -t ghcr.io/sealed-secrets-rs/controller:0.1.0 .                  # the controller (default target)
#   docker build --target kubeseal -t ghcr.io/sealed-secrets-rs/kubeseal:0.1.0 .  # the kubeseal CLI
#
# Both run as the non-root user 1001 on distroless (glibc, CA certificates, no shell), like
# upstream's images; the Helm chart (charts/sealed-secrets) and deploy/controller.yaml expect that.

ARG RUST_VERSION=1.89
ARG DEBIAN_RELEASE=bookworm

# ---- build ----
FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
# aws-lc-sys (the crypto library behind aws-lc-rs) is built by the `cc` crate: it needs a C
# compiler and make, not cmake. The rust image has gcc and make already; install them anyway in
# case a slimmer base is used.
RUN set -eux; \
    if ! command -v cc > /dev/null || ! command -v c++ > /dev/null || ! command -v make > /dev/null; then \
      apt-get update; \
      apt-get install -y --no-install-recommends gcc g++ libc6-dev make; \
      rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
# .cargo/config.toml carries build settings the binaries need (AWS_LC_SYS_NO_JITTER_ENTROPY:
# seed aws-lc's DRBG from getrandom() instead of ~45 ms of CPU jitter per process).
COPY Cargo.toml Cargo.lock ./
COPY .cargo/ .cargo/
COPY core/ core/
COPY template/ template/
COPY cli/ cli/
COPY controller/ controller/
COPY process/ process/
COPY sync/ sync/
COPY sync-testing/ sync-testing/
COPY gitops/ gitops/
COPY tests/ tests/
COPY xtask/ xtask/
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eux; \
    cargo build --release --locked -p sealed-secrets-controller -p sealed-secrets-cli -p sealed-secrets-gitops; \
    mkdir -p /out; \
    cp target/release/controller target/release/kubeseal target/release/gitops-controller /out/; \
    /out/controller --version; \
    /out/kubeseal --version; \
    /out/gitops-controller --version

# ---- kubeseal CLI: docker build --target kubeseal ----
FROM gcr.io/distroless/cc-debian12:nonroot AS kubeseal
LABEL org.opencontainers.image.title="kubeseal (sealed-secrets-rs)" \
      org.opencontainers.image.description="Seals Kubernetes Secrets into SealedSecrets (drop-in for Bitnami's kubeseal)" \
      org.opencontainers.image.source="https://github.com/sealed-secrets-rs/sealed-secrets-rs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/kubeseal /usr/local/bin/kubeseal
USER 1001:1001
ENTRYPOINT ["kubeseal"]

# ---- gitops-controller with its tools: docker build --target controller-gitops ----
# `gitops-controller` runs `git` to fetch repositories and `kubectl kustomize` to build
# overlays, which distroless does not have. kubectl comes from the Kubernetes project's own image.
# The image carries both binaries (the chart runs `gitops-controller` from it); the sealing
# controller itself stays on the distroless image below.
FROM registry.k8s.io/kubectl:v1.33.4 AS kubectl
FROM docker.io/library/debian:${DEBIAN_RELEASE}-slim AS controller-gitops
LABEL org.opencontainers.image.title="sealed-secrets-rs gitops-controller (with git and kubectl)" \
      org.opencontainers.image.source="https://github.com/sealed-secrets-rs/sealed-secrets-rs" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends git openssh-client ca-certificates; \
    rm -rf /var/lib/apt/lists/*
COPY --from=kubectl /bin/kubectl /usr/local/bin/kubectl
COPY --from=builder /out/controller /out/gitops-controller /usr/local/bin/
USER 1001:1001
EXPOSE 8080 8081
ENTRYPOINT ["gitops-controller"]

# ---- controller (default target) ----
FROM gcr.io/distroless/cc-debian12:nonroot AS controller
LABEL org.opencontainers.image.title="sealed-secrets-rs controller" \
      org.opencontainers.image.description="Unseals SealedSecrets into Secrets (drop-in for Bitnami's sealed-secrets-controller)" \
      org.opencontainers.image.source="https://github.com/sealed-secrets-rs/sealed-secrets-rs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/controller /usr/local/bin/controller
USER 1001:1001
# 8080: HTTP API (/healthz, /v1/cert.pem, /v1/verify, /v1/rotate); 8081: /metrics.
EXPOSE 8080 8081
ENTRYPOINT ["controller"]
