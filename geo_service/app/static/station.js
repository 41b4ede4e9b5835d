// The station page (/app/s/CODE or #/s/CODE): from the API, or from the snapshot kept on
// the phone with no network; its open line, where it is from the rider, its small map,
// the navigation links and the rider's feedback. Not on the way to the first list: app.js
// imports it when a station is opened (the service worker keeps it with the shell).

import {
  addWords, amenityName, compass, displayName, hoursText, openText, stripSample, tenOnes,
} from "./i18n.js";
import { STATION_WORDS } from "./i18n-station.js";
import { afterFirstAnswer, basemap, startMap, toMap } from "./map.js";
import {
  $, AT, asOfText, deviceId, el, errorText, getJson, labelled, loadScript, state,
  stationCode, stationOnPhone, store, t, vocabularyReady,
} from "./state.js";

// The page's own words join the tables (English's too, before or after i18n-en.js comes).
for (const [lang, words] of Object.entries(STATION_WORDS)) addWords(lang, words);

async function send(url, body) {
  return getJson(url, { method: "POST", body: body ? JSON.stringify(body) : undefined,
    headers: { "Content-Type": "application/json", Accept: "application/json",
      "X-Device-Id": deviceId() } }).catch(() => null);
}

function feedbackMessage(res, okText) {
  if (!res) return t("failed") + t("no_network");
  if (res.status === 429) return t("already");
  if (res.status === 200 && res.body && res.body.counted === false) return t("already");
  if (res.ok && res.body && res.body.replaces) return t("replaced");
  if (res.ok) return okText;
  return t("failed") + errorText(res);
}

/** The station page of `code`: what the API says, else what the phone holds. */
export async function showStation(code) {
  const box = $("st");
  box.replaceChildren(el("p", { class: "status" }, t("loading")));
  const q = AT ? `?${new URLSearchParams({ at: AT })}` : "";
  const res = await getJson(`/v1/stations/${encodeURIComponent(code)}${q}`).catch(() => null);
  await vocabularyReady; // the checklist names the ten ones in the server's words
  if (stationCode() !== code) return;
  if (res && res.ok) {
    renderStation(code, res.body);
    return;
  }
  // Only the server can say a station does not exist. No network (or no server behind
  // it) is said as such, and the page opens from the snapshot kept on the phone.
  const alert = (text) => box.replaceChildren(el("p", { role: "alert" }, text));
  if (res && res.status < 500) {
    alert(res.status === 404 ? t("notfound") : t("failed") + errorText(res));
    return;
  }
  const kept = await stationOnPhone(code).catch(() => null);
  if (stationCode() !== code) return;
  if (kept) renderStation(code, kept);
  else alert(res ? t("failed") + errorText(res) : t("st_not_kept"));
}

/** Karney's geodesics (the copy offline.js uses, kept with the shell). */
async function geodesicWgs84() {
  if (!window.geodesic) await loadScript("/app/vendor/geodesic.js");
  return window.geodesic.Geodesic.WGS84;
}

/** The rider's last point: this visit's, else the one kept on the phone; or null. */
function riderPoint() {
  return state.point || store.get("geo.point", null);
}

/** The page's open line (when the answer carries the open state: not the snapshot's) and
 * how far and which way the station is from the rider's last point ("东北 650 米"),
 * measured on the spheroid as the list's distances are. */
async function stationWhere(s) {
  const out = [];
  if ("open_now" in s) {
    let at = AT;
    if (at && !/(Z|[+-]\d\d:?\d\d)$/.test(at)) at += "+08:00"; // naive = China time
    const { state: open, text } = openText(s, at, state.lang);
    out.push(el("p", { id: "st-open", class: open === "unknown" ? "meta" : open }, text));
  }
  const rider = riderPoint();
  if (rider) {
    try {
      const r = (await geodesicWgs84()).Inverse(rider.lat, rider.lon, s.lat, s.lon);
      out.push(el("p", { id: "st-where" }, t("where")(compass(r.azi1, state.lang),
        t("metres")(r.s12), rider.source === "gps")));
    } catch { /* geodesics not loaded (offline, not kept): no distance line */ }
  }
  return out;
}

/** Baidu's web direction page from `origin` to `dest` (both BD-09 [lon, lat]): it opens in
 * any browser and offers the Baidu app from there when one is installed, as the Amap and
 * Tencent links do. The `baidumap://` scheme alone did nothing on a phone without the app,
 * and a timed fallback to the web would also fire while the app's "open?" prompt is up. */
export function baiduWebLink(origin, dest, name, { src, region, originName = "我的位置" }) {
  const ll = ([lon, lat]) => `latlng:${lat.toFixed(6)},${lon.toFixed(6)}`;
  const p = [`origin=${ll(origin)}%7Cname:${encodeURIComponent(originName)}`,
    `destination=${ll(dest)}%7Cname:${encodeURIComponent(name)}`, "mode=walking"];
  if (region) p.push(`region=${encodeURIComponent(region)}`);
  p.push("coord_type=bd09ll", "output=html", `src=${encodeURIComponent(src)}`);
  return `https://api.map.baidu.com/direction?${p.join("&")}`;
}

/** The Baidu button: the web route from the rider's last point, converted to BD-09 by
 * gcoord as the server converts (links.py); with no point, Baidu's web page of the station. */
async function baiduButton(s) {
  const a = document.querySelector("#st [data-nav=baidu]");
  if (!a) return;
  a.textContent = t("baidu_web");
  a.href = s.links.baidu;
  const rider = riderPoint();
  if (!rider) return;
  try {
    if (!window.gcoord) await loadScript("/app/vendor/gcoord.js");
    const g = window.gcoord;
    const bd = (lon, lat) => g.transform([lon, lat], g.WGS84, g.BD09);
    a.href = baiduWebLink(bd(rider.lon, rider.lat), bd(s.lon, s.lat), s.name || s.code, {
      src: new URL(s.links.baidu).searchParams.get("src") || "geo_service", region: s.city });
  } catch { /* gcoord not loaded: the station's web page stays */ }
}

let stationMap = null;

/** The small map: the station and the rider as markers, on the configured tiles when there
 * are any (none offline, none configured: the markers alone still show where). */
async function drawStationMap(s) {
  await startMap(); // Leaflet and the basemap, as the list's map has them
  const node = document.getElementById("st-map");
  const L = window.L;
  if (stationMap) { stationMap.remove(); stationMap = null; }
  if (!L || !node) return;
  const tiles = basemap && basemap.url;
  stationMap = L.map(node, { zoomControl: false, attributionControl: Boolean(tiles),
    scrollWheelZoom: false, keyboard: false });
  if (tiles) {
    L.tileLayer(basemap.url, { attribution: basemap.attribution,
      subdomains: basemap.subdomains || "abc", maxZoom: basemap.max_zoom || 19 }).addTo(stationMap);
  }
  const name = state.lang === "en" && s.name_en ? s.name_en : s.name;
  const here = toMap(s.lat, s.lon);
  L.marker(here, { icon: L.divIcon({ className: "", html: '<div class="pin st-pin"></div>',
    iconSize: [30, 30] }), title: name, keyboard: false }).addTo(stationMap);
  const pts = [here];
  const rider = riderPoint();
  if (rider) {
    const p = toMap(rider.lat, rider.lon);
    L.marker(p, { icon: L.divIcon({ className: "", html: '<div class="you"></div>',
      iconSize: [22, 22] }), title: t("here"), keyboard: false }).addTo(stationMap);
    pts.push(p);
  }
  if (pts.length > 1) stationMap.fitBounds(pts, { padding: [28, 28], maxZoom: 17 });
  else stationMap.setView(here, 16);
  document.body.dataset.stMap = String(pts.length);
}

/** What the station page adds once it is on screen: the Baidu button, the small map. */
function finishStation(s) {
  delete document.body.dataset.stMap;
  baiduButton(s);
  drawStationMap(s).catch(() => {});
}

/** The station page: from the API's answer, or from the snapshot (`s.as_of` set), which
 * lacks the address, phone, awards and platform links, and takes no feedback. */
async function renderStation(code, s) {
  const box = $("st");
  const kept = Boolean(s.as_of);
  const { text: name, zh: nameZh } = displayName(s, state.lang);
  // A sample's tag is the yellow banner below, once: not the name's "【示例】" as well.
  const parts = [el("h2", { id: "st-name", lang: nameZh ? "zh-CN" : null },
    s.sample ? stripSample(name) : name)];
  if (kept) parts.push(el("p", { class: "status", role: "status" }, t("st_offline")(asOfText(s.as_of))));
  if (s.sample) parts.push(el("p", { class: "sample" }, t("sample")));
  if (s.reported_closed) parts.push(el("p", { class: "warn", role: "alert" }, t("reported")));
  parts.push(...await stationWhere(s));
  if (stationCode() !== code) return;
  if (!kept) {
    parts.push(el("p", {}, labelled("address", ""), el("span", { lang: "zh-CN" }, s.address || "—")));
  }
  // The server's plain Chinese (geo_service/hours/text.py) reads more rules than the
  // phone's own hoursText, which the stops table and the offline pages still use.
  const hours = state.lang === "zh" && s.opening_hours_zh ? s.opening_hours_zh
    : hoursText(s.opening_hours, state.lang);
  parts.push(el("p", {}, labelled("hours", hours)));
  if (s.phone) {
    parts.push(el("p", {}, labelled("phone", ""), el("a", { class: "btn small", href: `tel:${s.phone}` }, s.phone)));
  }
  if (s.last_confirmed_at) parts.push(el("p", { class: "meta" }, labelled("confirmed", s.last_confirmed_at.slice(0, 10))));
  parts.push(el("h3", {}, t("navigate")));
  const nav = [["amap", "amap_ride"], ["baidu", "baidu_ride"], ["tencent", "tencent_ride"]]
    .filter(([, link]) => s.links[link])
    .map(([kind, link]) => el("a", { class: "btn", href: s.links[link], "data-nav": kind,
      rel: "noopener" }, t(kind)));
  parts.push(el("div", { class: "nav" }, ...nav,
    el("a", { class: "btn", href: s.links.geo, "data-nav": "geo" }, t("geo"))));
  parts.push(el("div", { id: "st-map", class: "st-map", role: "region", "aria-label": t("st_map") }));
  parts.push(el("h3", {}, t("checklist")));
  const have = new Set(s.amenities);
  parts.push(el("ul", { class: "checklist" }, ...tenOnes().map((c) => el("li",
    { class: have.has(c) ? "yes" : "no" }, `${have.has(c) ? "✓" : "✗"} ${amenityName(c, state.lang)}`))));
  if (s.awards && s.awards.length) {
    parts.push(el("h3", {}, t("awards")));
    parts.push(el("ul", {}, ...s.awards.map((a) => el("li", {}, `${a.year} `,
      el("span", { lang: "zh-CN" }, a.title)))));
  }
  if (kept) {
    parts.push(el("p", { class: "meta" }, t("st_feedback_offline")));
    box.replaceChildren(...parts);
    finishStation(s);
    document.body.dataset.state = "station-offline";
    afterFirstAnswer();
    return;
  }
  const sched = el("div");
  parts.push(sched);
  const msg = el("p", { class: "msg", role: "status", "aria-live": "polite", id: "feedback-msg" });
  const missingSel = el("select", { id: "missing-amenity", "aria-label": t("r_missing") },
    ...tenOnes().map((c) => el("option", { value: c }, amenityName(c, state.lang))));
  const bClosed = el("button", { type: "button", class: "btn", id: "r-closed" }, t("r_closed"));
  const bMissing = el("button", { type: "button", class: "btn", id: "r-missing" }, t("r_missing"));
  const bConfirm = el("button", { type: "button", class: "btn", id: "r-confirm" }, t("r_confirm"));
  const base = `/v1/stations/${encodeURIComponent(code)}`;
  bClosed.addEventListener("click", async () => {
    msg.textContent = feedbackMessage(await send(`${base}/reports`, { kind: "closed" }), t("thanks"));
  });
  bMissing.addEventListener("click", async () => {
    msg.textContent = feedbackMessage(await send(`${base}/reports`,
      { kind: "amenity_missing", amenity: missingSel.value }), t("thanks"));
  });
  bConfirm.addEventListener("click", async () => {
    msg.textContent = feedbackMessage(await send(`${base}/confirmations`), t("confirmed_ok"));
  });
  parts.push(el("h3", {}, t("report")),
    el("div", { class: "actions" }, bConfirm, bClosed),
    el("div", { class: "actions" }, missingSel, bMissing), msg);
  box.replaceChildren(...parts);
  finishStation(s);
  document.body.dataset.state = "station";
  afterFirstAnswer();
  if (s.host_type === "mobile") {
    const stops = await getJson(`${base}/stops`).catch(() => null);
    if (stops && stops.ok && stops.body.stops.length) {
      sched.replaceChildren(el("h3", {}, t("schedule")), el("table", {},
        ...stops.body.stops.map((st) => el("tr", {}, el("td", {}, String(st.seq)),
          el("td", { lang: "zh-CN" }, st.name), el("td", {}, hoursText(st.opening_hours, state.lang))))));
    }
  }
}
