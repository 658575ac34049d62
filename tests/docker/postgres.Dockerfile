# A stand-in for postgres:15-alpine from Debian's postgresql-15, for a
# machine without a registry: it honours the official image's
# POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB, keeps its data in
# /var/lib/postgresql/data, listens on 5432 and passes `command:` arguments
# to postgres, and has pg_isready for the health check.
FROM booking-lab-local/debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
