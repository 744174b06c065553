// Prisma 6 CLI configuration for the offline migration tools in this folder (see README notes in
// new-migration.sh). Prisma 6 can run its schema engine as WASM through a driver adapter; Prisma 7
// (the project's own CLI) needs a native binary that cannot be downloaded on offline machines.
import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";

interface FieldDescription {
  dataTypeID: number;
}
interface ResultPrototype {
  addFields(fields: FieldDescription[]): void;
}

// adapter-pg cannot decode some catalog types the WASM engine reads while introspecting
// ("char" = 18, name = 19, regproc = 24, ...): report them as text (25) / text[] (1009).
const remap = new Map<number, number>([
  [18, 25],
  [19, 25],
  [22, 25],
  [24, 25],
  [30, 25],
  [194, 25],
  [2205, 25],
  [2206, 25],
  [4089, 25],
  [1003, 1009],
  [1034, 1009],
]);
const resultPrototype = (pg as unknown as { Result: { prototype: ResultPrototype } }).Result.prototype;
const addFields = resultPrototype.addFields;
resultPrototype.addFields = function (this: ResultPrototype, fields: FieldDescription[]) {
  for (const field of fields) field.dataTypeID = remap.get(field.dataTypeID) ?? field.dataTypeID;
  return addFields.call(this, fields);
};

interface ShadowAdapter {
  underlyingDriver(): { end(): Promise<void> };
  dispose(): Promise<void>;
}

// adapter-pg drops the shadow database before closing the shadow pool ("database ... is being
// accessed by other users", and the shadow database is left behind): close the pool first.
class ShadowSafePrismaPg extends PrismaPg {
  override async connectToShadowDb() {
    const adapter = await super.connectToShadowDb();
    const shadow = adapter as unknown as ShadowAdapter;
    const pool = shadow.underlyingDriver();
    const dispose = shadow.dispose.bind(adapter);
    const end = pool.end.bind(pool);
    pool.end = async () => {};
    shadow.dispose = async () => {
      await end();
      await dispose();
    };
    return adapter;
  }
}

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "./.schema.prisma", // derived from ../../prisma/schema.prisma by write_prisma6_schema
  migrations: { path: "../../prisma/migrations" },
  async adapter() {
    // Discrete fields, NOT a connectionString: with one, pg lets the URL's database win over the
    // shadow database name, and `migrate diff --from-migrations` replays into your real database.
    const url = new URL(process.env.DATABASE_URL ?? "");
    return new ShadowSafePrismaPg({
      host: url.hostname,
      port: Number(url.port || 5432),
      database: decodeURIComponent(url.pathname.slice(1)) || "postgres",
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      allowExitOnIdle: true,
    });
  },
});
