// Whether one fuzz case ended as it must: every refusal a FATAL ErrorResponse with a SQLSTATE the
// input explains (and nothing after it), a silent close only when the case itself asked to leave,
// whole messages only, and the connection closed within the configured timeouts.
import { parseErrorFields } from "../../pooler/protocol/messages.ts";
import type { CaseEnd } from "./cases.ts";
import { parseMessages, type WireMessage } from "../support/wire-probe.ts";

/** The FATAL SQLSTATEs a connection may end with, and why each is right for some input. */
export const ALLOWED_FATAL: Readonly<Record<string, string>> = {
  "08P01": "protocol violation: malformed input, and the login / idle / query-wait timeouts",
  "28P01": "wrong password, bad SCRAM proof, or an unknown user (PostgreSQL's wording for all)",
  "28000": "no user name in the startup packet",
  "3D000": "a database the pooler does not serve",
  "0A000": "an unsupported protocol version, a replication connection, SCRAM channel binding",
  "42601": "startup options that do not parse",
  "42704": "an unknown setting in the startup packet (PostgreSQL refuses it at login too)",
  "22023": "a bad value for a startup setting",
  "22P02": "a startup setting whose value does not parse",
  "55P02": "a startup setting that cannot be changed after the server started",
  "57014": "query_timeout",
  "25P03": "idle_transaction_timeout",
};

export interface Verdict {
  /** null when the case ended as it must. */
  problem: string | null;
  /** What the pooler sent: message types, and each error's severity, SQLSTATE and message. */
  got: string;
  /** How it ended: the FATAL's SQLSTATE, or "close". */
  ending: string;
}

export function judge(received: Buffer, end: CaseEnd, closed: boolean): Verdict {
  let skip = 0;
  while (skip < end.sslRequests && received[skip] === 0x4e) skip++; // 'N': no TLS here
  const { messages, rest } = parseMessages(received, skip);
  const got = messages.map(describe).join(" ");
  const fail = (problem: string, ending = "?"): Verdict => ({ problem, ending, got });
  if (rest > 0) return fail(`the pooler sent ${rest} bytes that are not a whole message`);
  for (const [i, m] of messages.entries()) {
    if (m.type !== "E") continue;
    const fields = errorFields(m);
    const code = fields.get("C") ?? "";
    if ((fields.get("V") ?? fields.get("S")) !== "FATAL") continue; // a server's answer in a session
    if (i !== messages.length - 1) return fail(`messages after a FATAL ${code}`, code);
    if (!(code in ALLOWED_FATAL))
      return fail(`FATAL ${code} "${fields.get("M")}" is not an allowed ending`, code);
    if (!closed) return fail(`still open after FATAL ${code}`, code);
    return { problem: null, ending: code, got };
  }
  if (!closed) return fail("still open after its timeouts (+ margin)", "open");
  if (!end.mayCloseSilently) return fail("closed without an ErrorResponse", "close");
  return { problem: null, ending: "close", got };
}

function errorFields(m: WireMessage): Map<string, string> {
  const header = Buffer.alloc(5);
  header[0] = 0x45;
  header.writeUInt32BE(m.body.length + 4, 1);
  return parseErrorFields(Buffer.concat([header, m.body]));
}

function describe(m: WireMessage): string {
  if (m.type !== "E") return m.type;
  const f = errorFields(m);
  return `E(${f.get("V") ?? f.get("S")} ${f.get("C")} "${f.get("M")}")`;
}
