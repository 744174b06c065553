#!/bin/sh
# Stand-in for Prisma's native schema engine, which cannot be downloaded on offline machines.
# It lets `prisma generate` run and makes any migrate command fail loudly (never /bin/true:
# with it `prisma migrate deploy` applies nothing and exits 0). Use `npm run migrate` instead.
echo "schema-engine is not available on this machine; use npm run migrate" >&2
exit 1
