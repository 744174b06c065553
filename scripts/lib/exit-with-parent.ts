// Preloaded (node --import) into the pooler and the app that `npm start` runs. Killed hard (kill -9,
// the OOM killer), npm start cannot stop them, and they would go on holding their ports with no one
// to stop them, so that the next `npm start` refuses to run: once re-parented, they stop themselves
// as on a SIGTERM.
const parent = process.ppid;
const watch = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(watch);
  process.kill(process.pid, "SIGTERM");
}, 1000).unref();
