// docs/bench-chart.svg: median TPS per pgbench config, direct vs PgBouncer vs ours, as a grouped bar
// chart. Hand-written SVG (a few rects and texts) on a white background, so GitHub shows it the same
// in light and dark mode.
import { LABELS, TARGETS, type ConfigResult, type Target } from "./results.ts";

const COLORS: Record<Target, string> = { direct: "#9ca3af", pgbouncer: "#2563eb", ours: "#ea580c" };
const BAR = 26;
const BAR_GAP = 4;
const GROUP_GAP = 34;
const GROUP = TARGETS.length * BAR + (TARGETS.length - 1) * BAR_GAP;
const LEFT = 64;
const TOP = 80;
const PLOT_HEIGHT = 260;
const MIN_WIDTH = 560; // room for the title and the legend
const FONT = "font-family=\"-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\"";

const escape = (s: string): string =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/** A round step for about five gridlines up to `max`. */
function gridStep(max: number): number {
  const raw = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
}

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${x}" y="${y}" ${attrs}>${escape(s)}</text>`;
}

export function renderChart(configs: ConfigResult[], subtitle: string): string {
  const max = Math.max(1, ...configs.flatMap((c) => TARGETS.map((t) => c.targets[t]?.tps?.median ?? 0)));
  const step = gridStep(max);
  const top = Math.ceil(max / step) * step;
  const y = (v: number): number => TOP + PLOT_HEIGHT - (v / top) * PLOT_HEIGHT;
  const plotWidth = configs.length * (GROUP + GROUP_GAP);
  const width = Math.max(LEFT + plotWidth + 16, MIN_WIDTH);
  const missing = configs.filter((c) => TARGETS.some((t) => !c.targets[t]?.tps));
  const height = TOP + PLOT_HEIGHT + 56 + (missing.length ? 20 : 0);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12" fill="#1f2328">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    text(
      LEFT,
      22,
      "pgbench median TPS: direct vs PgBouncer vs ours (higher is better)",
      'font-size="15" font-weight="600"',
    ),
    text(LEFT, 40, subtitle, 'fill="#57606a"'),
  ];

  TARGETS.forEach((t, i) => {
    const x = LEFT + i * 110;
    out.push(
      `<rect x="${x}" y="48" width="12" height="12" fill="${COLORS[t]}"/>`,
      text(x + 17, 58, LABELS[t]),
    );
  });

  for (let v = 0; v <= top; v += step) {
    out.push(
      `<line x1="${LEFT}" x2="${LEFT + plotWidth}" y1="${y(v)}" y2="${y(v)}" stroke="#d0d7de"/>`,
      text(LEFT - 6, y(v) + 4, v.toLocaleString("en-US"), 'text-anchor="end" fill="#57606a"'),
    );
  }

  configs.forEach((c, g) => {
    const x0 = LEFT + GROUP_GAP / 2 + g * (GROUP + GROUP_GAP);
    TARGETS.forEach((t, i) => {
      const x = x0 + i * (BAR + BAR_GAP);
      const cx = x + BAR / 2;
      const tps = c.targets[t]?.tps?.median;
      if (tps === undefined) {
        out.push(text(cx, y(0) - 5, "×", `text-anchor="middle" font-size="14" fill="${COLORS[t]}"`));
        return;
      }
      out.push(
        `<rect x="${x}" y="${y(tps)}" width="${BAR}" height="${y(0) - y(tps)}" fill="${COLORS[t]}"/>`,
        text(cx, y(tps) - 4, tps.toFixed(0), 'text-anchor="middle" font-size="9"'),
      );
    });
    const [workload, clients] = c.config.split("@");
    const cx = x0 + GROUP / 2;
    out.push(
      text(cx, y(0) + 18, workload ?? c.config, 'text-anchor="middle"'),
      text(cx, y(0) + 34, `${clients} clients`, 'text-anchor="middle" fill="#57606a"'),
    );
  });

  if (missing.length) {
    // one note per reason, e.g. "direct refused (too many clients) in select:simple@200, …@200"
    const reasons = new Map<string, string[]>();
    for (const c of missing) {
      for (const t of TARGETS.filter((t) => !c.targets[t]?.tps)) {
        const reason = `${LABELS[t]} ${c.targets[t]?.failure ?? "not run"}`;
        reasons.set(reason, [...(reasons.get(reason) ?? []), c.config]);
      }
    }
    const notes = [...reasons].map(([reason, cfgs]) => `${reason} in ${cfgs.join(", ")}`);
    out.push(text(LEFT, height - 12, `× no result: ${notes.join("; ")}`, 'fill="#57606a"'));
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
