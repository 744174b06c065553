// The prepared-statement fuzzer's conversations (prepared-cases.ts) must stay clear of the sequence
// that crashes PostgreSQL 13.23 itself, or a random seed's run ends on a server crash that hides the
// pooler's own bugs: an Execute of the unnamed portal that no Bind of the same write made.
import { expect, it } from "vitest";
import { conversation } from "./prepared-cases.ts";
import { Rng } from "./rng.ts";

/** The portal a Bind ('B') or Execute ('E') names: the string right after the header. */
function portalOf(msg: Buffer): string {
  return msg.toString("utf8", 5, msg.indexOf(0, 5));
}

it("executes the unnamed portal only in the write that bound it, after its Bind", () => {
  const stray: string[] = [];
  // the fixed seed, and two random seeds whose runs ended on PostgreSQL's SIGSEGV
  for (const seed of [20260611, 257165711, 2464553564]) {
    const rng = new Rng(seed);
    for (let n = 0; n < 500; n++) {
      for (const step of conversation(rng.fork(), 8)) {
        let bound = false;
        for (const { code, bytes } of step.send) {
          const type = String.fromCharCode(bytes[0]!);
          if (type === "S" || type === "Q") bound = false;
          else if (type === "B" && portalOf(bytes) === "") bound = true;
          else if (type === "E" && portalOf(bytes) === "" && !bound)
            stray.push(`seed ${seed} #${n}: ${code}`);
        }
      }
    }
  }
  expect(stray.slice(0, 5)).toEqual([]);
});
