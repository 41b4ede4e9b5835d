// Service worker of the courier app (issue 14), served at /app/sw.js, scope /app/.
//
// - The app shell is cached at install and served stale-while-revalidate: the page
//   opens at once, even with no network, and a deploy shows at the next open.
// - Of the API, only the last answer of /v1/stations/nearest is kept, under one fixed
//   key: with no network the page still gets an answer (marked X-Geo-Offline: 1) while
//   offline.js computes the fresh one from the snapshot kept in IndexedDB. Each answer
//   replaces the one before, so the caches never hold a trail of the courier's positions
//   (issue 24); every other API request but the vocabulary below goes to the network
//   and is not kept.
// - The server's vocabulary (/v1/app/vocabulary: the ten ones' names, the words of
//   hours) is kept with the shell, like a file of it: the same for every rider.
// - Nothing accumulates: the shell cache holds the SHELL files under their own paths
//   (every page of the app, /app/s/CODE or /app/?at=…, is the one shell "/app/"), and
//   the API cache one entry. Caches carry the version in their name; activate deletes
//   every other version (and with it any trail an older worker kept).
// - The 192- and 512-pixel icons are not in the shell: the page never shows them; the
//   browser fetches them from the manifest when the app is installed, which is online.
// - gcoord.js shifts points for GCJ-02 tiles only: kept at install when the service's
//   basemap is GCJ-02 (config.json says), else not downloaded (bench/APP_LOAD.md).
// - The street basemap (issue 28), when no tile URL is configured: protomaps.js and
//   basemap.js are kept with the shell, and the base tiles of the snapshot's area (the
//   page sends their list, offline.js baseTiles: a window around the rider, at most
//   MAX_BASE_TILES) in a cache of their own, replaced with the snapshot (one area, no
//   trail). A base tile is asked of the network first (and the kept copy refreshed),
//   the kept copy answering when the network is gone.
// No request ever leaves for another origin: only same-origin GETs are handled.

const VERSION = "2026-12-07.9";
const PREFIX = "geo-app-";
const SHELL_CACHE = `${PREFIX}shell-${VERSION}`;
const API_CACHE = `${PREFIX}api-${VERSION}`;
const BASE_CACHE = `${PREFIX}base-${VERSION}`;
const LAST_NEAREST = "/app/__last-nearest__";
const BASE_TILES = "/tiles/base/";
const MAX_BASE_TILES = 400;

const SHELL = [
  "/app/", "/app/app.js", "/app/i18n.js", "/app/i18n-en.js", "/app/i18n-station.js",
  "/app/state.js", "/app/list.js", "/app/map.js", "/app/station.js", "/app/app.css",
  "/app/offline.js",
  "/app/manifest.webmanifest", "/app/icon-32.png", "/app/vendor/geodesic.js",
  "/app/config.json", "/v1/app/vocabulary",
  "/maps/assets/leaflet/dist/leaflet.js", "/maps/assets/leaflet/dist/leaflet.css",
];
const GCOORD = "/app/vendor/gcoord.js";
const STREETS = ["/app/vendor/protomaps.js", "/app/basemap.js"];
const SHELL_PATHS = new Set([...SHELL, GCOORD, ...STREETS]);

/** The configured basemap as the kept config.json says (null: none configured). */
async function configuredBasemap(cache) {
  const config = await cache.match("/app/config.json");
  const { basemap } = config ? await config.json() : {};
  return basemap && basemap.url ? basemap : null;
}

/** Keep gcoord.js too when the basemap's tiles are GCJ-02 (the map needs it offline), or
 * the street basemap's drawing code when no basemap is configured. */
async function addMapFiles(cache) {
  const basemap = await configuredBasemap(cache);
  if (basemap && basemap.crs === "gcj02") await cache.add(GCOORD);
  if (!basemap) await cache.addAll(STREETS);
}

/** The key a request's response is kept under in the shell cache, or null: not kept. */
function shellKey(request, url) {
  const page = url.pathname === "/app/" || url.pathname.startsWith("/app/s/");
  if (request.mode === "navigate" && page) return "/app/";
  return SHELL_PATHS.has(url.pathname) && !url.search ? url.pathname : null;
}

self.addEventListener("install", (event) => {
  // One missing file must not leave the whole shell uncached: add them one by one.
  event.waitUntil(caches.open(SHELL_CACHE)
    .then((c) => Promise.all(SHELL.map((url) => c.add(url).catch(() => undefined)))
      .then(() => addMapFiles(c)).catch(() => undefined))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names
      .filter((n) => n.startsWith(PREFIX) && ![SHELL_CACHE, API_CACHE, BASE_CACHE].includes(n))
      .map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

function marked(response) {
  const headers = new Headers(response.headers);
  headers.set("X-Geo-Offline", "1");
  return response.blob().then((body) => new Response(body, {
    status: response.status, statusText: response.statusText, headers,
  }));
}

async function lastNearest(request) {
  const cache = await caches.open(API_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(LAST_NEAREST, response.clone());
    return response;
  } catch (err) {
    const hit = await cache.match(LAST_NEAREST);
    if (hit) return marked(hit);
    throw err;
  }
}

async function staleWhileRevalidate(event, request, key) {
  const cache = await caches.open(SHELL_CACHE);
  const hit = await cache.match(key);
  const fresh = fetch(request).then((response) => {
    if (response.ok) return cache.put(key, response.clone()).then(() => response);
    return response;
  });
  if (hit) {
    event.waitUntil(fresh.catch(() => undefined));
    return hit;
  }
  return fresh;
}

/** Keep exactly `tiles` (paths under /tiles/base/, at most MAX_BASE_TILES): the others
 * dropped, the missing fetched a few at a time. Returns how many are kept. */
async function keepBaseTiles(tiles) {
  if (await configuredBasemap(await caches.open(SHELL_CACHE))) return 0;
  const want = new Set(tiles.filter((t) => typeof t === "string" && t.startsWith(BASE_TILES))
    .slice(0, MAX_BASE_TILES));
  const cache = await caches.open(BASE_CACHE);
  const have = new Set();
  for (const request of await cache.keys()) {
    const path = new URL(request.url).pathname;
    if (want.has(path)) have.add(path);
    else await cache.delete(request);
  }
  const todo = [...want].filter((t) => !have.has(t));
  const fetchOne = async () => {
    for (let t = todo.pop(); t; t = todo.pop()) {
      const response = await fetch(t).catch(() => null);
      if (!response) return; // the network is gone: keep what is kept
      if (response.ok) await cache.put(t, response);
    }
  };
  await Promise.all([fetchOne(), fetchOne(), fetchOne(), fetchOne()]);
  return (await cache.keys()).length;
}

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type !== "keep-base-tiles" || !Array.isArray(data.tiles)) return;
  event.waitUntil(keepBaseTiles(data.tiles).then((count) => {
    if (event.source) event.source.postMessage({ type: "base-tiles-kept", count });
  }).catch(() => undefined));
});

async function baseTile(request, path) {
  const cache = await caches.open(BASE_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && (await cache.match(path))) await cache.put(path, response.clone());
    return response;
  } catch (err) {
    const hit = await cache.match(path);
    if (hit) return hit;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === "/v1/stations/nearest") {
    event.respondWith(lastNearest(request));
    return;
  }
  if (url.pathname.startsWith(BASE_TILES) && !url.search) {
    event.respondWith(baseTile(request, url.pathname));
    return;
  }
  const key = shellKey(request, url);
  if (key) event.respondWith(staleWhileRevalidate(event, request, key));
});
