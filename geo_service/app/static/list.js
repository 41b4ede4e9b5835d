// The list: the nearest query and its answer (from the server, or computed on the phone
// from the snapshot), the cards, the filter chips, the rider's position and the district
// picker.

import {
  amenityBadge, amenityName, compass, displayName, distanceText, openText, stripSample,
  tenOnes, travelText, whenText,
} from "./i18n.js";
import {
  $, AT, CHIPS, byRoad, K, K_24H, PROVISIONAL_MAX_AGE_MS, afterFirstAnswer, asOfText, drawMap, el,
  errorText, getJson, keepSnapshot, labelled, nearestOnPhone, showAround, startMap, state,
  store, t, vocabularyReady, wantedAmenities,
} from "./state.js";

export function nearestUrl(point, chips, at = AT, road = false) {
  const p = new URLSearchParams({ lon: point.lon.toFixed(6), lat: point.lat.toFixed(6),
    k: String(chips.h24 ? K_24H : K) });
  if (at) p.set("at", at);
  if (road) p.set("by", "walk");
  if (chips.open_now) p.set("open_now", "true");
  const want = wantedAmenities(chips);
  if (want.length) p.set("amenities", want.join(","));
  return `/v1/stations/nearest?${p}`;
}

export async function loadNearest() {
  if (!state.point) return;
  const seq = ++state.seq;
  document.body.dataset.state = "loading";
  $("status").textContent = t("loading");
  // On a weak signal the rider should not wait a round trip: a recent snapshot that
  // holds this point in full answers at once, and the server's answer replaces it.
  if (Date.now() - store.get("geo.snapshot_at", 0) < PROVISIONAL_MAX_AGE_MS) {
    nearestOnPhone(state.point, state.chips).then((local) => {
      if (seq !== state.seq || !local || !local.complete
          || document.body.dataset.state !== "loading") return;
      show(local.results, local.at, "phone");
      $("status").textContent = `${t("provisional")} · ${$("status").textContent}`;
      document.body.dataset.state = "provisional";
      startMap();
    }).catch(() => {});
  }
  const road = await byRoad(state.point);
  let res = await getJson(nearestUrl(state.point, state.chips, AT, road)).catch(() => null);
  // Roads unloaded since, or none near the point (409: the server's snap limit, one rule
  // for every client), or no station within reach by road: the straight-line answer, as
  // without roads.
  if (road && res && !res.offline && (res.status === 409
    || (res.ok && !res.body.results.length))) {
    res = await getJson(nearestUrl(state.point, state.chips)).catch(() => null);
  }
  await vocabularyReady; // the cards name the ten ones in the server's words
  if (seq !== state.seq) return; // a newer question was asked meanwhile
  if (!res || res.offline) {
    // No network: answer from the snapshot kept on the phone, in the server's order.
    const local = await nearestOnPhone(state.point, state.chips).catch(() => null);
    if (seq !== state.seq) return;
    if (!local) {
      $("status").textContent = t("offline_none");
      document.body.dataset.state = "error";
      return;
    }
    show(local.results, local.at, "phone");
    $("status").textContent = `${t("offline")(asOfText(local.asOf))} · ${$("status").textContent}`;
    document.body.dataset.state = "offline";
    afterFirstAnswer();
    return;
  }
  if (!res.ok) {
    $("status").textContent = t("failed") + errorText(res);
    document.body.dataset.state = "error";
    afterFirstAnswer();
    return;
  }
  show(res.body.results, res.body.query.at, "server");
  document.body.dataset.state = "ready";
  afterFirstAnswer();
  keepSnapshot(state.point);
}

function show(results, at, source) {
  if (state.chips.h24) results = results.filter((s) => (s.opening_hours || "").trim() === "24/7");
  state.results = results.slice(0, K);
  state.at = at;
  // Answers computed on the phone are straight-line; say so where roads would be used.
  state.estimate = source === "phone" && store.get("geo.roads", false);
  noteCity(state.results);
  renderList();
  performance.mark("geo:list", { detail: source }); // bench/app_load.py: point → list
  drawMap();
}

// --- rendering ----------------------------------------------------------------------------

/** The ten ones as badges that differ in shape, not only colour (read in sun): a filled
 * badge with ✓ for what the station has, an outlined, struck-through one with ✗ for what
 * it lacks. */
function tenOnesIcons(s) {
  const have = new Set(s.amenities);
  const ul = el("ul", { class: "icons", "aria-label": t("checklist") });
  for (const code of tenOnes()) {
    const name = amenityName(code, state.lang);
    const ok = have.has(code);
    ul.append(el("li", { class: ok ? "yes" : "no", title: name,
      "aria-label": `${ok ? t("has") : t("lacks")} ${name}` },
    el("span", { "aria-hidden": "true" }, el("b", {}, ok ? "✓" : "✗"),
      amenityBadge(code, state.lang))));
  }
  return ul;
}

function openLine(s) {
  const { state: open, text } = openText(s, state.at, state.lang);
  return el("span", { class: open === "unknown" ? "meta" : open }, text);
}

function card(s, i) {
  const { text: name, zh } = displayName(s, state.lang);
  const d = s.distance_m;
  const missing = s.ten_ones.missing.map((c) => amenityName(c, state.lang));
  const shown = s.sample ? stripSample(name) : name;
  const li = el("li", { class: "card", "data-code": s.code },
    el("a", { class: "name", href: `#/s/${encodeURIComponent(s.code)}` }, `${i + 1}. `,
      s.sample ? el("span", { class: "sample-tag" }, t("sample_tag")) : null,
      el("span", { lang: zh ? "zh-CN" : null }, shown)),
    el("div", { class: "meta" }, [distanceText(d), compass(s.bearing_deg, state.lang),
      travelText(d, state.lang, s.road, state.estimate)].filter(Boolean).join(" · ")),
    el("div", { class: "openline" }, openLine(s)),
    tenOnesIcons(s),
    el("div", { class: "meta" },
      missing.length ? labelled("missing", missing.join(t("list_sep"))) : t("all10")));
  if (s.current_stop) {
    li.append(el("div", { class: "meta" }, labelled("stop", ""),
      el("span", { lang: "zh-CN" }, s.current_stop.name),
      s.next_change ? ` · ${t("leaves")} ${whenText(s.next_change, state.at, state.lang)}` : null));
  }
  if (s.reported_closed) li.append(el("div", { class: "warn", role: "alert" }, t("reported")));
  if (s.last_confirmed_at) {
    li.append(el("div", { class: "meta" }, labelled("confirmed", s.last_confirmed_at.slice(0, 10))));
  }
  return li;
}

export function renderList() {
  const list = $("list");
  list.replaceChildren(...state.results.map(card));
  list.dataset.codes = state.results.map((s) => s.code).join(",");
  list.dataset.seq = String(state.seq);
  list.dataset.point = `${state.point.lon.toFixed(6)},${state.point.lat.toFixed(6)}`;
  $("sample").hidden = !state.results.some((s) => s.sample);
  const where = state.point && state.point.source === "gps" ? t("here") : t("tapped");
  $("status").textContent = state.results.length ? t("found")(state.results.length, where) : t("none");
}

/** A chip's label: the server's name of its amenity, or the app's word for the others. */
function chipLabel(code) {
  return code === "open_now" || code === "h24" ? t(`chip_${code}`) : amenityName(code, state.lang);
}

export function renderChips() {
  const box = $("chips");
  box.setAttribute("aria-label", t("filters"));
  box.replaceChildren(...CHIPS.map((code) => {
    const b = el("button", { type: "button", class: "chip", "data-chip": code,
      "aria-pressed": state.chips[code] ? "true" : "false" }, chipLabel(code));
    b.addEventListener("click", () => {
      state.chips[code] = !state.chips[code];
      store.set("geo.chips", state.chips);
      renderChips();
      loadNearest();
    });
    return b;
  }));
}

// --- position -----------------------------------------------------------------------------

export function setPoint(point) {
  performance.mark("geo:point");
  state.point = point;
  // Kept on the phone (one point, replaced each time): the station page measures from it.
  store.set("geo.point", point);
  loadNearest();
}

export function locate() {
  if (!navigator.geolocation) {
    $("status").textContent = t("unavailable");
    afterFirstAnswer();
    showAround();
    return;
  }
  $("status").textContent = t("locating");
  navigator.geolocation.getCurrentPosition(
    (pos) => setPoint({ lon: pos.coords.longitude, lat: pos.coords.latitude, source: "gps" }),
    (err) => {
      $("status").textContent = err.code === 1 ? t("denied") : t("unavailable");
      document.body.dataset.state = "no-location";
      afterFirstAnswer();
      showAround();
    },
    { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
}

let areas = [];

export async function loadDistricts() {
  const res = await getJson("/v1/areas").catch(() => null);
  if (!res || !res.ok) return;
  areas = res.body;
  renderDistricts();
}

/** The districts that have stations, grouped under their city (the area tree's parent):
 * `cityFirst`'s group first, then by code. `[{code, city, districts}]`, `city` null when
 * the parent is not in the tree. */
export function districtGroups(all, cityFirst) {
  const byCode = new Map(all.map((a) => [a.code, a]));
  const groups = new Map();
  for (const a of all.filter((x) => x.level === "district" && x.stations > 0)) {
    const code = a.parent_code || "";
    if (!groups.has(code)) groups.set(code, { code, city: byCode.get(code) || null, districts: [] });
    groups.get(code).districts.push(a);
  }
  return [...groups.values()].sort((x, y) =>
    Number(y.code === cityFirst) - Number(x.code === cityFirst) || x.code.localeCompare(y.code));
}

function areaName(a) {
  return state.lang === "en" && a.name_en ? a.name_en : a.name;
}

/** The picker, one group per city, the rider's first: the city of the nearest station of
 * the last list (kept on the phone), else the first city by code. */
export function renderDistricts() {
  const sel = $("district");
  if (!areas.length) return;
  const keep = sel.value;
  const groups = districtGroups(areas, store.get("geo.city", null));
  sel.replaceChildren(sel.options[0], ...groups.map((g) => el("optgroup", {
    label: g.city ? areaName(g.city) : t("other_city"), "data-city": g.code },
  ...g.districts.map((a) => el("option", { value: a.code }, areaName(a))))));
  sel.value = keep;
}

/** The rider's city: the city of the nearest station listed (the phone's own answers
 * carry no city and leave it as it was). */
function noteCity(results) {
  const city = results.length ? results[0].city_code : null;
  if (!city || city === store.get("geo.city", null)) return;
  store.set("geo.city", city);
  renderDistricts();
}

export async function pickDistrict(code) {
  if (!code) return;
  // The district's centre as the median of its stations' positions (areas carry no centre).
  const res = await getJson(`/v1/stations?area=${encodeURIComponent(code)}&limit=100`).catch(() => null);
  if (!res || !res.ok || !res.body.items.length) { $("status").textContent = t("none"); return; }
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  setPoint({ lon: med(res.body.items.map((s) => s.lon)), lat: med(res.body.items.map((s) => s.lat)),
    source: "district" });
}
