// Nearest computed "on the phone" by geo_service/app/static/offline.js, for the tests
// and the bench: reads {snapshot, changes?: [pages of /v1/feeds/changes], queries: [...nearestOffline
// options]} as JSON on stdin; applies the pages with applyChanges, then answers the queries;
// prints {answers: [[...rows], ...], ms_per_query}.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const root = new URL("../../", import.meta.url);
const require = createRequire(new URL("package.json", root));
const offline = await import(new URL("geo_service/app/static/offline.js", root));
offline.setGeodesic(require("geographiclib-geodesic"));

const input = JSON.parse(readFileSync(0, "utf8"));
for (const page of input.changes || []) offline.applyChanges(input.snapshot, page);
const t0 = performance.now();
const answers = input.queries.map((q) => {
  const rows = offline.nearestOffline(input.snapshot, q);
  return { complete: rows.complete, rows: [...rows] };
});
const ms = (performance.now() - t0) / Math.max(1, input.queries.length);
process.stdout.write(JSON.stringify({ answers, ms_per_query: ms }));
