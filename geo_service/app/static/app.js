// The courier app: nearest open stations, a map, a station page, reports.
// Plain ES modules, no framework, no build step; this entry wires them: i18n.js (words,
// pure), state.js (what the page holds, the API, the snapshot), list.js, and on first
// need map.js (the map), station.js (the station page), offline.js (the phone's own
// nearest) and i18n-en.js (the English words).
// Everything shown comes from this service's JSON API; the position leaves the phone
// only inside the nearest query.

import {
  loadDistricts, locate, pickDistrict, renderChips, renderDistricts, renderList,
} from "./list.js";
import {
  $, PROVISIONAL_MAX_AGE_MS, afterFirstAnswer, drawMap, loadWords, mapLoaded, offline, startMap,
  state, stationCode, store, t, vocabularyReady,
} from "./state.js";

// The pure functions, for the page's tests and the curious (tests/app/ imports i18n.js).
export {
  WALK_MAX_MIN, compass, distanceText, hoursText, minutes, openText, travelText, whenText,
} from "./i18n.js";
export { districtGroups, nearestUrl } from "./list.js";

// The station page's module (12 KB) and its words are not on the way to the first list:
// they come when a station is opened, both at once (bench/APP_LOAD.md).
let stationModule = null;

/** The list, or the page of the station the address names. */
function route() {
  const code = stationCode();
  $("home").hidden = Boolean(code);
  $("station").hidden = !code;
  if (code) {
    stationModule = stationModule || Promise.all([import("./station.js"),
      import("./i18n-station.js")]).then(([m]) => m);
    stationModule.then((m) => m.showStation(code), () => {
      stationModule = null; // not loaded (no network, not kept yet): the next open asks again
      $("st").textContent = t("failed") + t("no_network");
    });
  } else if (mapLoaded && mapLoaded.map) setTimeout(() => mapLoaded.map.invalidateSize(), 0);
}

function applyLang() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  }
  // The button names the other language in that language (its accessible name is its text).
  $("lang").textContent = t("lang");
  $("lang").lang = state.lang === "zh" ? "en" : "zh-CN";
  renderChips();
  renderDistricts();
  if (state.results.length) { renderList(); drawMap(); }
  route();
}

/** Show the page in `lang` once its words are here (English: fetched on first need). */
function showLang(lang) {
  return loadWords(lang).then(() => {
    state.lang = lang;
    applyLang();
  });
}

function start() {
  // The rider chose English before: its words come beside the position, then the page
  // turns (on a next visit the service worker has them at once).
  const chosen = store.get("geo.lang", "zh");
  if (chosen !== state.lang) showLang(chosen).catch(() => {});
  // A return visit with a recent snapshot: load the on-phone half while the position comes.
  if (Date.now() - store.get("geo.snapshot_at", 0) < PROVISIONAL_MAX_AGE_MS) {
    offline().then((off) => off.loadSnapshot()).catch(() => {});
  }
  setTimeout(afterFirstAnswer, 10e3); // a list that never comes must not keep them away
  applyLang();
  $("lang").addEventListener("click", () => {
    const lang = state.lang === "zh" ? "en" : "zh";
    store.set("geo.lang", lang);
    showLang(lang).catch(() => { $("status").textContent = t("failed") + t("no_network"); });
  });
  $("locate").addEventListener("click", locate);
  $("elsewhere").addEventListener("click", () => {
    $("status").textContent = t("tap");
    startMap();
    $("map").scrollIntoView({ behavior: "smooth", block: "center" });
  });
  $("district").addEventListener("change", (e) => pickDistrict(e.target.value));
  $("back").addEventListener("click", () => {
    if (location.pathname !== "/app/") history.pushState(null, "", "/app/");
    location.hash = "";
    route();
    if (!state.point) locate();
  });
  window.addEventListener("hashchange", route);
  vocabularyReady.then(renderChips); // the chips' amenity names are the server's
  loadDistricts();
  if (!stationCode()) locate();
}

// For tests and the curious: what the page holds (never sent anywhere).
window.GEO_APP = { state, get map() { return mapLoaded && mapLoaded.map; },
  toMap: (lat, lon) => mapLoaded.toMap(lat, lon) };

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
