# The Dockerfile's builder without a registry: Debian 12 with gcc and the
# host's Rust 1.95 toolchain (scripts/docker-bases.sh copies it in).
FROM booking-lab-local/debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null \
    && rm -rf /var/lib/apt/lists/*
COPY rust /usr/local/rust
ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:$PATH CARGO_HOME=/usr/local/cargo
RUN rustc --version && cargo --version
