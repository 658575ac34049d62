# A stand-in for quay.io/coreos/etcd:v3.5.17 from Debian's etcd-server and
# etcd-client (3.4), for a machine without a registry: `command:` runs etcd
# with its flags as in the official image, and etcdctl is there for the
# health check.
FROM booking-lab-local/debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server etcd-client >/dev/null \
    && rm -rf /var/lib/apt/lists/*
CMD ["etcd"]
