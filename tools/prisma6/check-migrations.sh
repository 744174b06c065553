#!/usr/bin/env bash
# Fails (exit 1, printing the missing SQL) when prisma/schema.prisma and prisma/migrations disagree,
# i.e. someone changed the schema without adding a migration, or edited a migration by hand.
#   DIRECT_DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:5433/postgres tools/prisma6/check-migrations.sh
# Needs a direct URL to a server where the role may CREATE DATABASE (for the shadow database); it does
# not change the database the URL names.
set -euo pipefail
cd "$(dirname "$0")"
source ./common.sh
use_direct_url
write_prisma6_schema
sql=$(pending_sql)
if ! is_empty_migration "$sql"; then
  echo "prisma/schema.prisma and prisma/migrations disagree. A new migration would contain:" >&2
  printf '%s\n' "$sql" >&2
  echo "Create it with tools/prisma6/new-migration.sh <name>." >&2
  exit 1
fi
echo "prisma/migrations matches prisma/schema.prisma."
