// target_session_attrs (libpq's, for a [databases] entry; PgBouncer has it in review): which servers
// of a host list are acceptable, the primary after a failover, say, or only standbys. Checked once
// a server has logged in, before any client gets it (whether it is a standby before connect_query,
// whether it is read-only after): PostgreSQL 14 and later report in_hot_standby and
// default_transaction_read_only; with an older server the pooler asks, as libpq does.
import type { ServerConnection } from "./server.ts";

export type TargetSessionAttrs =
  "any" | "read-write" | "read-only" | "primary" | "standby" | "prefer-standby";

export const TARGET_SESSION_ATTRS: readonly TargetSessionAttrs[] = [
  "any",
  "read-write",
  "read-only",
  "primary",
  "standby",
  "prefer-standby",
];

/** A server refused for not being what target_session_attrs asks for: the pool tries another host. */
export class SessionAttrsMismatch extends Error {}

interface ServerRole {
  standby: boolean;
  /** New transactions are read-only by default (a standby's always are). */
  readOnly: boolean;
}

/** The role as PostgreSQL 14+ reports it, at login and whenever it changes (a promotion); null before 14. */
function reportedRole(server: ServerConnection): ServerRole | null {
  const hot = server.params.get("in_hot_standby");
  const readOnly = server.params.get("default_transaction_read_only");
  if (hot === undefined || readOnly === undefined) return null;
  return { standby: hot === "on", readOnly: hot === "on" || readOnly === "on" };
}

async function roleOf(server: ServerConnection): Promise<ServerRole> {
  // both GUC_REPORT from 14 on: a connect_query's SET of either is reported too
  const reported = reportedRole(server);
  if (reported !== null) return reported;
  const [row] = await server.queryInternal(
    "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only')",
  );
  return { standby: row?.[0] === "t", readOnly: row?.[1] === "on" };
}

/** Which part of the check: whether it is a standby (before connect_query), or all of it. */
export type CheckStage = "recovery" | "all";

/**
 * Rejects with SessionAttrsMismatch when `server` is not acceptable. `fallback`: prefer-standby has
 * found no standby on any host, so a primary will do. The "recovery" stage runs before
 * connect_query, which may write (libpq checks before the application runs anything) but cannot
 * make a standby of a primary; read-only-ness, which a connect_query may set, waits for "all".
 */
export async function checkSessionAttrs(
  server: ServerConnection,
  attrs: TargetSessionAttrs,
  fallback: boolean,
  stage: CheckStage = "all",
): Promise<void> {
  if (attrs === "any" || (stage === "recovery" && attrs === "read-only")) return;
  const role = await roleOf(server);
  const mismatch = mismatchOf(role, attrs, fallback, stage);
  if (mismatch !== null) throw new SessionAttrsMismatch(mismatch);
}

function mismatchOf(
  role: ServerRole,
  attrs: TargetSessionAttrs,
  fallback: boolean,
  stage: CheckStage,
): string | null {
  const ok = {
    any: true,
    "read-write": stage === "recovery" ? !role.standby : !role.readOnly,
    "read-only": role.readOnly,
    primary: !role.standby,
    standby: role.standby,
    "prefer-standby": role.standby || fallback,
  }[attrs];
  if (ok) return null;
  const is = role.standby ? "a standby" : role.readOnly ? "read-only" : "a read-write primary";
  return `server is ${is}, target_session_attrs=${attrs}`;
}

/**
 * Why a server that passed the check no longer does, as far as PostgreSQL 14+ has reported (a
 * standby promoted reports in_hot_standby = off to its sessions): null when it still matches, or
 * when the server reports nothing (13 and older; a host's refusal of a new server catches those).
 * Checked as a server comes free, so prefer-standby, which took a primary for want of standbys,
 * keeps it.
 */
export function reportedMismatch(server: ServerConnection, attrs: TargetSessionAttrs): string | null {
  const role = attrs === "any" ? null : reportedRole(server);
  return role === null ? null : mismatchOf(role, attrs, true, "all");
}

/** Whether the check must run again once connect_query has run (it may SET default_transaction_read_only). */
export function recheckAfterConnectQuery(attrs: TargetSessionAttrs): boolean {
  return attrs === "read-write" || attrs === "read-only";
}
