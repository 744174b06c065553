// A client of the console (the virtual `pgbouncer` database) as its ClientConnection sees it: the
// parameters it is welcomed with, and every message it sends, framed as any client's, handed to
// the console whole.
import type { ClientConnection, ClientHost } from "../client.ts";
import type { FrameVisitor } from "../protocol/framing.ts";
import { Msg } from "../protocol/messages.ts";
import { PGBOUNCER_VERSION } from "../version.ts";

/** Every message of an admin client goes to the console (which speaks the simple protocol only). */
export class AdminVisitor implements FrameVisitor {
  constructor(
    private readonly client: ClientConnection,
    private readonly host: ClientHost,
  ) {}
  mustInspect(): boolean {
    return true;
  }
  mayRewrite(): boolean {
    return true;
  }
  message(): void {}
  // never called: every message is inspected
  streams(): void {}
  streamBody(): void {}
  rewritesPrefix(): boolean {
    return false;
  }
  pass(): void {} // every message is rewritten: nothing passes
  rewrite(type: number, msg: Buffer): void {
    if (type === Msg.Terminate) this.client.close("client close request");
    else this.host.adminMessage(this.client, type, msg);
  }
}

/** What the admin console presents itself as: PgBouncer 1.18's own list (admin.c), measured on it. */
export function adminWelcomeParams(): Map<string, string> {
  return new Map([
    ["server_version", `${PGBOUNCER_VERSION}/bouncer`],
    ["client_encoding", "UTF8"],
    ["server_encoding", "UTF8"],
    // as the console's SHOW datestyle and SHOW timezone answer (FAKE_PARAMS)
    ["DateStyle", "ISO"],
    ["TimeZone", "GMT"],
    ["standard_conforming_strings", "on"],
    ["is_superuser", "on"],
    ["integer_datetimes", "on"],
    ["application_name", ""],
  ]);
}
