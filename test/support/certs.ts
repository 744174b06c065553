// Certificates for TLS tests, made with the openssl CLI in a temp dir: a CA, a server certificate
// for localhost and 127.0.0.1 (an EC key, and an RSA one for DHE), a client certificate for the user `postgres` (and one naming no
// user: no CommonName), and a second CA (the
// "wrong CA") that signed only a look-alike client certificate for `postgres`. Files are readable by the OS user PostgreSQL runs as, so a
// private PostgreSQL can use the server pair too.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runAs } from "../../scripts/lib/embedded-postgres.ts";

export interface TestCerts {
  dir: string;
  caCert: string;
  /** A CA that signed only the look-alike client certificate. */
  otherCaCert: string;
  serverCert: string;
  serverKey: string;
  /** The same names with an RSA key, for DHE cipher suites. */
  rsaServerCert: string;
  rsaServerKey: string;
  clientCert: string;
  clientKey: string;
  /** Signed by the CA, with no CommonName: valid, but naming no user. */
  anonymousClientCert: string;
  anonymousClientKey: string;
  /** CN=postgres too, but signed by the other CA. */
  otherClientCert: string;
  otherClientKey: string;
  remove(): void;
}

export function makeCerts(): TestCerts {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-certs-"));
  // postgres (not root) must reach the key it is given
  fs.chmodSync(dir, 0o755);
  const file = (name: string): string => path.join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  };
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  // DHE cipher suites exist for RSA keys only (there is no DHE-ECDSA)
  const newRsaKey = ["-newkey", "rsa:2048", "-nodes"];
  const ca = (name: string): void =>
    openssl(
      "req", "-x509", ...newKey, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2",
      "-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ); // prettier-ignore
  const leaf = (name: string, subject: string, ext: string, signer = "ca", key = newKey): void => {
    fs.writeFileSync(file(`${name}.ext`), `basicConstraints=CA:FALSE\n${ext}\n`);
    openssl("req", ...key, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
    openssl(
      "x509", "-req", "-in", `${name}.csr`, "-CA", `${signer}.crt`, "-CAkey", `${signer}.key`, "-CAcreateserial",
      "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`,
    ); // prettier-ignore
  };
  ca("ca");
  ca("other-ca");
  const serverExt = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth";
  leaf("server", "/CN=localhost", serverExt);
  leaf("rsa-server", "/CN=localhost", serverExt, "ca", newRsaKey);
  leaf("client", "/CN=postgres", "extendedKeyUsage=clientAuth");
  leaf("anonymous-client", "/O=try-ts-pooler", "extendedKeyUsage=clientAuth");
  leaf("other-client", "/CN=postgres", "extendedKeyUsage=clientAuth", "other-ca");
  for (const name of fs.readdirSync(dir)) fs.chmodSync(file(name), name.endsWith(".key") ? 0o600 : 0o644);
  // PostgreSQL insists on a key file of its own user's with mode 0600
  const who = runAs();
  if (who.uid !== undefined) fs.chownSync(file("server.key"), who.uid, who.gid!);
  return {
    dir,
    caCert: file("ca.crt"),
    otherCaCert: file("other-ca.crt"),
    serverCert: file("server.crt"),
    serverKey: file("server.key"),
    rsaServerCert: file("rsa-server.crt"),
    rsaServerKey: file("rsa-server.key"),
    clientCert: file("client.crt"),
    clientKey: file("client.key"),
    anonymousClientCert: file("anonymous-client.crt"),
    anonymousClientKey: file("anonymous-client.key"),
    otherClientCert: file("other-client.crt"),
    otherClientKey: file("other-client.key"),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
