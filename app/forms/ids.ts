import { pythonInt } from "../python-int.ts";

const MAX_INT4 = 2 ** 31 - 1;

/**
 * A post's id from a URL or the changelist's action form, as Django reads one (get_object and
 * pk__in: the pk field's int(), so `01`, `+1` and `１` name post 1), or undefined for text that names
 * none: not an int, or outside the positive int4 range the table's ids have.
 */
export function parseId(raw: unknown): number | undefined {
  const id = typeof raw === "string" ? pythonInt(raw) : undefined;
  return id !== undefined && id >= 1 && id <= MAX_INT4 ? id : undefined;
}
