import fs from "node:fs";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeCerts, type TestCerts } from "../test/support/certs.ts";
import { describeTls } from "./tls.ts";

describe("describeTls", () => {
  let certs: TestCerts;
  let server: tls.Server;
  let port: number;

  beforeAll(async () => {
    certs = makeCerts();
    server = tls.createServer({
      cert: fs.readFileSync(certs.serverCert),
      key: fs.readFileSync(certs.serverKey),
    });
    server.on("secureConnection", (s) => s.on("error", () => undefined));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    certs.remove();
  });

  it("names the protocol and cipher, and gives nothing for a socket already destroyed", async () => {
    const socket = tls.connect({ port, host: "127.0.0.1", ca: fs.readFileSync(certs.caCert) });
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    expect(describeTls(socket)).toMatch(/^TLSv1\.[23]\/[A-Z0-9_-]+/);
    // SHOW CLIENTS may run between a destroy() and its 'close': the socket's TLS state is gone then
    socket.destroy();
    expect(describeTls(socket)).toBe("");
  });
});
