import { describe, expect, it } from "vitest";
import { elidedPageRange, getPage, paginate } from "../../app/pagination.ts";
import { pythonInt } from "../../app/python-int.ts";

describe("paginate", () => {
  it("computes pages from 1, with an empty first page allowed", () => {
    expect(paginate(0, 10, 1)).toMatchObject({ number: 1, numPages: 1, offset: 0, hasNext: false });
    expect(paginate(25, 10, 3)).toMatchObject({
      number: 3,
      numPages: 3,
      offset: 20,
      hasPrevious: true,
      hasNext: false,
    });
    expect(paginate(25, 10, "last")).toMatchObject({ number: 3 });
    expect(paginate(0, 10, "last")).toMatchObject({ number: 1 });
  });

  it("reports pages that are out of range as invalid", () => {
    for (const bad of [0, 4, -1, 1e20]) expect(paginate(25, 10, bad)).toBeUndefined();
  });
});

describe("pythonInt", () => {
  it("reads what Python's int() reads", () => {
    for (const [text, n] of [
      ["3", 3],
      [" +2 ", 2],
      ["-1", -1],
      ["1_0", 10],
      ["\t7\n", 7],
      ["\u00a08\u3000", 8],
      ["２", 2],
      ["٣", 3],
      ["१०", 10],
      ["\u{1D7D9}", 1], // MATHEMATICAL DOUBLE-STRUCK DIGIT ONE, in the second of five runs back to back
      ["007", 7],
    ] as const) {
      expect(pythonInt(text), text).toBe(n);
    }
  });

  it("refuses what int() raises ValueError for", () => {
    for (const text of ["", " ", "two", "1.5", "1e3", "_1", "1_", "1__0", "+-1", "0x10", "1 2", "Ⅻ", "²"]) {
      expect(pythonInt(text), text).toBeUndefined();
    }
  });

  it("refuses more than 4,300 digits, as int() does (sys.int_info.default_max_str_digits)", () => {
    // the digits count, leading zeros too; the sign, underscores and space around them do not
    for (const text of ["1".repeat(4301), "0".repeat(4300) + "1", "２".repeat(4301)]) {
      expect(pythonInt(text), `${text.length} characters`).toBeUndefined();
    }
    for (const text of [
      "0".repeat(4299) + "1",
      `-${"0".repeat(4300)}`,
      `${"0_".repeat(4299)}1`,
      ` ${"0".repeat(4300)} `,
    ]) {
      expect(pythonInt(text), `${text.length} characters`).not.toBeUndefined();
    }
  });
});

describe("getPage", () => {
  it("is Django's Paginator.get_page: not an int is page 1, out of range the last page", () => {
    expect(getPage(25, 10, "x").number).toBe(1);
    expect(getPage(25, 10, "9").number).toBe(3);
    expect(getPage(25, 10, "9".repeat(400)).number).toBe(3);
    // int() raises ValueError (PageNotAnInteger) past 4,300 digits
    expect(getPage(25, 10, "9".repeat(4301)).number).toBe(1);
  });
});

describe("elidedPageRange", () => {
  const range = (number: number, numPages: number) => elidedPageRange(paginate(numPages * 10, 10, number)!);

  it("lists every page when there are few", () => {
    expect(range(1, 5)).toEqual([1, 2, 3, 4, 5]);
  });

  it("elides like Django's get_elided_page_range", () => {
    expect(range(1, 50)).toEqual([1, 2, 3, 4, "…", 49, 50]);
    expect(range(25, 50)).toEqual([1, 2, "…", 22, 23, 24, 25, 26, 27, 28, "…", 49, 50]);
    expect(range(50, 50)).toEqual([1, 2, "…", 47, 48, 49, 50]);
  });
});
