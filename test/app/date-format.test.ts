// Dates as Django shows them with its English DATETIME_FORMAT, "N j, Y, P", in UTC (startproject's TIME_ZONE).
import { describe, expect, it } from "vitest";
import { viewHelpers } from "../../app/views.ts";

const at = (iso: string) => viewHelpers.formatDateTime(new Date(iso));

describe("formatDateTime", () => {
  it("writes months in Associated Press style (N) and the day without a leading zero (j)", () => {
    expect(at("2026-11-27T14:05:00Z")).toBe("Nov. 27, 2026, 2:05 p.m.");
    expect(at("2026-09-03T09:30:00Z")).toBe("Sept. 3, 2026, 9:30 a.m.");
    expect(at("2026-03-01T10:15:00Z")).toBe("March 1, 2026, 10:15 a.m.");
    expect(at("2026-07-04T23:59:59Z")).toBe("July 4, 2026, 11:59 p.m.");
    expect(at("2026-05-05T00:01:00Z")).toBe("May 5, 2026, 12:01 a.m.");
  });

  it("leaves out zero minutes and names midnight and noon (P)", () => {
    expect(at("2026-01-01T01:00:00Z")).toBe("Jan. 1, 2026, 1 a.m.");
    expect(at("2026-01-01T00:00:00Z")).toBe("Jan. 1, 2026, midnight");
    expect(at("2026-01-01T12:00:00Z")).toBe("Jan. 1, 2026, noon");
    expect(at("2026-01-01T00:30:00Z")).toBe("Jan. 1, 2026, 12:30 a.m.");
    expect(at("2026-01-01T12:30:00Z")).toBe("Jan. 1, 2026, 12:30 p.m.");
  });

  it("shows the time in UTC whatever the server's zone", () => {
    // Node reads TZ again when it is set: the process's zone, 14 hours ahead of UTC (a new day there)
    const zone = process.env.TZ;
    process.env.TZ = "Pacific/Kiritimati";
    try {
      expect(at("2026-12-31T23:00:00-05:00")).toBe("Jan. 1, 2027, 4 a.m.");
      expect(at("2026-06-30T12:00:00Z")).toBe("June 30, 2026, noon");
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });
});
