// Result sets of the admin console as PgBouncer sends them: a RowDescription with PostgreSQL type
// OIDs, text-format DataRows, CommandComplete. Columns are declared over typed rows, so a column
// name is also the property the value comes from.
import { commandComplete, dataRow, noticeResponse, rowDescription } from "../protocol/messages.ts";

/** The column types PgBouncer's admin.c uses ('s', 'i', 'q', 'N'; 'T' timestamps are text too). */
export const PgType = {
  text: { typeOid: 25, typeLen: -1 },
  int4: { typeOid: 23, typeLen: 4 },
  int8: { typeOid: 20, typeLen: 8 },
  numeric: { typeOid: 1700, typeLen: -1 },
} as const;

export type PgTypeName = keyof typeof PgType;

export type Cell = string | number | null;

export interface Column<R> {
  name: keyof R & string;
  type: PgTypeName;
}

/** Shorthand for a column list: `cols<Row>({ database: "text", cl_active: "int4" })`, in order. */
export function cols<R>(spec: { [K in keyof R & string]?: PgTypeName }): Column<R>[] {
  return Object.entries(spec).map(([name, type]) => ({
    name: name as keyof R & string,
    type: type as PgTypeName,
  }));
}

function cellText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return String(value);
}

/** A NOTICE to the console user (SHOW HELP, ignored SETs). */
export function notice(message: string, detail?: string): Buffer {
  return noticeResponse({
    severity: "NOTICE",
    code: "00000",
    message,
    ...(detail === undefined ? {} : { detail }),
  });
}

/** The messages of one result set (without ReadyForQuery, which the console adds). */
export function resultSet<R>(columns: readonly Column<R>[], rows: readonly R[], tag = "SHOW"): Buffer[] {
  return [
    rowDescription(columns.map((c) => ({ name: c.name, ...PgType[c.type] }))),
    ...rows.map((row) => dataRow(columns.map((c) => cellText(row[c.name])))),
    commandComplete(tag),
  ];
}
