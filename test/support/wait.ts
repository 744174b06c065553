// Polling for a condition in tests: the pooler's janitor and other processes act on their own time.

/** Resolves once `cond` holds (it may be async); fails naming `what` after `ms`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 5000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `f` while an immediate callback counts the event loop's turns; gives `f`'s result and the turns. */
export async function watchTurns<T>(f: () => Promise<T>): Promise<{ result: T; turns: number }> {
  let turns = 0;
  let watching = true;
  const turn = (): void => {
    turns++;
    if (watching) setImmediate(turn);
  };
  setImmediate(turn);
  const result = await f().finally(() => (watching = false));
  return { result, turns };
}
