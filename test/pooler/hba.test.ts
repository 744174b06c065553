// auth_type = hba with an auth_hba_file, as PgBouncer: the first matching line picks trust, md5,
// SCRAM, cleartext, cert or reject per connection (Unix socket or TCP, TLS or not, database, user,
// address), RELOAD re-reads the file. Real psql and node-postgres against PostgreSQL 13.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseErrorFields, startupMessage } from "../../pooler/protocol/messages.ts";
import { makeCerts, type TestCerts } from "../support/certs.ts";
import { connect, errorOf, psql, rawExchange } from "../support/clients.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { createLoginRole, dropRole } from "../support/roles.ts";

let dir: string;
let certs: TestCerts;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-hba-"));
  certs = makeCerts();
  await createLoginRole(inject("pgAdminUrl"), "report", "report-pw", "md5");
  fs.writeFileSync(path.join(dir, "userlist.txt"), '"postgres" "postgres"\n"report" "report-pw"\n');
  fs.writeFileSync(path.join(dir, "md5users.txt"), "# users who log in with md5\nreport\n");
});
afterAll(async () => {
  await dropRole(inject("pgAdminUrl"), "report");
  fs.rmSync(dir, { recursive: true, force: true });
  certs.remove();
});

const HBA = [
  "# TYPE  DATABASE   USER            ADDRESS              METHOD",
  "local   all        all                                  trust",
  "host    app        mallory         127.0.0.0 255.0.0.0  reject",
  "host    app        @md5users.txt   127.0.0.1/32         md5",
  "host    sameuser   all             127.0.0.1/32         scram-sha-256",
  "host    pgbouncer  postgres        127.0.0.1/32         password",
  "host    all        all             10.0.0.0/8           trust",
];

/** A pooler reading an ini with auth_type = hba; `extra` lines go to [pgbouncer]. */
async function hbaPooler(
  hba: string[],
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<TestPooler> {
  fs.writeFileSync(path.join(dir, "hba.conf"), hba.join("\n") + "\n");
  const ini = path.join(dir, "pgbouncer.ini");
  fs.writeFileSync(
    ini,
    [
      "[databases]",
      `* = host=127.0.0.1 port=${inject("pgPort")}`,
      "[pgbouncer]",
      "auth_type = hba",
      `auth_hba_file = ${path.join(dir, "hba.conf")}`,
      `auth_file = ${path.join(dir, "userlist.txt")}`,
      "admin_users = postgres",
      `unix_socket_dir = ${dir}`,
      "pool_mode = transaction",
      ...extra,
    ].join("\n"),
  );
  return startTestPooler({ DATABASE_URL: "", ...env }, ini);
}

/**
 * What the pooler answers a startup packet (from a loopback address, 127.0.0.1 unless `from`) with:
 * the authentication request it makes, or its error.
 */
async function answerTo(p: { port: number }, user: string, database: string, from?: string): Promise<string> {
  const reply = await rawExchange(p.port, startupMessage({ user, database }), 500, from);
  if (reply[0] === 0x52) return `auth request ${reply.readInt32BE(5)}`;
  return `error ${parseErrorFields(reply.subarray(5, 1 + reply.readInt32BE(1))).get("M")}`;
}

const tcpUrl = (p: TestPooler, user: string, password: string, db: string): string =>
  `postgresql://${user}:${password}@127.0.0.1:${p.port}/${db}`;

describe("auth_type = hba", () => {
  it("picks each connection's method from the first matching line, and refuses what no line lets in", async () => {
    const p = await hbaPooler(HBA);
    try {
      // AuthenticationMD5Password (5), SASL (10), CleartextPassword (3), as PostgreSQL numbers them
      expect(await answerTo(p, "report", "app")).toBe("auth request 5");
      expect(await answerTo(p, "postgres", "postgres")).toBe("auth request 10");
      expect(await answerTo(p, "postgres", "pgbouncer")).toBe("auth request 3");
      expect(await answerTo(p, "mallory", "app")).toBe("error login rejected");
      expect(await answerTo(p, "postgres", "app")).toBe("error login rejected");
      expect(p.logs.filter((l) => l.msg === "login refused").map((l) => l.why)).toEqual([
        `${path.join(dir, "hba.conf")}:3 rejects it`,
        "no auth_hba_file line matches",
      ]);

      // and real logins through those methods
      expect((await psql(tcpUrl(p, "report", "report-pw", "app"), "SELECT current_user")).stdout.trim()).toBe(
        "report",
      );
      const wrong = await errorOf(psql(tcpUrl(p, "report", "nope", "app"), "SELECT 1"));
      expect(wrong.message).toContain('password authentication failed for user "report"');
      expect((await psql(tcpUrl(p, "postgres", "postgres", "postgres"), "SELECT 1")).stdout.trim()).toBe("1");
      const rejected = await errorOf(connect(tcpUrl(p, "postgres", "postgres", "app")));
      expect(rejected).toMatchObject({ message: "login rejected", code: "28000" });
      // the Unix socket's "local" line trusts: no password at all
      const local = `postgresql://postgres@/app?host=${encodeURIComponent(dir)}&port=${p.port}`;
      expect((await psql(local, "SELECT current_user")).stdout.trim()).toBe("postgres");
    } finally {
      await p.stop();
    }
  });

  it.skipIf(!hasPgBouncer())(
    "applies a netmask bit by bit, contiguous or not, as PgBouncer 1.18",
    async () => {
      const hba = ["host all all 127.0.0.1 255.0.255.255 md5", "host all all 127.0.0.0/16 password"];
      const sources = ["127.0.0.1", "127.5.0.1", "127.0.9.9", "127.5.1.1", "127.5.0.2"];
      const answers = async (p: { port: number }): Promise<string[]> =>
        Promise.all(sources.map((from) => answerTo(p, "report", "app", from)));
      const ours = await hbaPooler(hba);
      // PgBouncer runs as postgres and reads the same file
      fs.chmodSync(dir, 0o755);
      const theirs = await startPgBouncer(
        { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
        { auth_type: "hba", auth_hba_file: path.join(dir, "hba.conf") },
        { report: "report-pw" },
      );
      try {
        const mine = await answers(ours);
        expect(mine).toEqual([
          "auth request 5",
          "auth request 5",
          "auth request 3",
          "error login rejected",
          "error login rejected",
        ]);
        expect(mine).toEqual(await answers(theirs));
      } finally {
        await ours.stop();
        await theirs.stop();
      }
    },
  );

  it("starts on pg_hba.conf as initdb writes it, saved with CRLF: its replication lines only warn", async () => {
    const initdb = [
      "# TYPE  DATABASE        USER            ADDRESS                 METHOD",
      "",
      '# "local" is for Unix domain socket connections only',
      "local   all             all                                     trust",
      "# IPv4 local connections:",
      "host    all             all             127.0.0.1/32            md5",
      "# IPv6 local connections:",
      "host    all             all             ::1/128                 md5",
      "# Allow replication connections from localhost, by a user with the",
      "# replication privilege.",
      "local   replication     all                                     trust",
      "host    replication     all             127.0.0.1/32            trust",
      "host    replication     all             ::1/128                 trust",
    ];
    const p = await hbaPooler([initdb.join("\r\n")]);
    try {
      expect(await answerTo(p, "report", "app")).toBe("auth request 5");
      expect(p.logs.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(
        [11, 12, 13].map(
          (n) =>
            `${path.join(dir, "hba.conf")}:${n}: database replication: the pooler takes no replication connections`,
        ),
      );
    } finally {
      await p.stop();
    }
  });

  it("RELOAD reads the file again; a broken file keeps the running rules", async () => {
    const p = await hbaPooler(HBA);
    const consoleUrl = `postgresql://postgres@/pgbouncer?host=${encodeURIComponent(dir)}&port=${p.port}`;
    try {
      expect(await answerTo(p, "report", "app")).toBe("auth request 5");
      fs.writeFileSync(path.join(dir, "hba.conf"), ["host all all 127.0.0.1/32 reject", ...HBA].join("\n"));
      await psql(consoleUrl, "RELOAD");
      expect(await answerTo(p, "report", "app")).toBe("error login rejected");
      fs.writeFileSync(path.join(dir, "hba.conf"), "host all all 127.0.0.1/32 ldap\n");
      const err = await errorOf(psql(consoleUrl, "RELOAD"));
      expect(err.message).toContain("hba.conf:1: auth method: expected one of");
      expect(await answerTo(p, "report", "app")).toBe("error login rejected");
    } finally {
      await p.stop();
    }
  });

  // PgBouncer 1.18 asks for a client certificate under every client_tls_sslmode (libtls'
  // verify_client_optional below verify-ca), so cert lines work with require too (measured)
  it.each(["require", "verify-ca"])(
    "cert: a verified client certificate whose CommonName is the user logs in without a password (client_tls_sslmode %s)",
    async (mode) => {
      const p = await hbaPooler(
        [
          "hostssl app all 127.0.0.1/32 cert",
          "host app all 127.0.0.1/32 cert",
          "hostssl all all 127.0.0.1/32 md5",
        ],
        [],
        {
          CLIENT_TLS_SSLMODE: mode,
          CLIENT_TLS_KEY_FILE: certs.serverKey,
          CLIENT_TLS_CERT_FILE: certs.serverCert,
          CLIENT_TLS_CA_FILE: certs.caCert,
        },
      );
      const withCert = (user: string, cert = certs.clientCert, key = certs.clientKey): string =>
        `postgresql://${user}@127.0.0.1:${p.port}/app?` +
        new URLSearchParams({ sslmode: "require", sslcert: cert, sslkey: key }).toString();
      try {
        // the certificate says CN=postgres
        expect((await psql(withCert("postgres"), "SELECT current_user")).stdout.trim()).toBe("postgres");
        expect((await errorOf(psql(withCert("report"), "SELECT 1"))).message).toContain(
          "certificate authentication failed",
        );
        // a certificate another CA signed is refused, not taken for no certificate
        expect(
          (await errorOf(psql(withCert("postgres", certs.otherClientCert, certs.otherClientKey), "SELECT 1")))
            .message,
        ).toContain("connection requires a valid client certificate");
        if (mode === "require") {
          // the certificate is asked for, not required: without one a password line still serves
          const url = `postgresql://report:report-pw@127.0.0.1:${p.port}/postgres?sslmode=require`;
          expect((await psql(url, "SELECT current_user")).stdout.trim()).toBe("report");
        }
      } finally {
        await p.stop();
      }
    },
  );

  it("cert: to the console, a user the auth file does not have is refused once its certificate is verified", async () => {
    // the console's "not allowed" waits for the exchange when the user is unknown (as PgBouncer
    // 1.18); a certificate does not pass it without the user in the auth file, as in PgBouncer
    fs.writeFileSync(path.join(dir, "no-postgres.txt"), '"report" "report-pw"\n');
    const p = await hbaPooler(["hostssl pgbouncer all 127.0.0.1/32 cert"], [], {
      AUTH_FILE: path.join(dir, "no-postgres.txt"),
      ADMIN_USERS: "report",
      CLIENT_TLS_SSLMODE: "verify-ca",
      CLIENT_TLS_KEY_FILE: certs.serverKey,
      CLIENT_TLS_CERT_FILE: certs.serverCert,
      CLIENT_TLS_CA_FILE: certs.caCert,
    });
    try {
      const url =
        `postgresql://postgres@127.0.0.1:${p.port}/pgbouncer?` +
        new URLSearchParams({
          sslmode: "require",
          sslcert: certs.clientCert,
          sslkey: certs.clientKey,
        }).toString();
      expect((await errorOf(psql(url, "SHOW VERSION"))).message).toContain(
        "certificate authentication failed",
      );
    } finally {
      await p.stop();
    }
  });

  it("refuses to start without auth_hba_file, and names a bad line", async () => {
    const ini = path.join(dir, "no-hba.ini");
    fs.writeFileSync(ini, "[databases]\n* = host=127.0.0.1\n[pgbouncer]\nauth_type = hba\n");
    expect((await errorOf(startTestPooler({ DATABASE_URL: "" }, ini))).message).toBe(
      "auth_type: hba needs auth_hba_file (AUTH_HBA_FILE), PostgreSQL's pg_hba.conf format",
    );
    expect((await errorOf(hbaPooler(["host all all 127.0.0.1/32 trust", "hostssl all"]))).message).toBe(
      `${path.join(dir, "hba.conf")}:2: missing user`,
    );
  });
});
