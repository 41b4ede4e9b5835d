// The phone app's weak-signal half (issue 14): keep a compact snapshot of the stations
// around (GET /v1/app/snapshot), keep it fresh from the change feed, and answer
// "nearest" on the phone when the network is gone — in the server's order.
//
// Plain ES module, no framework. Distances are geodesics on the WGS-84 spheroid
// (Karney's algorithm, the npm package geographiclib-geodesic, pinned in
// package.json): the server orders by PostGIS ST_Distance(geography, use_spheroid),
// which is the same algorithm, and breaks ties by station code. The page loads
// /app/vendor/geographiclib-geodesic.min.js as a classic script (it sets
// `window.geodesic`); node tests call setGeodesic() with the npm module.

const DB_NAME = "geo-app";
const STORE = "snapshot";
const KEY = "current";
/** The snapshot format this module reads (snapshot_service.FORMAT). */
export const FORMAT = 1;

let geodesicLib = globalThis.geodesic || null;

/** Use this geographiclib-geodesic module (node, or a bundler) instead of the global. */
export function setGeodesic(lib) {
  geodesicLib = lib;
}

function wgs84() {
  if (!geodesicLib) throw new Error("geographiclib-geodesic is not loaded");
  return geodesicLib.Geodesic.WGS84;
}

// --- storage: IndexedDB -------------------------------------------------------------
// IndexedDB, not the Cache API: the snapshot is changed in place by the change feed,
// so it is kept as a structured object (no re-parse of ~150 KB of JSON per answer),
// and IndexedDB is reachable from both the page and the service worker.

function openDb(idb = globalThis.indexedDB) {
  return new Promise((resolve, reject) => {
    const req = idb.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function tx(db, mode, fn) {
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const req = fn(t.objectStore(STORE));
    t.oncomplete = () => resolve(req.result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  });
}

/** Keep the snapshot on the phone (replacing the one kept before). */
export async function saveSnapshot(s) {
  const db = await openDb();
  try {
    await tx(db, "readwrite", (store) => store.put(s, KEY));
  } finally {
    db.close();
  }
}

/** The snapshot kept on the phone, or null (none yet, or a format this code cannot read). */
export async function loadSnapshot() {
  const db = await openDb();
  try {
    const s = await tx(db, "readonly", (store) => store.get(KEY));
    return s && s.format === FORMAT ? s : null;
  } finally {
    db.close();
  }
}

// --- keeping it fresh ---------------------------------------------------------------

function indexOf(table, value) {
  let i = table.indexOf(value);
  if (i < 0) {
    table.push(value);
    i = table.length - 1;
  }
  return i;
}

/** True when the snapshot should be fetched whole again rather than patched. */
export function needsReload(s, now = Date.now(), maxAgeMs = 24 * 3600e3) {
  if (!s || s.format !== FORMAT) return true;
  const age = now - Date.parse(s.as_of);
  // Dated hours are known up to horizon_minute; reload a day before running out.
  const left = s.horizon_minute * 60e3 - now;
  return age > maxAgeMs || left < 24 * 3600e3 || (s.stale_hours || 0) > 0;
}

/**
 * Apply one page of /v1/feeds/changes to the snapshot, in place. A station that left
 * the published set gets status "gone" (filtered out like any unlisted status). A
 * station whose opening_hours text changed has its hours set to unknown (null) and is
 * counted in `stale_hours`: the phone cannot compile hours; the next full reload will.
 * New stations are appended with unknown hours for the same reason; a changed mobile
 * station's stops are dropped until the reload.
 */
export function applyChanges(s, page) {
  const st = s.stations;
  const at = new Map(st.code.map((c, i) => [c, i]));
  for (const ch of page.changes) {
    let i = at.get(ch.code);
    if (ch.op === "delete") {
      if (i !== undefined) st.status[i] = indexOf(s.statuses, "gone");
      continue;
    }
    const p = ch.feature.properties;
    const [lon, lat] = ch.feature.geometry.coordinates;
    let mask = 0;
    for (const a of p.amenities || []) {
      const bit = s.amenity_bits[typeof a === "string" ? a : a.code];
      if (bit !== undefined) mask += 2 ** bit;
    }
    const rule = p.opening_hours == null ? -1 : indexOf(s.rules, p.opening_hours);
    if (i === undefined) {
      i = st.code.length;
      at.set(ch.code, i);
      st.code.push(ch.code);
      st.hours.push(null);
      st.rule.push(-1);
      st.tz.push(indexOf(s.timezones, p.timezone || "Asia/Shanghai"));
      st.sample.push(p.sample ? 1 : 0);
      st.scheduled.push(0);
      if (st.reported) st.reported.push(0);
      for (const k of ["name", "lon", "lat", "status", "amenities", "host_type"]) st[k].push(null);
      if (p.opening_hours != null) s.stale_hours = (s.stale_hours || 0) + 1;
    }
    if (st.rule[i] !== rule) {
      st.hours[i] = null;
      if (rule !== -1) s.stale_hours = (s.stale_hours || 0) + 1;
      st.rule[i] = rule;
    }
    // A bus's stops carry no compiled hours in the feed: it is left out (scheduled, no
    // stops here) until the next full reload rather than shown at a stop it has left.
    if (p.stops && p.stops.length) {
      if (!st.scheduled[i]) st.scheduled[i] = 1;
      const sp = s.stops;
      for (let j = sp.station.length - 1; j >= 0; j--) {
        if (sp.station[j] === i) for (const col of Object.values(sp)) col.splice(j, 1);
      }
      s.stale_hours = (s.stale_hours || 0) + 1;
    }
    st.name[i] = p.name;
    st.lon[i] = Math.round(lon * 1e7) / 1e7;
    st.lat[i] = Math.round(lat * 1e7) / 1e7;
    st.status[i] = indexOf(s.statuses, ch.status);
    st.amenities[i] = mask;
    st.host_type[i] = indexOf(s.host_types, p.host_type);
  }
  s.cursor = page.next_cursor;
  return s;
}

/**
 * Fresh snapshot for the phone: fetched whole when there is none or it is old, else
 * patched from the change feed since its cursor. `fetchFn` is `fetch` (or a stand-in);
 * `where` is {lon, lat, n} or {area, n}. Returns the snapshot (also saved), or the kept
 * one unchanged when the network fails.
 */
export async function refreshSnapshot(fetchFn, where = {}, { base = "", store = true } = {}) {
  let s = store ? await loadSnapshot().catch(() => null) : null;
  try {
    if (needsReload(s)) {
      const q = new URLSearchParams();
      if (where.n) q.set("n", String(where.n));
      let url;
      if (where.area) {
        url = `${base}/v1/app/snapshot/areas/${encodeURIComponent(where.area)}?${q}`;
      } else {
        q.set("lon", String(where.lon));
        q.set("lat", String(where.lat));
        url = `${base}/v1/app/snapshot?${q}`;
      }
      const r = await fetchFn(url);
      if (!r.ok) throw new Error(`snapshot: HTTP ${r.status}`);
      s = await r.json();
    } else {
      for (let more = true; more;) {
        const r = await fetchFn(`${base}/v1/feeds/changes?since=${s.cursor}&limit=500`);
        if (!r.ok) throw new Error(`changes: HTTP ${r.status}`);
        const page = await r.json();
        applyChanges(s, page);
        more = page.has_more;
      }
    }
    if (store) await saveSnapshot(s);
  } catch (err) {
    if (!s) throw err;
  }
  return s;
}

// --- the street basemap's tiles for the snapshot's area ------------------------------

/** The XYZ tile holding (lon, lat) at zoom z (Web Mercator, as /tiles/base serves). */
export function tileOf(lon, lat, z) {
  const n = 2 ** z;
  const rad = (Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI) / 180;
  const x = Math.floor(((lon + 180) / 360) * n);
  const y = Math.floor(((1 - Math.asinh(Math.tan(rad)) / Math.PI) / 2) * n);
  return [Math.min(n - 1, Math.max(0, x)), Math.min(n - 1, Math.max(0, y))];
}

/**
 * The base-map tiles (/tiles/base/z/x/y.mvt) the worker keeps for offline use: at each
 * zoom, those over the snapshot's stations, cut to a window of `radius` tiles around the
 * rider's tile. Bounded by construction, (2·radius + 1)² a zoom at most: the whole area
 * at the low zooms, the streets around the rider at the deep ones. One area, replaced
 * with the snapshot: no trail of the places looked at.
 */
export function baseTiles(s, point, { minZoom = 11, maxZoom = 16, radius = 3 } = {}) {
  const lon = [...s.stations.lon, point.lon];
  const lat = [...s.stations.lat, point.lat];
  const w = Math.min(...lon), e = Math.max(...lon);
  const south = Math.min(...lat), north = Math.max(...lat);
  const out = [];
  for (let z = minZoom; z <= maxZoom; z++) {
    const [cx, cy] = tileOf(point.lon, point.lat, z);
    const [x0, y0] = tileOf(w, north, z);
    const [x1, y1] = tileOf(e, south, z);
    for (let x = Math.max(x0, cx - radius); x <= Math.min(x1, cx + radius); x++) {
      for (let y = Math.max(y0, cy - radius); y <= Math.min(y1, cy + radius); y++) {
        out.push(`/tiles/base/${z}/${x}/${y}.mvt`);
      }
    }
  }
  return out;
}

// --- hours --------------------------------------------------------------------------

const formatters = new Map();

/** Local minute of the ISO week (Monday 00:00 = 0) and local date "YYYY-MM-DD" in tz. */
export function localTime(ms, tz) {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", weekday: "short", year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit",
    });
    formatters.set(tz, f);
  }
  const p = {};
  for (const { type, value } of f.formatToParts(new Date(ms))) p[type] = value;
  const day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].indexOf(p.weekday);
  return {
    minuteOfWeek: day * 1440 + Number(p.hour) * 60 + Number(p.minute),
    date: `${p.year}-${p.month}-${p.day}`,
  };
}

const isoFormatters = new Map();

/** `ms` as the server writes station times: "YYYY-MM-DDTHH:MM:SS+08:00" in `tz`. */
export function isoIn(ms, tz) {
  let f = isoFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "longOffset",
    });
    isoFormatters.set(tz, f);
  }
  const p = {};
  for (const { type, value } of f.formatToParts(new Date(ms))) p[type] = value;
  const offset = p.timeZoneName === "GMT" ? "+00:00" : p.timeZoneName.slice(3);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}${offset}`;
}

function inRanges(flat, x) {
  for (let j = 0; j < flat.length; j += 2) if (flat[j] <= x && x < flat[j + 1]) return true;
  return false;
}

/**
 * Open at `ms` by compact hours: true, false, or null when nobody can tell (no hours,
 * an unknown stretch, past the horizon) — the server's geo_open_state.
 */
export function openState(s, hours, ms, tz) {
  if (!hours) return null;
  if (hours.w) return inRanges(hours.w, localTime(ms, tz).minuteOfWeek);
  const t = ms / 60e3 - s.base_minute;
  if (t < 0 || t >= hours.h) return null;
  if (inRanges(hours.u, t)) return null;
  return inRanges(hours.d, t);
}

/**
 * When the open state at `ms` next changes (ms, on a whole minute), as the server's
 * `next_change`: null when the state is unknown now, or when it does not change within
 * what the snapshot holds (a weekly rule: never; compiled dates: its horizon). A rule
 * known only up to a point inside the snapshot's window (the holiday calendar's last
 * covered day) changes to unknown there, as the server reports it.
 */
export function nextChange(s, hours, ms, tz) {
  const now = openState(s, hours, ms, tz);
  if (now === null) return null;
  const minute = Math.floor(ms / 60e3);
  if (hours.w) {
    const x = localTime(ms, tz).minuteOfWeek;
    const ahead = [...new Set(hours.w.map((b) => (((b - x) % 10080) + 10080) % 10080))]
      .filter((d) => d > 0).sort((a, b) => a - b);
    const d = ahead.find((dd) => inRanges(hours.w, (x + dd) % 10080) !== now);
    return d === undefined ? null : (minute + d) * 60e3;
  }
  const t = minute - s.base_minute;
  const state = (b) => (b >= hours.h || inRanges(hours.u, b) ? null : inRanges(hours.d, b));
  const end = hours.h < s.horizon_minute - s.base_minute ? [hours.h] : [];
  const b = [...hours.d, ...hours.u].filter((x) => x > t && x < hours.h).concat(end)
    .sort((p, q) => p - q).find((x) => state(x) !== now);
  return b === undefined ? null : (s.base_minute + b) * 60e3;
}

/** Is a stop's window open at `ms` (the server's geo_is_open: unknown counts as no). */
function stopOpen(s, hours, ms, tz) {
  if (!hours) return false;
  if (hours.w) return inRanges(hours.w, localTime(ms, tz).minuteOfWeek);
  const t = ms / 60e3 - s.base_minute;
  return t >= 0 && t < hours.h && inRanges(hours.d, t);
}

// --- nearest ------------------------------------------------------------------------

function popcount(x) {
  let n = 0;
  for (; x > 0; x = Math.floor(x / 2)) n += x % 2;
  return n;
}

/** Bitwise AND for masks above 2^31 (JS `&` works on 32 bits). */
function and(a, b) {
  let r = 0;
  for (let bit = 1; a > 0 && b > 0; bit *= 2, a = Math.floor(a / 2), b = Math.floor(b / 2)) {
    if (a % 2 && b % 2) r += bit;
  }
  return r;
}

/**
 * The k nearest qualifying stations, as GET /v1/stations/nearest answers them on the
 * same data: filters (statuses, amenities, host types, ten-ones, open now, radius),
 * mobile stations at their current stop, spheroid distance order, ties by code.
 *
 * Options: {lon, lat, k=5, radius_m, openNow=false, includeUnknown=false,
 * amenities=[], hostTypes=null, statuses=["open","temporarily_closed"],
 * minTenOnes=0, at=Date.now() (ms or Date)}.
 * Answers hold code, name, lon, lat, distance_m (cm), bearing_deg, status, open_now,
 * next_change (ISO in the station's zone, as the server), current_stop ({seq, name} or null), reported_closed (as of the
 * snapshot), sample; and `complete` tells whether the
 * search radius stayed inside the part of the map the snapshot holds in full.
 */
export function nearestOffline(s, opts) {
  const {
    lon, lat, k = 5, openNow = false, includeUnknown = false, amenities = [],
    hostTypes = null, statuses = ["open", "temporarily_closed"], minTenOnes = 0,
  } = opts;
  const radius = opts.radius_m ?? s.default_radius_m;
  const ms = opts.at === undefined ? Date.now() : +new Date(opts.at);
  const want = amenities.reduce((m, a) => m + 2 ** s.amenity_bits[a], 0);
  const st = s.stations;
  const g = wgs84();
  const okStatus = new Set(statuses.map((x) => s.statuses.indexOf(x)).filter((i) => i >= 0));
  const okHost = hostTypes && new Set(hostTypes.map((x) => s.host_types.indexOf(x)));
  const openIdx = s.statuses.indexOf("open");

  const passes = (i) => okStatus.has(st.status[i])
    && and(st.amenities[i], want) === want
    && (!okHost || okHost.has(st.host_type[i]))
    && (minTenOnes === 0 || popcount(and(st.amenities[i], s.ten_ones_mask)) >= minTenOnes);

  const rows = [];
  const place = (i, plon, plat, open, stop, hours, tz) => {
    const r = g.Inverse(lat, lon, plat, plon);
    if (r.s12 > radius) return;
    const change = st.status[i] === openIdx && hours ? nextChange(s, hours, ms, tz) : null;
    rows.push({
      code: st.code[i], name: st.name[i], lon: plon, lat: plat, distance: r.s12,
      distance_m: Math.round(r.s12 * 100) / 100,
      bearing_deg: Math.round((((r.azi1 % 360) + 360) % 360) * 10) / 10,
      status: s.statuses[st.status[i]], open_now: open, current_stop: stop,
      next_change: change === null ? null : isoIn(change, tz),
      reported_closed: !!(st.reported && st.reported[i]), sample: !!st.sample[i],
    });
  };

  for (let i = 0; i < st.code.length; i++) {
    if (st.scheduled[i] || !passes(i)) continue;
    const tz = s.timezones[st.tz[i]];
    const state = st.status[i] === openIdx ? openState(s, st.hours[i], ms, tz) : false;
    if (openNow && !(st.status[i] === openIdx && (state ?? includeUnknown))) continue;
    place(i, st.lon[i], st.lat[i], state, null, st.hours[i], tz);
  }
  const sp = s.stops;
  for (let j = 0; j < sp.station.length; j++) {
    const i = sp.station[j];
    if (st.status[i] !== openIdx || !passes(i)) continue;
    const tz = s.timezones[st.tz[i]];
    const { date } = localTime(ms, tz);
    if (sp.valid_from[j] && sp.valid_from[j] > date) continue;
    if (sp.valid_to[j] && sp.valid_to[j] < date) continue;
    if (!stopOpen(s, sp.hours[j], ms, tz)) continue;
    place(i, sp.lon[j], sp.lat[j], true, { seq: sp.seq[j], name: sp.name[j] }, sp.hours[j], tz);
  }
  rows.sort((a, b) => a.distance - b.distance || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
  const complete = s.complete_within_m == null || radius <= s.complete_within_m
    || (rows.length >= k && rows[k - 1].distance <= s.complete_within_m);
  const out = rows.slice(0, k).map(({ distance, ...r }) => r);
  out.complete = complete;
  return out;
}
