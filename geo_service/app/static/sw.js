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
// No request ever leaves for another origin: only same-origin GETs are handled.

const VERSION = "2026-12-07.5";
const PREFIX = "geo-app-";
const SHELL_CACHE = `${PREFIX}shell-${VERSION}`;
const API_CACHE = `${PREFIX}api-${VERSION}`;
const LAST_NEAREST = "/app/__last-nearest__";

const SHELL = [
  "/app/", "/app/app.js", "/app/i18n.js", "/app/i18n-en.js", "/app/i18n-station.js",
  "/app/state.js", "/app/list.js", "/app/map.js", "/app/station.js", "/app/app.css",
  "/app/offline.js",
  "/app/manifest.webmanifest", "/app/icon-32.png", "/app/vendor/geodesic.js",
  "/app/config.json", "/v1/app/vocabulary",
  "/maps/assets/leaflet/dist/leaflet.js", "/maps/assets/leaflet/dist/leaflet.css",
];
const GCOORD = "/app/vendor/gcoord.js";
const SHELL_PATHS = new Set([...SHELL, GCOORD]);

/** Keep gcoord.js too when the basemap's tiles are GCJ-02 (the map needs it offline). */
async function addGcoord(cache) {
  const config = await cache.match("/app/config.json");
  const { basemap } = config ? await config.json() : {};
  if (basemap && basemap.url && basemap.crs === "gcj02") await cache.add(GCOORD);
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
      .then(() => addGcoord(c)).catch(() => undefined))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names
      .filter((n) => n.startsWith(PREFIX) && n !== SHELL_CACHE && n !== API_CACHE)
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

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === "/v1/stations/nearest") {
    event.respondWith(lastNearest(request));
    return;
  }
  const key = shellKey(request, url);
  if (key) event.respondWith(staleWhileRevalidate(event, request, key));
});
