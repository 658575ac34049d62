# A stand-in for redis:7-alpine from Debian's redis-server (7.0), for a
# machine without a registry: `command:` runs as in the official image
# (redis-server ARGS, protected mode off, as its entrypoint does), on 6379
# on every address, with redis-cli for the health check.
FROM booking-lab-local/debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null \
    && rm -rf /var/lib/apt/lists/*
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
