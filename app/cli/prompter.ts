// Line-by-line questions on a stream, with a hidden mode for passwords. On a terminal the typed
// characters of a hidden answer are not echoed (readline writes its echo to a muted stream); a
// pipe or a test stream has no echo to begin with. Lines that arrive before the question is asked
// (a pipe delivers everything at once) are queued instead of being lost.
import readline from "node:readline";
import { Writable } from "node:stream";

export class Cancelled extends Error {
  constructor() {
    super("Operation cancelled.");
  }
}

export class Prompter {
  private readonly rl: readline.Interface;
  private readonly queued: string[] = [];
  private waiting: { resolve: (line: string) => void; reject: (err: Error) => void } | undefined;
  private closed = false;
  private muted = false;

  constructor(
    input: NodeJS.ReadableStream & { isTTY?: boolean },
    private readonly output: NodeJS.WritableStream,
  ) {
    const echo = new Writable({
      write: (chunk, _encoding, done) => {
        if (!this.muted) output.write(chunk);
        done();
      },
    });
    // historySize 0: no password is kept in readline's up-arrow history.
    this.rl = readline.createInterface({
      input,
      output: echo,
      terminal: Boolean(input.isTTY),
      historySize: 0,
    });
    this.rl.on("line", (line) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      if (waiting) waiting.resolve(line);
      else this.queued.push(line);
    });
    this.rl.on("close", () => {
      this.closed = true;
      this.waiting?.reject(new Cancelled());
    });
    // Ctrl-C on a terminal (readline catches it in raw mode).
    this.rl.on("SIGINT", () => this.rl.close());
  }

  async ask(question: string, { hidden = false } = {}): Promise<string> {
    // Once the input has ended (a pipe's lines are all queued by then), readline refuses to
    // prompt (Node 24 throws), but the queued answers still need their questions shown.
    if (this.closed) this.output.write(question);
    else {
      this.rl.setPrompt(question);
      this.rl.prompt();
    }
    this.muted = hidden;
    try {
      return await this.nextLine();
    } finally {
      if (hidden) {
        this.muted = false;
        // the Enter key's echo was muted too
        this.output.write("\n");
      }
    }
  }

  private nextLine(): Promise<string> {
    const line = this.queued.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.closed) return Promise.reject(new Cancelled());
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  close(): void {
    this.rl.close();
  }
}
