# Shared by the scripts of tools/prisma6 (sourced, not run). They need a DIRECT PostgreSQL URL, never
# the pooler: `migrate diff --from-migrations` replays the committed migrations into a throwaway
# shadow database (the role needs CREATEDB), and Prisma Migrate holds a session advisory lock.

MIGRATIONS=../../prisma/migrations
# The schema to compare with the migrations; tests point it at a modified copy.
SCHEMA=${SCHEMA:-../../prisma/schema.prisma}

# DATABASE_URL is never taken: in this project it names the pooler.
use_direct_url() {
  DATABASE_URL=${DIRECT_DATABASE_URL:-${POSTGRES_DATABASE_URL:-}}
  if [ -z "$DATABASE_URL" ]; then
    echo "set DIRECT_DATABASE_URL to a direct PostgreSQL URL (not the pooler), e.g. with npm start's:" >&2
    echo "  DIRECT_DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:5433/postgres" >&2
    exit 1
  fi
  export DATABASE_URL
  if [ ! -x node_modules/.bin/prisma ]; then
    echo "tools/prisma6 is not installed: run npm ci --prefix tools/prisma6" >&2
    exit 1
  fi
}

# Prisma 6 requires `url` in the datasource block and Prisma 7 forbids it: derive a Prisma 6 copy.
# engineType = "client" stops Prisma 6 from downloading its query-engine library.
write_prisma6_schema() {
  sed -E \
    -e 's/^([[:space:]]*provider[[:space:]]*=[[:space:]]*"postgresql".*)$/\1\n  url = env("DATABASE_URL")/' \
    -e 's/^([[:space:]]*provider[[:space:]]*=[[:space:]]*"prisma-client(-js)?".*)$/\1\n  engineType = "client"/' \
    "$SCHEMA" >.schema.prisma
}

# The SQL that takes the committed migrations to schema.prisma ("-- This is an empty migration." if none).
# The WASM engine starts a first migration with CREATE SCHEMA "public", which fails for roles without
# CREATE on the database and which Prisma's native engine does not emit: drop it.
pending_sql() {
  local from
  if compgen -G "$MIGRATIONS/*/migration.sql" >/dev/null; then from=(--from-migrations "$MIGRATIONS"); else from=(--from-empty); fi
  node_modules/.bin/prisma migrate diff "${from[@]}" --to-schema-datamodel .schema.prisma --script |
    sed '/^-- CreateSchema$/d; /^CREATE SCHEMA IF NOT EXISTS "public";$/d' | sed '/./,$!d'
}

is_empty_migration() {
  [ -z "$1" ] || [ "$1" = "-- This is an empty migration." ]
}
