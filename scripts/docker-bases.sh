#!/usr/bin/env bash
# Local base images, for building and running the lab's containers on a
# machine that reaches Debian's mirror, crates.io and PyPI but no container
# registry (the Docker tests run so). With a registry none of this is
# needed: the Dockerfile and docker-compose.yml name the official images.
#
#   scripts/docker-bases.sh
#
# Builds, when missing (they are kept, so the next run reuses them):
#   booking-lab-local/debian:bookworm   Debian 12 from debootstrap, with this
#                                       machine's CA certificates (cargo and
#                                       pip inside reach the registries)
#   booking-lab-local/rust:1.95         that, plus gcc and this machine's Rust
#                                       1.95 toolchain: the Dockerfile's builder
#   postgres:15-alpine, redis:7-alpine, stand-ins for the official images,
#   quay.io/coreos/etcd:v3.5.17         from Debian's postgresql-15,
#                                       redis-server 7 and etcd-server 3.4,
#                                       honouring the same environment
#                                       (POSTGRES_USER, ...) and commands
# Stand-ins are only tagged where no image of that name exists.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
exists() { docker image inspect "$1" >/dev/null 2>&1; }

command -v docker >/dev/null || die "docker is missing (Debian: apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "no Docker engine answers: start dockerd (as root: dockerd &)"
export DOCKER_BUILDKIT=0 # the classic builder: BuildKit would fetch its frontend image

if ! exists booking-lab-local/debian:bookworm; then
    command -v debootstrap >/dev/null || die "debootstrap is missing (Debian: apt-get install debootstrap)"
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    say "debootstrap bookworm from $mirror"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
        || die "debootstrap failed: see $rootfs.log"
    rm -f "$rootfs.log"
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >/dev/null
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    say "docker import booking-lab-local/debian:bookworm"
    tar -C "$rootfs" -c . | docker import - booking-lab-local/debian:bookworm >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
fi

if ! exists booking-lab-local/rust:1.95; then
    toolchain=$(rustc +1.95 --print sysroot 2>/dev/null || rustc --print sysroot)
    "$toolchain/bin/rustc" --version | grep -q '^rustc 1\.95' || die "Rust 1.95 is needed for the builder image (rustup toolchain install 1.95)"
    context=$(mktemp -d)
    trap 'rm -rf "$context"' EXIT
    mkdir "$context/rust"
    cp -a "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$context/rust/"
    cp "$ROOT/tests/docker/rust.Dockerfile" "$context/Dockerfile"
    say "docker build booking-lab-local/rust:1.95 (this machine's toolchain)"
    docker build -q -t booking-lab-local/rust:1.95 "$context" >/dev/null
    rm -rf "$context"
    trap - EXIT
fi

for standin in postgres:15-alpine redis:7-alpine quay.io/coreos/etcd:v3.5.17; do
    exists "$standin" && continue
    say "docker build $standin (a stand-in from Debian's packages)"
    name=${standin%%:*}
    docker build -q -t "$standin" -f "$ROOT/tests/docker/${name##*/}.Dockerfile" "$ROOT/tests/docker" >/dev/null
done
say "base images ready"
