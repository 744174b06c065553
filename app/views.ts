// Helpers every template can use (set on app.locals).
import { djangoDateTime } from "./date-format.ts";
import { PY_SPACE } from "./forms/fields.ts";

/** Python's str.split(): runs of its whitespace, which is not JavaScript's \s. */
const PY_WORD_BREAK = new RegExp(`${PY_SPACE}+`);

export const viewHelpers = {
  site: {
    /** AdminSite.site_header and site_title, as a Django reader knows them */
    header: "Django administration",
    title: "Django site admin",
  },

  /** Dates as Django's templates show them: "Nov. 27, 2026, 2:05 p.m." */
  formatDateTime: djangoDateTime,

  /** The start of a post for the list page, cut at a word boundary. */
  excerpt(text: string, max = 140): string {
    const chars = [...text.replace(/\s+/g, " ").trim()];
    if (chars.length <= max) return chars.join("");
    const cut = chars.slice(0, max).join("");
    const lastSpace = cut.lastIndexOf(" ");
    return `${(lastSpace > max / 2 ? cut.slice(0, lastSpace) : cut).trimEnd()}…`;
  },

  /** Django's truncatewords filter: the first `max` words, then " …" if there were more. */
  truncateWords(text: string, max: number): string {
    const words = text.split(PY_WORD_BREAK).filter(Boolean);
    return words.length > max ? `${words.slice(0, max).join(" ")} …` : words.join(" ");
  },

  /** "?q=x&p=2" from the parameters that are set; "" when none are. null: a flag without a value ("all="). */
  query(params: Record<string, string | number | null | undefined>): string {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value === null) search.set(key, "");
      else if (value !== undefined && value !== "") search.set(key, String(value));
    }
    const text = search.toString();
    return text ? `?${text}` : "";
  },
};
