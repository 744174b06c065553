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
  it("gives the system's values where none is set, not libuv's 60 s, 1 s and 10 probes", () => {
    expect(keepaliveOf(settings({}))).toEqual({
      enable: true,
      idle: sysctl("time"),
      interval: sysctl("intvl"),
      count: sysctl("probes"),
    });
  });

  it("fills only what is not set", () => {
    expect(keepaliveOf(settings({ tcp_keepidle: "30" }))).toMatchObject({
      idle: 30,
      interval: sysctl("intvl"),
      count: sysctl("probes"),
    });
    expect(keepaliveOf(settings({ tcp_keepintvl: "5", tcp_keepcnt: "3" }))).toMatchObject({
      idle: sysctl("time"),
      interval: 5,
      count: 3,
    });
  });

  it("leaves the socket alone without tcp_keepalive, whatever else is set", () => {
    expect(keepaliveOf(settings({ tcp_keepalive: "0", tcp_keepidle: "5" }))).toEqual({
      enable: false,
      idle: 0,
      interval: 0,
      count: 0,
    });
  });
});

describe("keepalive settings", () => {
  it("takes whole seconds, as PgBouncer does, up to what the kernel takes", () => {
    expect(() => applySetting(defaultConfig(), "tcp_keepcnt", "128")).toThrow(
      /expected an integer from 0 to 127, got "128"/,
    );
    expect(() => applySetting(defaultConfig(), "tcp_keepintvl", "32768")).toThrow(
      /expected an integer from 0 to 32767, got "32768"/,
    );
    expect(() => applySetting(defaultConfig(), "tcp_keepidle", "0.5")).toThrow(
      /expected an integer from 0 to 32767, got "0.5"/,
    );
    expect(applySetting(defaultConfig(), "tcp_keepidle", "32767")).toBe("set");
  });
});
