// Django's English DATETIME_FORMAT, "N j, Y, P" (django/conf/locale/en/formats.py), in UTC, the
// TIME_ZONE of a project made by startproject: "Nov. 27, 2026, 2:05 p.m.", "Jan. 1, 2026, midnight".

/** Django's MONTHS_AP: the Associated Press's month abbreviations (format "N"). */
const MONTHS_AP = [
  "Jan.",
  "Feb.",
  "March",
  "April",
  "May",
  "June",
  "July",
  "Aug.",
  "Sept.",
  "Oct.",
  "Nov.",
  "Dec.",
];

/** Format "P": 12-hour time with a.m./p.m., no ":00", and "midnight" and "noon" by name. */
function timeP(hour: number, minute: number): string {
  if (minute === 0 && hour === 0) return "midnight";
  if (minute === 0 && hour === 12) return "noon";
  const h12 = hour % 12 || 12;
  const time = minute === 0 ? String(h12) : `${h12}:${String(minute).padStart(2, "0")}`;
  return `${time} ${hour > 11 ? "p.m." : "a.m."}`;
}

export function djangoDateTime(date: Date): string {
  const year = String(date.getUTCFullYear()).padStart(4, "0");
  const day = `${MONTHS_AP[date.getUTCMonth()]} ${date.getUTCDate()}, ${year}`;
  return `${day}, ${timeP(date.getUTCHours(), date.getUTCMinutes())}`;
}
