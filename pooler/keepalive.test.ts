import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { applySetting, defaultConfig } from "./config/settings.ts";
import { keepaliveOf } from "./keepalive.ts";

const sysctl = (name: string): number =>
  Number(readFileSync(`/proc/sys/net/ipv4/tcp_keepalive_${name}`, "utf8").trim());

function settings(values: Record<string, string>) {
  const c = defaultConfig();
  for (const [key, value] of Object.entries(values)) applySetting(c, key, value);
  return c;
}

describe("keepaliveOf", () => {
  it("leaves the system's values alone when none of the three is set", () => {
    expect(keepaliveOf(settings({}))).toEqual({ enable: true, idle: 0, interval: 0, count: 0 });
    expect(keepaliveOf(settings({ tcp_keepalive: "0", tcp_keepidle: "5" }))).toEqual({
      enable: false,
      idle: 0,
      interval: 0,
      count: 0,
    });
  });

  it("fills what is not set from the system's sysctls, not libuv's 1 s and 10 probes", () => {
    expect(keepaliveOf(settings({ tcp_keepidle: "30" }))).toEqual({
      enable: true,
      idle: 30,
      interval: sysctl("intvl"),
      count: sysctl("probes"),
    });
    expect(keepaliveOf(settings({ tcp_keepcnt: "3" }))).toEqual({
      enable: true,
      idle: sysctl("time"),
      interval: sysctl("intvl"),
      count: 3,
    });
  });

  it("rounds a fraction of a second up, as the kernel counts whole seconds and 0 means unset", () => {
    expect(keepaliveOf(settings({ tcp_keepidle: "0.5", tcp_keepintvl: "2.1", tcp_keepcnt: "4" }))).toEqual({
      enable: true,
      idle: 1,
      interval: 3,
      count: 4,
    });
  });
});

describe("keepalive settings", () => {
  it("refuses values the kernel would refuse on every socket", () => {
    expect(() => applySetting(defaultConfig(), "tcp_keepcnt", "128")).toThrow(
      /expected an integer from 0 to 127, got "128"/,
    );
    expect(() => applySetting(defaultConfig(), "tcp_keepintvl", "32768")).toThrow(
      /expected a number of seconds from 0 to 32767, got "32768"/,
    );
    expect(() => applySetting(defaultConfig(), "tcp_keepidle", "-1")).toThrow(/expected a number of seconds/);
    expect(applySetting(defaultConfig(), "tcp_keepidle", "32767")).toBe("set");
  });
});
