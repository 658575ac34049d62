# Multi-stage build of the booking service.
#
# Stage 1 compiles the dependencies against empty crates first (the
# workspace's three: the command, server/ and lab/), so that layer is cached
# until a Cargo.toml or Cargo.lock changes; editing the code only rebuilds
# the workspace's own crates. It builds with the classic builder and with
# BuildKit alike. The base images are build arguments, so a machine without a
# registry can build from local ones (tests/docker does): the defaults are
# the official images.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
# protoc: the etcd client compiles etcd's protobuf definitions.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler >/dev/null \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY server/Cargo.toml server/Cargo.toml
COPY lab/Cargo.toml lab/Cargo.toml
RUN mkdir -p src server/src lab/src && echo 'fn main() {}' > src/main.rs \
    && touch server/src/lib.rs lab/src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src server/src lab/src
COPY migrations migrations
# The seat map page, compiled into the binary (server/src/http/ui.rs).
COPY ui ui
COPY src src
COPY server/src server/src
COPY lab/src lab/src
# New mtimes, so cargo rebuilds the crates themselves over the empty ones.
RUN touch src/main.rs server/src/lib.rs lab/src/lib.rs && cargo build --release --locked

# Stage 2: a small runtime image, running as a non-root user.
FROM ${RUNTIME_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin booking
COPY --from=build /src/target/release/booking-service /usr/local/bin/booking-service
# The CA roots, so an https:// OTLP endpoint can be verified (rustls reads
# the system's bundle).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
USER booking
# The health check asks HEALTHCHECK_ADDR: set it with LISTEN_ADDR when the
# replica listens elsewhere (with host networking, say).
ENV LISTEN_ADDR=0.0.0.0:8080 HEALTHCHECK_ADDR=127.0.0.1:8080
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
    CMD ["booking-service", "healthcheck"]
ENTRYPOINT ["booking-service"]
CMD ["serve"]
