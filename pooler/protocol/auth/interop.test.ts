// Logs in to the real PostgreSQL 13 over a raw socket with our MD5 and SCRAM client code: the
// closest check, short of the pooler itself, that what we put on the wire is what PostgreSQL
// expects. The embedded server's pg_hba says "md5", under which PostgreSQL uses SCRAM for roles
// whose stored password is a SCRAM secret.
import { once } from "node:events";
import net from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { md5Response, md5Secret } from "./md5.ts";
import {
  SASL_MECHANISM,
  ScramClientSession,
  ScramServerSession,
  parseScramSecret,
  type ScramClientCredentials,
} from "./scram.ts";

interface Message {
  type: string;
  body: Buffer;
}

// Authentication request codes of the 'R' message.
const AUTH_OK = 0;
const AUTH_MD5 = 5;
const AUTH_SASL = 10;
const AUTH_SASL_CONTINUE = 11;
const AUTH_SASL_FINAL = 12;

/** A minimal protocol-3 connection: framing only, enough for the startup exchange. */
async function connect(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  await once(socket, "connect");
  let pending = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  socket.on("data", (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    wake?.();
  });
  socket.on("error", (e) => (failure = e));
  socket.on("close", () => {
    failure ??= new Error("connection closed");
    wake?.();
  });

  async function read(): Promise<Message> {
    for (;;) {
      if (pending.length >= 5 && pending.length >= 1 + pending.readInt32BE(1)) {
        const end = 1 + pending.readInt32BE(1);
        const msg = { type: String.fromCharCode(pending[0]!), body: pending.subarray(5, end) };
        pending = pending.subarray(end);
        return msg;
      }
      if (failure) throw failure;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }

  function send(type: string, ...parts: Buffer[]): void {
    const body = Buffer.concat(parts);
    const header = Buffer.alloc(5);
    header.write(type, 0, "ascii");
    header.writeInt32BE(body.length + 4, 1);
    socket.write(Buffer.concat([header, body]));
  }

  function startup(params: Record<string, string>): void {
    const pairs = Object.entries(params).flatMap(([k, v]) => [cstring(k), cstring(v)]);
    const body = Buffer.concat([int32(196608), ...pairs, Buffer.from([0])]);
    socket.write(Buffer.concat([int32(body.length + 4), body]));
  }

  return { read, send, startup, close: () => socket.destroy() };
}

function cstring(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function errorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let i = 0;
  while (body[i] !== 0 && i < body.length) {
    const end = body.indexOf(0, i + 1);
    fields[String.fromCharCode(body[i]!)] = body.toString("utf8", i + 1, end);
    i = end + 1;
  }
  return fields;
}

/**
 * Logs in as `user` answering whatever the server asks for, then waits for ReadyForQuery.
 * Resolves to "ok" or to the SQLSTATE of the server's ErrorResponse, and to the method the server
 * chose (so a test cannot pass through another method than the one it means to check).
 */
async function login(
  user: string,
  auth: { md5?: string; scram?: ScramClientCredentials },
): Promise<{ outcome: string; method: "md5" | "scram" | "none" }> {
  const conn = await connect(inject("pgPort"));
  let scram: ScramClientSession | undefined;
  let method: "md5" | "scram" | "none" = "none";
  try {
    conn.startup({ user, database: "postgres" });
    for (;;) {
      const msg = await conn.read();
      if (msg.type === "E") return { outcome: errorFields(msg.body)["C"] ?? "?", method };
      if (msg.type === "Z") return { outcome: "ok", method };
      if (msg.type !== "R") continue; // ParameterStatus, BackendKeyData
      const code = msg.body.readInt32BE(0);
      const data = msg.body.subarray(4);
      if (code === AUTH_OK) continue;
      if (code === AUTH_MD5) {
        method = "md5";
        conn.send("p", cstring(md5Response(user, auth.md5!, data)));
      } else if (code === AUTH_SASL) {
        expect(data.toString("utf8").split("\0")).toContain(SASL_MECHANISM);
        method = "scram";
        scram = new ScramClientSession(auth.scram!);
        const first = Buffer.from(scram.clientFirst(), "utf8");
        conn.send("p", cstring(SASL_MECHANISM), int32(first.length), first);
      } else if (code === AUTH_SASL_CONTINUE) {
        conn.send("p", Buffer.from(await scram!.handleServerFirst(data.toString("utf8")), "utf8"));
      } else if (code === AUTH_SASL_FINAL) {
        scram!.verifyServerFinal(data.toString("utf8"));
      } else {
        throw new Error(`unexpected authentication request ${code}`);
      }
    }
  } finally {
    conn.close();
  }
}

describe("logging in to PostgreSQL 13 with our client code", () => {
  const admin = new pg.Client({ connectionString: inject("pgAdminUrl") });
  let scramSecret = "";

  beforeAll(async () => {
    await admin.connect();
    await admin.query("DROP ROLE IF EXISTS auth_interop_md5");
    await admin.query("DROP ROLE IF EXISTS auth_interop_scram");
    await admin.query("SET password_encryption = 'md5'");
    await admin.query("CREATE ROLE auth_interop_md5 LOGIN PASSWORD 'md5-pw'");
    await admin.query("SET password_encryption = 'scram-sha-256'");
    await admin.query("CREATE ROLE auth_interop_scram LOGIN PASSWORD 'scram-pw\u2168'");
    const r = await admin.query<{ rolpassword: string }>(
      "SELECT rolpassword FROM pg_authid WHERE rolname = 'auth_interop_scram'",
    );
    scramSecret = r.rows[0]!.rolpassword;
  });

  afterAll(async () => {
    await admin.query("DROP ROLE IF EXISTS auth_interop_md5");
    await admin.query("DROP ROLE IF EXISTS auth_interop_scram");
    await admin.end();
  });

  it("MD5 with the password and with the stored md5 secret", async () => {
    const ok = { outcome: "ok", method: "md5" };
    expect(await login("auth_interop_md5", { md5: "md5-pw" })).toEqual(ok);
    expect(await login("auth_interop_md5", { md5: md5Secret("auth_interop_md5", "md5-pw") })).toEqual(ok);
    expect(await login("auth_interop_md5", { md5: "wrong" })).toEqual({ outcome: "28P01", method: "md5" });
  });

  it("SCRAM-SHA-256 with the password, checking the server's signature", async () => {
    const ok = { outcome: "ok", method: "scram" };
    expect(await login("auth_interop_scram", { scram: "scram-pw\u2168" })).toEqual(ok);
    expect(await login("auth_interop_scram", { scram: "scram-pwIX" })).toEqual(ok); // SASLprep'd form
    expect(await login("auth_interop_scram", { scram: "wrong" })).toEqual({
      outcome: "28P01",
      method: "scram",
    });
  });

  it("SCRAM-SHA-256 pass-through with the client key our server recovered", async () => {
    // What PgBouncer does: verify the client against the stored secret, then reuse its ClientKey.
    const secret = parseScramSecret(scramSecret)!;
    const server = new ScramServerSession(secret);
    const client = new ScramClientSession("scram-pw\u2168");
    const serverFirst = server.handleClientFirst(client.clientFirst());
    const result = server.handleClientFinal(await client.handleServerFirst(serverFirst));
    if (!result.ok) throw new Error(result.reason);
    const keys = { clientKey: result.clientKey, serverKey: secret.serverKey };
    expect(await login("auth_interop_scram", { scram: keys })).toEqual({ outcome: "ok", method: "scram" });
  });
});
