#!/usr/bin/env bash
# Any Prisma 6 CLI command on this project, offline, e.g. to see what Prisma's engine makes of the
# migrations `npm run migrate` applied:
#   DIRECT_DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:5433/app tools/prisma6/prisma.sh migrate status
# (`migrate dev` does not work with Prisma 6's WASM engine: use new-migration.sh.)
set -euo pipefail
cd "$(dirname "$0")"
source ./common.sh
use_direct_url
write_prisma6_schema
exec node_modules/.bin/prisma "$@"
