import { describe, expect, it } from "vitest";
import { elidedPageRange, paginate } from "../../app/pagination.ts";

describe("paginate", () => {
  it("computes pages from 1, with an empty first page allowed", () => {
    expect(paginate(0, 10, undefined)).toMatchObject({ number: 1, numPages: 1, offset: 0, hasNext: false });
    expect(paginate(25, 10, "3")).toMatchObject({
      number: 3,
      numPages: 3,
      offset: 20,
      hasPrevious: true,
      hasNext: false,
    });
    expect(paginate(25, 10, "")).toMatchObject({ number: 1 });
  });

  it("reports pages that are out of range or not whole numbers as invalid", () => {
    for (const bad of ["0", "4", "-1", "1.5", "two", ["1"], "9999999999999"]) {
      expect(paginate(25, 10, bad)).toBeUndefined();
    }
  });
});

describe("elidedPageRange", () => {
  const range = (number: number, numPages: number) =>
    elidedPageRange(paginate(numPages * 10, 10, String(number))!);

  it("lists every page when there are few", () => {
    expect(range(1, 5)).toEqual([1, 2, 3, 4, 5]);
  });

  it("elides like Django's get_elided_page_range", () => {
    expect(range(1, 50)).toEqual([1, 2, 3, 4, "…", 49, 50]);
    expect(range(25, 50)).toEqual([1, 2, "…", 22, 23, 24, 25, 26, 27, 28, "…", 49, 50]);
    expect(range(50, 50)).toEqual([1, 2, "…", 47, 48, 49, 50]);
  });
});
