// What the page holds and where it gets it: the rider's choices kept on the phone
// (localStorage), the service's JSON API, the server's vocabulary, and the snapshot of
// stations kept on the phone for a weak signal (offline.js, loaded on first need).

import { T, addWords, setVocabulary, tenOnes } from "./i18n.js";

export const K = 5;
// "24 hours" has no API parameter: it asks for more and keeps those whose hours are 24/7.
export const K_24H = 50;

// Filter chips: an amenity code goes to the API's `amenities`; open_now to `open_now`;
// h24 keeps the 24/7 ones. The amenities' labels are the server's (i18n.js amenityName).
const AMENITY_CHIPS = ["microwave", "restroom", "water_dispenser", "phone_charging"];
export const CHIPS = ["open_now", ...AMENITY_CHIPS, "h24"];

/** The amenity codes the chips switched on ask for. */
export function wantedAmenities(chips) {
  return AMENITY_CHIPS.filter((c) => chips[c]);
}

export const store = {
  get(key, fallback) {
    try { const v = localStorage.getItem(key); return v === null ? fallback : JSON.parse(v); }
    catch { return fallback; }
  },
  set(key, value) { try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* full */ } },
};

export const state = {
  // The language shown: Chinese until another one's words are here (loadWords); the
  // rider's choice, kept in geo.lang, is applied by app.js once they are.
  lang: "zh",
  chips: store.get("geo.chips", { open_now: true }),
  point: null, // {lon, lat, source: "gps" | "tap" | "district"}
  results: [],
  seq: 0,
};

export const $ = (id) => document.getElementById(id);
export const t = (key) => T[state.lang][key];

let english = null;

/** The words of `lang` in T, fetched on first need: English is its own module
 * (i18n-en.js), off the way to a Chinese reader's first list. */
export function loadWords(lang) {
  if (lang !== "en") return Promise.resolve();
  english = english || import("./i18n-en.js").then((m) => addWords("en", m.EN), (err) => {
    english = null; // not loaded (no network, not kept yet): the next choice asks again
    throw err;
  });
  return english;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function deviceId() {
  let id = store.get("geo.device", null);
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    store.set("geo.device", id);
  }
  return id;
}

// `/app/?at=2026-12-01T11:00:00` shows the list as it will be then (a bus's stops, hours):
// for checking a schedule, and for tests. Passed to the API as is; the API checks it.
export const AT = new URLSearchParams(location.search).get("at");

/** The station code of the page's address (`/app/s/CODE` or `#/s/CODE`), or null: the list. */
export function stationCode() {
  const h = location.hash.match(/^#\/s\/([^/?#]+)/);
  if (h) return decodeURIComponent(h[1]);
  const p = location.pathname.match(/^\/app\/s\/([^/?#]+)/);
  return p ? decodeURIComponent(p[1]) : null;
}

export async function getJson(url, opts = {}) {
  const r = await fetch(url, { headers: { Accept: "application/json" }, ...opts });
  const body = await r.json().catch(() => null);
  // The service worker's stand-in when the network is gone (the last answer it kept).
  const offline = r.headers.get("X-Geo-Offline") === "1";
  return { status: r.status, ok: r.ok && !offline, offline, body };
}

/** /app/config.json's answer, asked once at start: the map reads its basemap, the list
 * whether roads are loaded (kept on the phone, so a next visit need not wait for it). */
export const config = getJson("/app/config.json").catch(() => null);
config.then((c) => {
  if (!c || !c.ok) return;
  store.set("geo.roads", Boolean(c.body.roads));
  store.set("geo.roads_bbox", c.body.roads_bbox || null);
});

/** Whether the list asks nearest by road from `point`: roads are loaded and the point
 * lies in their extent (grown by the server's snap limit), as config.json last said
 * (waited for only on a first visit). Elsewhere the server refuses by road (409), so the
 * page asks straight-line at once. */
export async function byRoad(point) {
  let on = store.get("geo.roads", null);
  let box = store.get("geo.roads_bbox", null);
  if (on === null) {
    const c = await config;
    on = Boolean(c && c.ok && c.body.roads);
    box = c && c.ok ? c.body.roads_bbox || null : null;
  }
  if (!on) return false;
  return !box || !point || (point.lon >= box[0] && point.lat >= box[1]
    && point.lon <= box[2] && point.lat <= box[3]);
}

// --- weak signal: the snapshot kept on the phone (offline.js) -------------------------------

const SNAPSHOT_N = 1000; // stations kept around the last position (~20 KB gzipped)
const SNAPSHOT_EVERY_MS = 10 * 60e3;
// A snapshot synced this recently answers first while the server's answer is on its way.
export const PROVISIONAL_MAX_AGE_MS = 60 * 60e3;
let offlineModule = null;

export function loadScript(src) {
  return new Promise((ok, fail) => {
    const s = document.createElement("script");
    s.src = src; s.onload = ok; s.onerror = fail;
    document.head.append(s);
  });
}

/** offline.js with Karney's geodesics loaded, on first need (not on the first paint). */
export async function offline() {
  if (!offlineModule) {
    const mod = await import("./offline.js");
    if (!window.geodesic) await loadScript("/app/vendor/geodesic.js");
    mod.setGeodesic(window.geodesic);
    offlineModule = mod;
  }
  return offlineModule;
}

/** Keep the stations around the point on the phone: patched from the change feed every
 * few minutes, fetched whole when the point leaves the part the snapshot holds in full. */
export async function keepSnapshot(point) {
  const last = store.get("geo.snapshot_at", 0);
  try {
    const off = await offline();
    let snap = await off.loadSnapshot().catch(() => null);
    const probe = snap && off.nearestOffline(snap, { lon: point.lon, lat: point.lat, k: K });
    const covers = probe && probe.complete;
    if (covers && Date.now() - last < SNAPSHOT_EVERY_MS) return;
    if (snap && !covers) {
      const p = new URLSearchParams({ lon: point.lon.toFixed(6), lat: point.lat.toFixed(6),
        n: String(SNAPSHOT_N) });
      const r = await fetch(`/v1/app/snapshot?${p}`);
      if (!r.ok) return;
      snap = await r.json();
      await off.saveSnapshot(snap);
    } else {
      snap = await off.refreshSnapshot(fetch, { lon: point.lon, lat: point.lat, n: SNAPSHOT_N });
    }
    store.set("geo.snapshot_at", Date.now());
    document.body.dataset.snapshot = snap.as_of;
    keepBaseTiles(off.baseTiles(snap, point));
  } catch { /* no snapshot this time: the list itself is already shown */ }
}

let baseTilesWanted = null; // the tiles of the kept snapshot's area, once known

/** Ask the worker to keep the street basemap's tiles of the snapshot's area (sw.js); it
 * says how many it holds, in body[data-base-tiles]. */
function keepBaseTiles(tiles) {
  baseTilesWanted = tiles;
  const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (worker) worker.postMessage({ type: "keep-base-tiles", tiles });
}

if (navigator.serviceWorker) {
  // The first visit: the worker takes the page over after the snapshot was kept.
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (baseTilesWanted) keepBaseTiles(baseTilesWanted);
  });
  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data && event.data.type === "base-tiles-kept") {
      document.body.dataset.baseTiles = String(event.data.count);
    }
  });
}

function amenityCodes(snap, mask) {
  return Object.entries(snap.amenity_bits)
    .filter(([, bit]) => Math.floor(mask / 2 ** bit) % 2 === 1).map(([code]) => code);
}

/** The nearest list computed on the phone, in the shape the cards read. */
export async function nearestOnPhone(point, chips) {
  const [off] = await Promise.all([offline(), vocabularyReady]); // the ten ones' codes
  const snap = await off.loadSnapshot().catch(() => null);
  if (!snap) return null;
  let at = AT || undefined;
  if (at && !/(Z|[+-]\d\d:?\d\d)$/.test(at)) at += "+08:00"; // naive = China time, as the API
  const rows = off.nearestOffline(snap, { lon: point.lon, lat: point.lat,
    k: chips.h24 ? K_24H : K, openNow: !!chips.open_now, amenities: wantedAmenities(chips), at });
  const index = new Map(snap.stations.code.map((c, i) => [c, i]));
  const results = rows.map((r) => {
    const i = index.get(r.code);
    const amenities = amenityCodes(snap, snap.stations.amenities[i]);
    const rule = snap.stations.rule[i];
    return { ...r, amenities,
      opening_hours: rule >= 0 ? snap.rules[rule] : null,
      ten_ones: { missing: tenOnes().filter((c) => !amenities.includes(c)) } };
  });
  const when = off.isoIn(at ? Date.parse(at) : Date.now(), "Asia/Shanghai");
  return { results, asOf: snap.as_of, complete: rows.complete, at: when };
}

/** When a snapshot was taken, as the rider reads it (China time). */
export function asOfText(iso) {
  return new Date(iso).toLocaleString(t("locale"),
    { timeZone: "Asia/Shanghai", dateStyle: "short", timeStyle: "short" });
}

/** A station as the snapshot kept on the phone holds it, in the shape of
 * /v1/stations/{code} as far as the snapshot goes (no address, phone, awards or platform
 * links: only the `geo:` link, which needs no conversion), or null when it is not there. */
export async function stationOnPhone(code) {
  const off = await offline();
  const snap = await off.loadSnapshot().catch(() => null);
  const st = snap && snap.stations;
  const i = st ? st.code.indexOf(code) : -1;
  if (i < 0 || snap.statuses[st.status[i]] === "gone") return null;
  const [lat, lon, name] = [st.lat[i], st.lon[i], st.name[i]];
  const rule = st.rule[i];
  return { code, name, lon, lat, sample: !!st.sample[i],
    reported_closed: !!(st.reported && st.reported[i]),
    opening_hours: rule >= 0 ? snap.rules[rule] : null,
    amenities: amenityCodes(snap, st.amenities[i]), host_type: snap.host_types[st.host_type[i]],
    links: { geo: `geo:${lat},${lon}?q=${lat},${lon}(${encodeURIComponent(name || code)})` },
    as_of: snap.as_of };
}

export function errorText(res) {
  return res.body && res.body.error ? res.body.error.message : `HTTP ${res.status}`;
}

export function labelled(key, value) {
  return `${t(key)}${t("colon")}${value}`;
}

/** The server's vocabulary, asked for as the page starts (it comes while the position
 * does); settles either way: without it the codes stand in (i18n.js). */
export const vocabularyReady = getJson("/v1/app/vocabulary")
  .then((res) => { if (res.ok) setVocabulary(res.body); })
  .catch(() => {});

// The map's module, on first need: like Leaflet, the code that draws the map is not on the
// way to the first list (bench/APP_LOAD.md); it comes once the list is up, or at once
// when the rider has to pick a point on the map.
let mapModule = null;
/** map.js once it has loaded, else null (for what reads it at once: tests, a redraw). */
export let mapLoaded = null;

function withMap(fn) {
  mapModule = mapModule || import("./map.js").then((m) => { mapLoaded = m; return m; });
  return mapModule.then(fn);
}

/** map.js's startMap (Leaflet, the basemap, the map), loading map.js first. */
export function startMap() {
  return withMap((m) => m.startMap()).catch(() => {});
}

/** What waits for the first answer (or for none to come): the map, the service worker. */
export function afterFirstAnswer() {
  withMap((m) => m.afterFirstAnswer()).catch(() => {});
}

/** Redraw the list on the map, if there is a map yet (it draws the list when it starts). */
export function drawMap() {
  if (mapLoaded) mapLoaded.drawMap();
}

/** No position: the map with the stations around, to tap near one. */
export function showAround() {
  withMap((m) => m.showAround()).catch(() => {});
}
