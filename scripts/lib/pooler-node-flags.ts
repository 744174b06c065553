// How the pooler's Node.js process is started, wherever it is (npm start, the benches, the tests;
// docker-compose.yaml and package.json's "pooler" script spell the same flags out).
//
// V8 grows its young generation up to 16 MiB per semi-space when many objects survive, as during a
// burst of logins, and keeps those pages: at 10,000 idle clients that was 1.8 kB of RSS per client
// on Node 20, and 2.1 kB on Node 24 (4.71-4.75 kB per client with 16 MiB, 2.59-2.62 with 4, read 3 s
// after the logins).
// 4 MiB is already more than the hot path fills between two scavenges (as many scavenges as with
// the default under pgbench), so the cap costs nothing there.
//
// V8 optimizes hot functions on its worker threads by default, and glibc gives each thread its own
// malloc arena: the compilers' scratch memory, once freed, stays resident there (4.8 MB after 10,000
// logins into a fresh pooler, about 0.5 kB of each idle client's share). Compiled on the main
// thread, it is freed into the main arena, whose later allocations (the sockets') reuse it: 1.46-1.53
// kB per idle client against 1.82-2.08 (README, issue 6). The price is the compile time itself on the
// event loop while the code warms up (0.6 s in all over the first seconds of traffic, the longest
// single stall 20 ms); once warm, an A/B showed no difference in CPU per transaction.
export const POOLER_NODE_FLAGS = ["--max-semi-space-size=4", "--no-concurrent-recompilation"];
