# syntax=docker/dockerfile:1
# One image for the whole system: the six service binaries, the web face (xiaoneng-web),
# the operator tool (xiaoneng-admin)
# and the catalog loader (xiaoneng-catalog-load) with the starter catalog. The chart runs each
# component with its own command. Build: docker build -t <registry>/xiaoneng:<tag> .
#
# Stage 1 plans the dependency build from the manifests only (cargo-chef), stage 2 builds the
# dependencies alone (a layer that changes only with Cargo.lock), stage 3 builds the workspace.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS chef
# protoc and the well-known types for the contract, cmake for librdkafka (bundled build).
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev cmake libcurl4-openssl-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /build

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bins \
      -p xiaoneng-catalog -p xiaoneng-queue -p xiaoneng-case -p xiaoneng-evaluation \
      -p xiaoneng-complaint -p xiaoneng-accountability -p xiaoneng-web -p xiaoneng-kit \
 && mkdir -p /out \
 && cp target/release/xiaoneng-catalog target/release/xiaoneng-catalog-load target/release/xiaoneng-queue \
       target/release/xiaoneng-case target/release/xiaoneng-evaluation target/release/xiaoneng-complaint \
       target/release/xiaoneng-accountability target/release/xiaoneng-web target/release/xiaoneng-admin /out/

FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libcurl4 tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 xiaoneng \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin xiaoneng
COPY --from=builder /out/ /usr/local/bin/
COPY services/catalog/data/starter/ /usr/share/xiaoneng/catalog/
ENV XIAONENG_ENV=production \
    XIAONENG__TELEMETRY__LOG_FORMAT=json \
    TZ=Asia/Shanghai
USER 10001:10001
EXPOSE 50051-50056 51051-51056
# Each component's command is set by the chart (xiaoneng-<service>); the image alone runs nothing.
ENTRYPOINT []
CMD ["xiaoneng-admin", "--help"]
