// docker-compose.yaml, .env.example, Dockerfile and .dockerignore: nothing here can run Docker (the
// machines have no engine), so these tests lint the files and check what must hold between them:
// the tutorial's topology, start-up order, and a pooler environment the pooler really understands.
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { parseEnv, promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { findSetting, loadConfig } from "../../pooler/config/index.ts";
import { POOLER_NODE_FLAGS } from "../../scripts/lib/pooler-node-flags.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const read = (file: string) => fs.readFileSync(path.join(root, file), "utf8");
const bin = (name: string) => path.join(root, "node_modules", ".bin", name);

interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, string | number>;
  env_file?: { path: string; required?: boolean }[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  ports?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const composeText = read("docker-compose.yaml");
const compose = parse(composeText) as Compose;
const { db, pooler, web } = compose.services as Record<"db" | "pooler" | "web", Service>;
const envExample = parseEnv(read(".env.example")) as Record<string, string>;

/** Compose's interpolation of ${VAR}, ${VAR:-default}, ${VAR-default} and $$, with `vars` as .env. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(
    /\$\$|\$\{(\w+)(?:(:?-)([^}]*))?\}/g,
    (match, name?: string, op?: string, fallback = "") => {
      if (name === undefined) return "$";
      const set = vars[name];
      if (op === ":-") return set ? set : fallback;
      if (op === "-") return set ?? fallback;
      return set ?? "";
    },
  );
}

function serviceEnv(service: Service, dotenv: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), dotenv)]),
  );
}

function commandText(service: Service): string {
  return Array.isArray(service.command) ? service.command.join(" ") : (service.command ?? "");
}

describe("docker-compose.yaml", () => {
  it("passes dclint (all rules, no warnings)", async () => {
    const { stdout } = await run(
      bin("dclint"),
      ["-c", ".dclintrc.json", "--max-warnings", "0", "-f", "json", "docker-compose.yaml"],
      { cwd: root },
    );
    const [report] = JSON.parse(stdout) as { messages: unknown[] }[];
    expect(report?.messages).toEqual([]);
  });

  it("runs the tutorial's three services, PostgreSQL 13 pinned", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["db", "pooler", "web"]);
    expect(db.image).toMatch(/^postgres:13\.\d+-alpine$/);
    expect(db.build).toBeUndefined();
  });

  it("keeps the database in a named volume and checks it with pg_isready over TCP", () => {
    expect(Object.keys(compose.volumes ?? {})).toEqual(["postgres_data"]);
    expect(db.volumes).toContain("postgres_data:/var/lib/postgresql/data");
    // On a new volume the image first runs a server on its Unix socket only, to initialise, then
    // stops it: over the socket pg_isready says ready while the pooler and web would be refused.
    expect(db.healthcheck?.test).toEqual(["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres"]);
  });

  it("builds the pooler from the same image as web, with its own entry point", () => {
    expect(pooler.build).toEqual(web.build);
    expect(pooler.image).toBeUndefined();
    expect(commandText(pooler)).toBe(`node ${POOLER_NODE_FLAGS.join(" ")} dist/pooler/main.js`);
    expect(pooler.healthcheck?.test.join(" ")).toContain("connect(5432");
    // `npm run pooler` spells the same flags out
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
    expect(scripts.pooler).toBe(commandText(pooler));
  });

  it("starts db, then the pooler, then web", () => {
    expect(pooler.depends_on).toEqual({ db: { condition: "service_healthy" } });
    expect(web.depends_on).toEqual({
      db: { condition: "service_healthy" },
      pooler: { condition: "service_healthy" },
    });
  });

  it("migrates over the direct URL before starting the app", () => {
    const command = commandText(web);
    const migrate = command.indexOf("node dist/scripts/migrate.js");
    expect(migrate).toBeGreaterThan(-1);
    expect(command.indexOf("exec node dist/app/server.js")).toBeGreaterThan(migrate);
    expect(web.environment).toHaveProperty("POSTGRES_DATABASE_URL");
  });

  it("works without a .env file, and uses it when there is one", () => {
    expect(web.env_file).toEqual([{ path: ".env", required: false }]);
  });

  it("documents in .env.example every variable it interpolates", () => {
    const used = new Set([...composeText.matchAll(/(?<!\$)\$\{(\w+)/g)].map((m) => m[1]));
    expect([...used].filter((name) => !(name! in envExample))).toEqual([]);
  });

  describe.each([
    { label: "with .env.example as .env", dotenv: envExample },
    { label: "without .env", dotenv: {} },
  ])("$label", ({ dotenv }) => {
    const webEnv = serviceEnv(web, dotenv);
    const poolerEnv = serviceEnv(pooler, dotenv);

    it("points the app at the pooler and the migrations at db", () => {
      const app = new URL(webEnv.DATABASE_URL!);
      expect(app.hostname).toBe("pooler");
      expect(app.port).toBe(poolerEnv.LISTEN_PORT);
      expect(new URL(webEnv.POSTGRES_DATABASE_URL!).host).toBe("db:5432");
      expect(poolerEnv.DATABASE_URL).toBe(webEnv.POSTGRES_DATABASE_URL);
    });

    it("logs the app in with the user the pooler accepts, whose password db was given", () => {
      const app = new URL(webEnv.DATABASE_URL!);
      const upstream = new URL(poolerEnv.DATABASE_URL!);
      expect([app.username, app.password]).toEqual([upstream.username, upstream.password]);
      expect(upstream.password).toBe(serviceEnv(db, dotenv).POSTGRES_PASSWORD);
    });

    it("gives the pooler only variables it reads, and it takes every value", () => {
      const { config, warnings } = loadConfig({ env: poolerEnv });
      expect(warnings).toEqual([]);
      const upstream = new URL(poolerEnv.DATABASE_URL!);
      expect(config.databases.get(upstream.pathname.slice(1))).toMatchObject({ host: "db", port: 5432 });
      expect(config.authUsers.has(upstream.username)).toBe(true);
      for (const [name, value] of Object.entries(poolerEnv)) {
        if (name === "DATABASE_URL") continue;
        const setting = findSetting(name.toLowerCase());
        expect(setting, `${name} is not a pooler setting`).toBeDefined();
        expect(setting!.show(config), name).toBe(value);
      }
    });
  });
});

describe("Dockerfile", () => {
  const dockerfile = read("Dockerfile");
  const stages = dockerfile.split(/^(?=FROM )/m).slice(1);
  const runtime = stages.at(-1) ?? "";

  it("passes dockerfilelint", async () => {
    const { stdout } = await run(bin("dockerfilelint"), ["-j", "Dockerfile"], { cwd: root });
    expect(JSON.parse(stdout)).toMatchObject({ totalIssues: 0 });
  });

  it("builds in one stage and runs from a slim image of the Node.js that CI tests on", () => {
    // .ci/run installs .nvmrc's version; package.json's engines names its major and the first minor
    // the pooler runs on (24.19: setKeepAlive's interval and count, for tcp_keepintvl and tcp_keepcnt)
    const version = read(".nvmrc").trim();
    const [major, minor] = version.split(".").map(Number);
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    const engines = /^>=(\d+)\.(\d+)$/.exec(JSON.parse(read("package.json")).engines.node);
    expect(engines).not.toBeNull();
    expect(Number(engines![1])).toBe(major);
    expect(Number(engines![2])).toBeLessThanOrEqual(minor!);
    expect(stages).toHaveLength(2);
    for (const stage of stages)
      expect(stage).toMatch(new RegExp(`^FROM node:${version.replaceAll(".", "\\.")}-bookworm-slim AS \\w+`));
    expect(stages[0]).toMatch(/RUN npm run generate && npm run build/);
  });

  it("installs from package-lock.json only, production dependencies at run time", () => {
    expect(dockerfile).not.toMatch(/npm (install|i)\b/);
    expect(stages[0]).toMatch(/RUN npm ci\b/);
    expect(runtime).toMatch(/RUN npm ci --omit=dev --omit=optional --ignore-scripts/);
  });

  it("ships the compiled code, views, static files and migrations, and runs the app as `node`", () => {
    for (const copy of ["--from=build /app/dist", "views", "app/public", "prisma"]) {
      expect(runtime).toContain(`COPY ${copy} `);
    }
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^EXPOSE 8000$/m);
    expect(runtime).toMatch(/^CMD \["node", "dist\/app\/server\.js"\]$/m);
  });

  it("keeps secrets and local state out of the build context", () => {
    const ignored = read(".dockerignore").split("\n");
    for (const entry of [".env", ".git", "node_modules", "dist", ".data", "app/generated"]) {
      expect(ignored).toContain(entry);
    }
  });

  it("starts compiled files that the build produces", () => {
    const built = new Set(
      [...`${composeText}\n${dockerfile}`.matchAll(/dist\/([\w/-]+)\.js/g)].map((m) => m[1]!),
    );
    expect([...built].sort()).toEqual([
      "app/server",
      "pooler/main",
      "scripts/createsuperuser",
      "scripts/migrate",
    ]);
    for (const entry of built)
      expect(fs.existsSync(path.join(root, `${entry}.ts`)), `${entry}.ts`).toBe(true);
  });
});
