// The console's lookup table (PgBouncer's cmd_list): each command, whether it needs admin_users,
// and what it does. SHOW (and the harmless fake SETs) are open to stats_users too.
import type { ClientConnection } from "../client.ts";
import { ConfigError, type ApplyResult } from "../config/index.ts";
import type { Pooler } from "../pooler.ts";
import { commandComplete, emptyQueryResponse } from "../protocol/messages.ts";
import { SqlState } from "../protocol/sqlstate.ts";
import * as control from "./control.ts";
import { AdminError } from "./control.ts";
import { parseAdminQuery } from "./parse.ts";
import { notice } from "./resultset.ts";
import { FAKE_PARAMS, findShow } from "./show.ts";

/** Who is asking, and what they sent (error messages quote it). */
export interface CommandContext {
  pooler: Pooler;
  client: ClientConnection;
  sql: string;
}

interface CommandDef {
  adminOnly: boolean;
  /** The argument's form, checked before who asks (so a stats user hears `invalid command` too, as in PgBouncer). */
  accepts?: (arg: string) => boolean;
  /** Returns the reply's messages (ReadyForQuery is added by the console). */
  run(ctx: CommandContext, arg: string): Buffer[] | Promise<Buffer[]>;
}

function invalidCommand(ctx: CommandContext): AdminError {
  return new AdminError(SqlState.SyntaxError, `invalid command '${ctx.sql}', use SHOW HELP;`);
}

function show(ctx: CommandContext, arg: string): Buffer[] {
  const command = findShow(arg);
  if (command === undefined) throw invalidCommand(ctx);
  return command(ctx.pooler);
}

/** An admin command whose reply is just its tag. */
function admin(
  run: (pooler: Pooler, arg: string) => string | Promise<string>,
  accepts?: (arg: string) => boolean,
): CommandDef {
  return { adminOnly: true, accepts, run: async (ctx, arg) => [commandComplete(await run(ctx.pooler, arg))] };
}

const noArg = (arg: string): boolean => arg === "";

const COMMANDS: ReadonlyMap<string, CommandDef> = new Map<string, CommandDef>([
  ["show", { adminOnly: false, run: show }],
  // PgBouncer answers "SELECT x" like "SHOW x".
  ["select", { adminOnly: false, run: show }],
  ["pause", admin(control.pause)],
  ["resume", admin(control.resume)],
  ["kill", admin(control.kill)],
  ["kill_client", admin(control.killClient, (arg) => arg !== "")],
  ["disable", admin(control.disable)],
  ["enable", admin(control.enable)],
  ["reconnect", admin(control.reconnect)],
  ["wait_close", admin(control.waitClose)],
  ["reload", admin(control.reload, noArg)],
  ["shutdown", admin(control.shutdown, control.isShutdownMode)],
]);

function requireAdmin(ctx: CommandContext): void {
  if (ctx.client.adminRole !== "admin") {
    // PgBouncer's words and SQLSTATE (admin_error sends every console error as 08P01).
    throw new AdminError(SqlState.ProtocolViolation, "admin access needed");
  }
}

function set(ctx: CommandContext, key: string, value: string): Buffer[] {
  if (FAKE_PARAMS.has(key)) return [notice("SET ignored"), commandComplete("SET")];
  requireAdmin(ctx);
  let result: ApplyResult;
  try {
    result = ctx.pooler.set(key, value);
  } catch (err) {
    if (err instanceof ConfigError) throw new AdminError(SqlState.InvalidParameterValue, err.message);
    throw err;
  }
  ctx.pooler.log.info({ user: ctx.client.user, key, value }, "SET command issued");
  const done = commandComplete(`SET ${key}=${value}`);
  if (result === "set") return [done];
  return [notice(`${key} is accepted for compatibility but not implemented by this pooler`), done];
}

/** Runs one console query; throws AdminError for anything the client should be told about. */
export async function execute(ctx: CommandContext): Promise<Buffer[]> {
  const statement = parseAdminQuery(ctx.sql);
  if (statement === null) throw invalidCommand(ctx);
  switch (statement.kind) {
    case "empty":
      return [emptyQueryResponse()];
    case "set":
      return set(ctx, statement.key, statement.value);
    case "command": {
      const command = COMMANDS.get(statement.verb);
      if (command === undefined || command.accepts?.(statement.arg) === false) throw invalidCommand(ctx);
      if (command.adminOnly) {
        requireAdmin(ctx);
        ctx.pooler.log.info(
          { user: ctx.client.user, arg: statement.arg },
          `${statement.verb.toUpperCase()} command issued`,
        );
      }
      return command.run(ctx, statement.arg);
    }
  }
}
