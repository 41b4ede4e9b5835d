// The map of the list (Leaflet, loaded after the first answer), where a WGS-84 point goes
// on the configured basemap's tiles, or on the service's own street basemap when none is
// configured, and what else waits for the first answer (the service worker). Imported on
// first need (state.js startMap, afterFirstAnswer).

import { displayName } from "./i18n.js";
import { setPoint } from "./list.js";
import { config, getJson, loadScript, state, t } from "./state.js";

export let map = null;
let layer = null;
export let basemap = null; // the configured basemap (/app/config.json), once the map started

// Leaflet is not on the way to the first list: 45 KB that would share a slow link with
// the answer (bench/APP_LOAD.md). It comes once the list is up, or at once when the rider
// has to pick a point on the map.
const LEAFLET = "/maps/assets/leaflet/dist/leaflet";
let mapAsked = null;

function loadStyle(href) {
  return new Promise((ok, fail) => {
    const l = document.createElement("link");
    l.rel = "stylesheet"; l.href = href; l.onload = ok; l.onerror = fail;
    document.head.append(l);
  });
}

export function startMap() {
  if (!mapAsked) {
    mapAsked = Promise.all([config,
      loadScript(`${LEAFLET}.js`), loadStyle(`${LEAFLET}.css`)])
      .then(([cfg]) => initMap(cfg && cfg.ok ? cfg.body.basemap : null))
      .then(() => { if (state.results.length) drawMap(); })
      // The streets once the first view is set: no tiles fetched for a view left at once.
      .then(() => (basemap && basemap.url ? null : useBaseTiles().catch(() => {})))
      .catch(() => {});
  }
  return mapAsked;
}

// Where a WGS-84 position goes on the map, and back. Identity, unless the basemap's tiles
// are drawn in GCJ-02 (Amap, Tencent): then every point is shifted as the tiles are, and a
// tap is shifted back before it is asked about (gcoord, from npm, iterates to ~0.1 m).
export let toMap = (lat, lon) => [lat, lon];
let fromMap = (latlng) => ({ lon: latlng.lng, lat: latlng.lat });

async function useGcj02() {
  if (!window.gcoord) await loadScript("/app/vendor/gcoord.js");
  const g = window.gcoord;
  toMap = (lat, lon) => { const [x, y] = g.transform([lon, lat], g.WGS84, g.GCJ02); return [y, x]; };
  fromMap = (latlng) => {
    const [lon, lat] = g.transform([latlng.lng, latlng.lat], g.GCJ02, g.WGS84);
    return { lon, lat };
  };
}

// The service's own streets (issue 28): vector tiles of the loaded roads, water and
// district outlines, drawn by protomaps-leaflet (npm) in the style the planners' maps
// share (/app/basemap.js). The worker keeps the tiles of the snapshot's area (sw.js).
const BASE_TILES = "/tiles/base/{z}/{x}/{y}.mvt";

/** protomaps-leaflet and the shared style, fetched on first need, then the streets under
 * the stations (when they cannot be had, the stations still show on a plain map). */
async function useBaseTiles() {
  if (!window.protomapsL) await loadScript("/app/vendor/protomaps.js");
  if (!(window.GEO && window.GEO.baseLayer)) await loadScript("/app/basemap.js");
  window.GEO.baseLayer(map, { url: BASE_TILES, lang: state.lang });
}

async function initMap(bm) {
  const L = window.L;
  if (!L) return;
  basemap = bm;
  if (bm && bm.url && bm.crs === "gcj02") await useGcj02();
  map = L.map("map", { zoomControl: true, attributionControl: true })
    .setView(toMap(18.25, 109.5), 12);
  layer = L.layerGroup().addTo(map);
  if (bm && bm.url) {
    L.tileLayer(bm.url, { attribution: bm.attribution, subdomains: bm.subdomains || "abc",
      maxZoom: bm.max_zoom || 19 }).addTo(map).bringToBack();
  }
  map.on("click", (e) => setPoint({ ...fromMap(e.latlng), source: "tap" }));
}

export function drawMap() {
  const L = window.L;
  if (!map || !L) return;
  layer.clearLayers();
  const pts = [];
  if (state.point) {
    const p = toMap(state.point.lat, state.point.lon);
    L.marker(p, { icon: L.divIcon({ className: "", html: '<div class="you"></div>',
      iconSize: [22, 22] }), title: t("here"), keyboard: false }).addTo(layer);
    pts.push(p);
  }
  state.results.forEach((s, i) => {
    const p = toMap(s.lat, s.lon);
    const m = L.marker(p, { icon: L.divIcon({ className: "", html: `<div class="pin">${i + 1}</div>`,
      iconSize: [30, 30] }), title: displayName(s, state.lang).text,
      alt: displayName(s, state.lang).text });
    m.on("click", () => { location.hash = `#/s/${encodeURIComponent(s.code)}`; });
    m.addTo(layer);
    pts.push(p);
  });
  // A tap keeps the map where the finger left it; a position or district brings the view.
  if (state.point && state.point.source === "tap") return;
  if (pts.length > 1) map.fitBounds(pts, { padding: [30, 30], maxZoom: 16 });
  else if (pts.length === 1) map.setView(pts[0], 15);
}

export async function showAround() {
  // No position: show where stations are, so there is something to tap near.
  await startMap();
  const res = await getJson("/v1/stations?limit=100").catch(() => null);
  if (!res || !res.ok || !map) return;
  const L = window.L;
  const pts = res.body.items.map((s) => toMap(s.lat, s.lon));
  for (const p of pts) L.circleMarker(p, { radius: 4, weight: 1, interactive: false }).addTo(layer);
  if (pts.length) map.fitBounds(pts, { padding: [20, 20] });
}

let workerAsked = false;

/** The shell and the last answer stay on the phone for a weak signal (sw.js). Asked for
 * once the first list is up (or there is none to wait for): the worker's copy of the
 * shell must not share a slow link with the first answer (bench/APP_LOAD.md). */
function registerWorker() {
  if (workerAsked || !("serviceWorker" in navigator)) return;
  workerAsked = true;
  navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
}

/** What waits for the first answer (or for none to come): the map, the service worker. */
export function afterFirstAnswer() {
  startMap();
  registerWorker();
}
