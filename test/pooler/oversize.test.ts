// Oversize packets are refused on their header, before any of their body is buffered: a startup
// packet over PostgreSQL's MAX_STARTUP_PACKET_LENGTH (10000), a password-phase message (PasswordMessage,
// SASLInitialResponse, SASLResponse) over the pooler's auth limit (10000), and after login a message
// over max_packet_size — or over 1 GB when it must be read whole. Only the header is sent: the
// ErrorResponse arriving proves the pooler did not wait for the body. And what a client sends ahead
// of its login's steps is not read past a small limit while the pooler cannot use it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { md5Response } from "../../pooler/protocol/auth/md5.ts";
import {
  Auth,
  Msg,
  parseErrorFields,
  passwordMessage,
  startupMessage,
} from "../../pooler/protocol/messages.ts";
import { connect } from "../support/clients.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";
import { RawClient, errorOfReply } from "../support/protocol.ts";
import { UserlistDir, slowScramSecret } from "../support/roles.ts";
import { WireProbe } from "../support/wire-probe.ts";

const MB = 1 << 20;

/** A header claiming `len` bytes: typed (type + int32) or, for the startup packet, the int32 alone. */
function header(len: number, type?: number): Buffer {
  const buf = Buffer.alloc(type === undefined ? 4 : 5);
  if (type !== undefined) buf[0] = type;
  buf.writeUInt32BE(len, type === undefined ? 0 : 1);
  return buf;
}

/**
 * Sends `head` and waits for the pooler's answer; checks that the process (the pooler runs in it)
 * did not grow by anything like the claimed size, and prints what it measured.
 */
async function refusal(
  what: string,
  claimed: number,
  send: () => void,
  answer: () => Promise<Map<string, string>>,
): Promise<Map<string, string>> {
  const before = process.memoryUsage();
  const t0 = performance.now();
  send();
  const fields = await answer();
  const ms = performance.now() - t0;
  const after = process.memoryUsage();
  const grew = after.rss - before.rss + (after.arrayBuffers - before.arrayBuffers);
  console.log(
    `oversize ${what}: ${claimed / MB} MB claimed, ${fields.get("C")} after ${ms.toFixed(1)} ms, ` +
      `memory ${grew >= 0 ? "+" : ""}${(grew / MB).toFixed(1)} MB`,
  );
  expect(grew).toBeLessThan(claimed / 16);
  return fields;
}

/**
 * Sends `password`, then a 64 MB flood of bytes, and after `ms` says how much of it the pooler has
 * read from its end of the connection.
 */
async function floodRead(q: TestPooler, probe: WireProbe, password: Buffer, ms: number): Promise<number> {
  const [client] = q.pooler.clients;
  const before = client!.socket.bytesRead;
  probe.send(password);
  probe.send(Buffer.alloc(64 * MB, Msg.Query));
  await new Promise((resolve) => setTimeout(resolve, ms));
  return client!.socket.bytesRead - before;
}

/** The first ErrorResponse a probe receives (the pooler sends nothing else first at these points). */
async function firstError(probe: WireProbe): Promise<Map<string, string>> {
  const msgs = await probe.waitUntil((m) => m.some((x) => x.type === "E"), 5000);
  const e = msgs.find((x) => x.type === "E");
  if (e === undefined) throw new Error(`no ErrorResponse (got ${msgs.map((x) => x.type).join(" ")})`);
  const buf = Buffer.concat([header(e.body.length + 4, Msg.ErrorResponse), e.body]);
  return parseErrorFields(buf);
}

describe("oversize packets", () => {
  let p: TestPooler;
  beforeAll(async () => {
    p = await startTestPooler({ MAX_PACKET_SIZE: String(MB) });
  });
  afterAll(() => p.stop());

  it("a startup packet claiming 1 GB is refused with 08P01 on its length alone", async () => {
    const probe = await WireProbe.open(p.port);
    try {
      const claimed = 1 << 30;
      const f = await refusal(
        "startup packet",
        claimed,
        () => probe.send(header(claimed)),
        () => firstError(probe),
      );
      expect(f.get("C")).toBe("08P01");
      expect(f.get("M")).toBe(`invalid startup packet length ${claimed}`);
      expect(await probe.waitClosed(5000)).toBe(true);
    } finally {
      probe.destroy();
    }
  });

  it("a password message claiming 512 MB during the md5 exchange is refused on its header", async () => {
    const probe = await WireProbe.open(p.port);
    try {
      probe.send(startupMessage({ user: "postgres", database: "app" }));
      const [challenge] = await probe.waitUntil((m) => m.length > 0, 5000);
      expect(challenge?.body.readInt32BE(0)).toBe(Auth.MD5Password);
      const claimed = 512 * MB;
      const f = await refusal(
        "password message",
        claimed,
        () => probe.send(header(claimed, Msg.Password)),
        () => firstError(probe),
      );
      expect(f.get("C")).toBe("08P01");
      expect(await probe.waitClosed(5000)).toBe(true);
      // a real password of normal size still works on the next connection
      const ok = await WireProbe.open(p.port);
      ok.send(startupMessage({ user: "postgres", database: "app" }));
      const [r] = await ok.waitUntil((m) => m.length > 0, 5000);
      ok.send(passwordMessage(md5Response("postgres", "postgres", r!.body.subarray(4, 8))));
      const msgs = await ok.waitUntil((m) => m.some((x) => x.type === "Z"), 5000);
      ok.destroy();
      expect(msgs.map((m) => m.type)).toContain("Z");
    } finally {
      probe.destroy();
    }
  });

  it("after login, a Query over max_packet_size (1 MB) is refused on its header", async () => {
    const c = await RawClient.connect(p.url());
    try {
      const claimed = 256 * MB;
      const f = await refusal(
        "Query over max_packet_size",
        claimed,
        () => c.send(header(claimed, Msg.Query)),
        async () => errorOfReply(await c.next()),
      );
      expect(f.get("C")).toBe("08P01");
      expect(f.get("M")).toMatch(/invalid message length/);
    } finally {
      await c.close();
    }
  });

  it("bytes sent ahead of the welcome are read only up to 64 kB while the welcome waits for a server", async () => {
    await withTestPooler({ DEFAULT_POOL_SIZE: "1" }, async (q) => {
      // the only server is busy, and a startup setting makes the welcome wait for a server to accept it
      const holder = await connect(q.url());
      await holder.query("BEGIN");
      const probe = await WireProbe.open(q.port);
      try {
        probe.send(startupMessage({ user: "postgres", database: "app", options: "-c statement_timeout=5s" }));
        const [r] = await probe.waitUntil((m) => m.length > 0, 5000);
        const password = passwordMessage(md5Response("postgres", "postgres", r!.body.subarray(4, 8)));
        const read = await floodRead(q, probe, password, 500);
        console.log(
          `oversize read-ahead: 64 MB sent during a waiting welcome, ${(read / MB).toFixed(2)} MB read`,
        );
        expect(read).toBeLessThan(MB);
        await holder.query("COMMIT");
        // once in, the flood is read as the nonsense it is: a "Query" of 1.3 GB
        expect((await firstError(probe)).get("C")).toBe("08P01");
      } finally {
        probe.destroy();
        await holder.end();
      }
    });
  });

  it("bytes sent ahead while a password is being checked are read only up to 64 kB", async () => {
    // A cleartext password checked against a SCRAM secret: about two seconds of PBKDF2 off the event
    // loop, four times the 500 ms the flood is watched (calibrated once, it must outlast a busy machine)
    const users = new UserlistDir();
    try {
      const file = users.write([["postgres", await slowScramSecret("postgres", 2000)]]);
      await withTestPooler({ AUTH_TYPE: "plain", AUTH_FILE: file }, async (q) => {
        const probe = await WireProbe.open(q.port);
        try {
          probe.send(startupMessage({ user: "postgres", database: "app" }));
          const [r] = await probe.waitUntil((m) => m.length > 0, 5000);
          expect(r!.body.readInt32BE(0)).toBe(Auth.CleartextPassword);
          const read = await floodRead(q, probe, passwordMessage("postgres"), 500);
          console.log(
            `oversize read-ahead: 64 MB sent during a password check, ${(read / MB).toFixed(2)} MB read`,
          );
          expect(read).toBeLessThan(MB);
          // once the password is accepted, the flood is read as the nonsense it is
          const msgs = await probe.waitUntil((m) => m.some((x) => x.type === "E"), 5000);
          expect(msgs.some((m) => m.type === "R" && m.body.readInt32BE(0) === Auth.Ok)).toBe(true);
          expect(errorOfReply(msgs.find((m) => m.type === "E")!).get("C")).toBe("08P01");
        } finally {
          probe.destroy();
        }
      });
    } finally {
      users.remove();
    }
  });

  it("with the default max_packet_size, a Query claiming more than 1 GB is refused on its header too", async () => {
    await withTestPooler({}, async (q) => {
      const c = await RawClient.connect(q.url());
      try {
        const claimed = 0x7fff0000;
        const f = await refusal(
          "Query over 1 GB",
          claimed,
          () => c.send(header(claimed, Msg.Query)),
          async () => errorOfReply(await c.next()),
        );
        expect(f.get("C")).toBe("08P01");
        expect(f.get("M")).toMatch(/too large/);
      } finally {
        await c.close();
      }
    });
  });
});
