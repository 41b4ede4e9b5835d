// The courier app: nearest open stations, a map, a station page, reports.
// A plain ES module, no framework, no build step. Everything shown comes from this
// service's JSON API; the position leaves the phone only inside the nearest query.

const K = 5;
// Speeds for the minutes shown (also stated in the footnote): on the straight
// distance times a detour factor, since streets are not straight lines.
const WALK_KMH = 4.5;
const EBIKE_KMH = 15;
const DETOUR = 1.3;
// Nobody on a shift walks 140 minutes to a rest: past this many walking minutes (2.6 km
// straight at the speeds above) a card says "far" and gives the e-bike time only.
export const WALK_MAX_MIN = 45;
// "24 hours" has no API parameter: it asks for more and keeps those whose hours are 24/7.
const K_24H = 50;

// Each of the ten ones as a short badge (text, not emoji: it reads the same on every
// phone font) — one character in Chinese, two letters in English — with its full name
// for screen readers and the tooltip.
const TEN_ONES = [
  ["indoor_rest", "室", "室内休息场所", "Indoor rest space", "Rm"],
  ["seating", "座", "座椅", "Seats", "St"],
  ["microwave", "微", "微波炉", "Microwave", "Mw"],
  ["water_dispenser", "水", "饮水机", "Water dispenser", "Wa"],
  ["restroom", "厕", "卫生间", "Restroom", "WC"],
  ["first_aid_kit", "药", "应急医药箱", "First-aid kit", "FA"],
  ["book_rack", "书", "书报架", "Book rack", "Bk"],
  ["phone_charging", "充", "手机充电", "Phone charging", "Ch"],
  ["refrigerator", "冰", "电冰箱", "Refrigerator", "Fr"],
  ["umbrella_stand", "伞", "雨伞架", "Umbrella stand", "Um"],
];
const AMENITY = Object.fromEntries(TEN_ONES.map(([c, iZh, zh, en, iEn]) =>
  [c, { zh, en, icon: { zh: iZh, en: iEn } }]));

// Filter chips: an amenity code goes to the API's `amenities`; open_now to `open_now`.
const CHIPS = [
  ["open_now", "营业中", "Open now"],
  ["microwave", "微波炉", "Microwave"],
  ["restroom", "卫生间", "Restroom"],
  ["water_dispenser", "饮水", "Drinking water"],
  ["phone_charging", "手机充电", "Phone charging"],
  ["h24", "24小时", "24 hours"],
];

const T = {
  zh: {
    title: "附近的户外劳动者驿站", locate: "用我的位置", elsewhere: "看别处",
    district: "选择区县", district_pick: "— 区县 —", list_title: "最近的驿站",
    back: "← 返回列表", sample: "示例数据（SAMPLE）：并非真实站点",
    foot: "步行按 4.5 公里/小时、电动车按 15 公里/小时估算，路程按直线距离 ×1.3 计；" +
      `步行超过 ${WALK_MAX_MIN} 分钟的只给电动车时间。` +
      "“24小时”筛选在手机上按营业时间“24/7”挑选。",
    locating: "正在获取位置…", loading: "正在查找附近驿站…",
    offline: (asOf) => `离线：按手机上保存的数据计算，数据截至 ${asOf}`,
    offline_none: "没有网络，手机上也还没有保存的站点数据。",
    provisional: "先按手机上保存的数据显示，正在更新…",
    denied: "没有位置权限：请点地图上的一点，或选择区县。",
    unavailable: "无法获取位置：请点地图上的一点，或选择区县。",
    tap: "请点地图上的一点，或选择区县。", none: "附近没有符合条件的驿站。",
    found: (n, where) => `${where}附近 ${n} 个驿站`, here: "您的位置", tapped: "所选地点",
    walk: "步行", ebike: "电动车", min: "分钟", far: "较远", open: "营业中", closed_now: "已关门",
    unknown: "营业时间不详", reported: "⚠ 有人报告此站已关闭",
    open_until: (w) => `营业至 ${w}`, closed_opens: (w) => `已关门 · ${w} 开门`,
    tomorrow: (hm) => `明天 ${hm}`, locale: "zh-CN", colon: "：", list_sep: "、",
    confirmed: "最近确认", missing: "缺", all10: "十有齐全", stop: "当前停靠", leaves: "离开时间",
    sample_tag: "示例", dirs: ["北", "东北", "东", "东南", "南", "西南", "西", "西北"],
    address: "地址", hours: "营业时间", phone: "电话", checklist: "“十有”清单", awards: "荣誉",
    schedule: "流动站停靠安排", navigate: "导航", amap: "高德骑行", baidu: "百度骑行",
    tencent: "腾讯骑行", geo: "其他地图 (geo:)", report: "反馈", r_closed: "报告：已关闭",
    r_missing: "报告：缺少设施", r_confirm: "确认：正在营业", thanks: "已收到，谢谢！",
    already: "您已经反馈过了，谢谢！", confirmed_ok: "已确认，谢谢！", failed: "没有成功：",
    has: "有", lacks: "缺少", notfound: "找不到这个驿站。", lang: "English",
    no_network: "没有网络", st_offline: (asOf) => `离线：按手机上保存的数据显示，数据截至 ${asOf}`,
    st_not_kept: "没有网络，手机上保存的数据里没有这个驿站：有网络时再打开。",
    st_feedback_offline: "地址、电话和反馈需要网络。",
    h247: "全天 24 小时", filters: "筛选", map: "地图",
  },
  en: {
    title: "Rest stations for outdoor workers", locate: "My location", elsewhere: "Elsewhere",
    district: "District", district_pick: "— district —",
    list_title: "Nearest stations", back: "← Back to the list",
    sample: "SAMPLE data: not real stations",
    foot: "Minutes assume 4.5 km/h walking and 15 km/h by e-bike over the straight " +
      `distance ×1.3; past a ${WALK_MAX_MIN}-minute walk only the e-bike time is given. ` +
      "The 24 hours filter keeps stations whose hours are 24/7, on the phone.",
    locating: "Finding your position…", loading: "Looking for stations…",
    offline: (asOf) => `Offline: computed on the phone from data as of ${asOf}`,
    offline_none: "No network, and no station data kept on the phone yet.",
    provisional: "Shown from the data on the phone, updating…",
    denied: "No location permission: tap the map or pick a district.",
    unavailable: "Location unavailable: tap the map or pick a district.",
    tap: "Tap the map or pick a district.", none: "No station nearby matches.",
    found: (n, where) => `${n} stations near ${where}`, here: "you", tapped: "the chosen point",
    walk: "walk", ebike: "e-bike", min: "min", far: "far", open: "Open now", closed_now: "Closed",
    unknown: "Hours unknown", reported: "⚠ Reported closed",
    open_until: (w) => `Open until ${w}`, closed_opens: (w) => `Closed · opens ${w}`,
    tomorrow: (hm) => `${hm} tomorrow`, locale: "en-GB", colon: ": ", list_sep: ", ",
    confirmed: "Last confirmed", missing: "Missing", all10: "All ten ones",
    stop: "Current stop", leaves: "leaves", sample_tag: "SAMPLE",
    dirs: ["N", "NE", "E", "SE", "S", "SW", "W", "NW"], address: "Address", hours: "Hours",
    phone: "Phone", checklist: "Ten-ones checklist", awards: "Awards",
    schedule: "Mobile station schedule", navigate: "Navigate", amap: "Amap (ride)",
    baidu: "Baidu (ride)", tencent: "Tencent (ride)", geo: "Other map app (geo:)",
    report: "Feedback", r_closed: "Report: closed", r_missing: "Report: something missing",
    r_confirm: "Confirm: it is open", thanks: "Received, thank you!",
    already: "You already reported, thank you!", confirmed_ok: "Confirmed, thank you!",
    failed: "Did not work: ", has: "has", lacks: "lacks", notfound: "No such station.",
    no_network: "no network",
    st_offline: (asOf) => `Offline: shown from the data on the phone, as of ${asOf}`,
    st_not_kept: "No network, and this station is not in the data on the phone: " +
      "open it again when online.",
    st_feedback_offline: "Address, phone and feedback need the network.",
    lang: "中文", h247: "24 hours, every day", filters: "Filters", map: "Map",
  },
};

// The station page's open line, where it is from the rider, its small map, the districts
// by city and the word that replaced an earlier one (issue 29, items 5, 6, 8, 9).
Object.assign(T.zh, {
  metres: (m) => (m < 1000 ? `${Math.round(m)} 米` : `${(m / 1000).toFixed(1)} 公里`),
  where: (dir, dist, gps) => `${gps ? "距您的位置" : "距所选地点"}：${dir} ${dist}`,
  st_map: "驿站位置图", replaced: "已更新你刚才的反馈", baidu_web: "百度地图",
  other_city: "其他",
});
Object.assign(T.en, {
  metres: (m) => (m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`),
  where: (dir, dist, gps) => `${dist} ${dir} of ${gps ? "you" : "the chosen point"}`,
  st_map: "Map of the station", replaced: "Your earlier word was replaced",
  baidu_web: "Baidu Maps", other_city: "Other",
});

const store = {
  get(key, fallback) {
    try { const v = localStorage.getItem(key); return v === null ? fallback : JSON.parse(v); }
    catch { return fallback; }
  },
  set(key, value) { try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* full */ } },
};

const state = {
  lang: store.get("geo.lang", "zh"),
  chips: store.get("geo.chips", { open_now: true }),
  point: null, // {lon, lat, source: "gps" | "tap" | "district"}
  results: [],
  seq: 0,
};

const $ = (id) => document.getElementById(id);
const t = (key) => T[state.lang][key];

function el(tag, attrs = {}, ...children) {
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

function deviceId() {
  let id = store.get("geo.device", null);
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    store.set("geo.device", id);
  }
  return id;
}

// --- formatting ---------------------------------------------------------------------------

export function distanceText(m) {
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`;
}

export function minutes(m, kmh) {
  return Math.max(1, Math.round((m * DETOUR) / 1000 / kmh * 60));
}

export function compass(deg, lang = "zh") {
  if (deg === null || deg === undefined) return "";
  return T[lang].dirs[Math.round((((deg % 360) + 360) % 360) / 45) % 8];
}

/** Calendar days from the day of instant `refIso` to the day of `iso`, both days read on
 * the clock of `iso`'s own offset (the server writes station times in the station's zone),
 * so the phone's timezone never enters. */
function daysAhead(iso, refIso) {
  const m = iso.match(/([+-])(\d\d):?(\d\d)$/);
  const offsetMs = m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60e3 : 0;
  const day = (ms) => Math.floor((ms + offsetMs) / 86400e3);
  return day(Date.parse(iso)) - day(refIso ? Date.parse(refIso) : Date.now());
}

/** A station-time ISO instant as the station's own clock reads it, relative to the day of
 * `refIso` (the instant the list is for): "22:00", "明天 02:00" / "02:00 tomorrow", then
 * the weekday within a week, the date beyond. */
export function whenText(iso, refIso, lang = "zh") {
  const L = T[lang];
  const hm = iso.slice(11, 16);
  const n = daysAhead(iso, refIso);
  if (n <= 0) return hm;
  if (n === 1) return L.tomorrow(hm);
  // The station's calendar day, named at UTC midnight (no zone can shift it).
  const day = new Date(`${iso.slice(0, 10)}T00:00Z`).toLocaleDateString(L.locale, n < 7
    ? { timeZone: "UTC", weekday: "short" } : { timeZone: "UTC", month: "short", day: "numeric" });
  return `${day} ${hm}`;
}

/** The open line of a nearest row (`open_now`, `next_change`) at instant `refIso`, as
 * `{state: "open" | "closed" | "unknown", text}`: "营业至 22:00", "已关门 · 明天 08:00 开门". */
export function openText(s, refIso, lang = "zh") {
  const L = T[lang];
  const when = s.next_change ? whenText(s.next_change, refIso, lang) : null;
  if (s.open_now === true) return { state: "open", text: when ? L.open_until(when) : L.open };
  if (s.open_now === false) {
    return { state: "closed", text: when ? L.closed_opens(when) : L.closed_now };
  }
  return { state: "unknown", text: L.unknown };
}

/** The travel line's minutes: walking and e-bike, or "far" and the e-bike time only once
 * the walk passes WALK_MAX_MIN. */
export function travelText(m, lang = "zh") {
  const L = T[lang];
  const ride = `${L.ebike} ${minutes(m, EBIKE_KMH)} ${L.min}`;
  const walk = minutes(m, WALK_KMH);
  return walk > WALK_MAX_MIN ? `${L.far} · ${ride}` : `${L.walk} ${walk} ${L.min} · ${ride}`;
}

// Sample names carry their tag in the data ("【示例】…", "[SAMPLE] …"); the card shows it
// once, as its own unbreakable tag, so it is cut from the name.
const SAMPLE_PREFIX = /^\s*(【示例】|\[SAMPLE\])\s*/i;

/** The station's name in the page's language (the Chinese one when there is no English
 * one) and whether that name is Chinese text (for `lang`, and the screen reader's voice). */
function displayName(s, lang = state.lang) {
  const en = lang === "en" && s.name_en;
  return { text: en ? s.name_en : s.name, zh: !en };
}

const DAYS_ZH = { Mo: "周一", Tu: "周二", We: "周三", Th: "周四", Fr: "周五", Sa: "周六",
  Su: "周日", PH: "法定节假日" };

/** Hours in plain words: the simple OSM forms translated, anything else shown as written. */
export function hoursText(expr, lang = "zh") {
  if (!expr) return T[lang].unknown;
  if (expr.trim() === "24/7") return T[lang].h247;
  if (lang !== "zh") return expr;
  return expr.replace(/\b(Mo|Tu|We|Th|Fr|Sa|Su|PH)\b/g, (d) => DAYS_ZH[d])
    .replace(/-(?=周|法)/g, "至").replace(/\boff\b/g, "休息").replace(/;\s*/g, "；")
    .replace(/,/g, "、");
}

// --- the nearest query --------------------------------------------------------------------

// `/app/?at=2026-12-01T11:00:00` shows the list as it will be then (a bus's stops, hours):
// for checking a schedule, and for tests. Passed to the API as is; the API checks it.
const AT = new URLSearchParams(location.search).get("at");

export function nearestUrl(point, chips, at = AT) {
  const p = new URLSearchParams({ lon: point.lon.toFixed(6), lat: point.lat.toFixed(6),
    k: String(chips.h24 ? K_24H : K) });
  if (at) p.set("at", at);
  if (chips.open_now) p.set("open_now", "true");
  const want = CHIPS.map(([c]) => c).filter((c) => c in AMENITY && chips[c]);
  if (want.length) p.set("amenities", want.join(","));
  return `/v1/stations/nearest?${p}`;
}

async function getJson(url, opts = {}) {
  const r = await fetch(url, { headers: { Accept: "application/json" }, ...opts });
  let body = null;
  try { body = await r.json(); } catch { body = null; }
  // The service worker's stand-in when the network is gone (the last answer it kept).
  const offline = r.headers.get("X-Geo-Offline") === "1";
  return { status: r.status, ok: r.ok && !offline, offline, body };
}

// --- weak signal: the snapshot kept on the phone (offline.js) -------------------------------

const SNAPSHOT_N = 1000; // stations kept around the last position (~20 KB gzipped)
const SNAPSHOT_EVERY_MS = 10 * 60e3;
// A snapshot synced this recently answers first while the server's answer is on its way.
const PROVISIONAL_MAX_AGE_MS = 60 * 60e3;
let offlineModule = null;

function loadScript(src) {
  return new Promise((ok, fail) => {
    const s = document.createElement("script");
    s.src = src; s.onload = ok; s.onerror = fail;
    document.head.append(s);
  });
}

/** offline.js with Karney's geodesics loaded, on first need (not on the first paint). */
async function offline() {
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
async function keepSnapshot(point) {
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
  } catch { /* no snapshot this time: the list itself is already shown */ }
}

function amenityCodes(snap, mask) {
  return Object.entries(snap.amenity_bits)
    .filter(([, bit]) => Math.floor(mask / 2 ** bit) % 2 === 1).map(([code]) => code);
}

/** The nearest list computed on the phone, in the shape the cards read. */
async function nearestOnPhone(point, chips) {
  const off = await offline();
  const snap = await off.loadSnapshot().catch(() => null);
  if (!snap) return null;
  let at = AT || undefined;
  if (at && !/(Z|[+-]\d\d:?\d\d)$/.test(at)) at += "+08:00"; // naive = China time, as the API
  const want = CHIPS.map(([c]) => c).filter((c) => c in AMENITY && chips[c]);
  const rows = off.nearestOffline(snap, { lon: point.lon, lat: point.lat,
    k: chips.h24 ? K_24H : K, openNow: !!chips.open_now, amenities: want, at });
  const index = new Map(snap.stations.code.map((c, i) => [c, i]));
  const results = rows.map((r) => {
    const i = index.get(r.code);
    const amenities = amenityCodes(snap, snap.stations.amenities[i]);
    const rule = snap.stations.rule[i];
    return { ...r, amenities,
      opening_hours: rule >= 0 ? snap.rules[rule] : null,
      ten_ones: { missing: TEN_ONES.map(([c]) => c).filter((c) => !amenities.includes(c)) } };
  });
  const when = off.isoIn(at ? Date.parse(at) : Date.now(), "Asia/Shanghai");
  return { results, asOf: snap.as_of, complete: rows.complete, at: when };
}

/** When a snapshot was taken, as the rider reads it (China time). */
function asOfText(iso) {
  return new Date(iso).toLocaleString(t("locale"),
    { timeZone: "Asia/Shanghai", dateStyle: "short", timeStyle: "short" });
}

/** A station as the snapshot kept on the phone holds it, in the shape of
 * /v1/stations/{code} as far as the snapshot goes (no address, phone, awards or platform
 * links: only the `geo:` link, which needs no conversion), or null when it is not there. */
async function stationOnPhone(code) {
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

function errorText(res) {
  return res.body && res.body.error ? res.body.error.message : `HTTP ${res.status}`;
}

async function loadNearest() {
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
  const res = await getJson(nearestUrl(state.point, state.chips)).catch(() => null);
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
  for (const [code, , zh, en] of TEN_ONES) {
    const name = state.lang === "zh" ? zh : en;
    const ok = have.has(code);
    ul.append(el("li", { class: ok ? "yes" : "no", title: name,
      "aria-label": `${ok ? t("has") : t("lacks")} ${name}` },
    el("span", { "aria-hidden": "true" }, el("b", {}, ok ? "✓" : "✗"),
      AMENITY[code].icon[state.lang])));
  }
  return ul;
}

function openLine(s) {
  const { state: open, text } = openText(s, state.at, state.lang);
  return el("span", { class: open === "unknown" ? "meta" : open }, text);
}

/** "label：value" in Chinese, "label: value" in English. */
function labelled(key, value) {
  return `${t(key)}${t("colon")}${value}`;
}

function card(s, i) {
  const { text: name, zh } = displayName(s);
  const d = s.distance_m;
  const missing = s.ten_ones.missing.map((c) => AMENITY[c] ? AMENITY[c][state.lang] : c);
  const shown = s.sample ? name.replace(SAMPLE_PREFIX, "") : name;
  const li = el("li", { class: "card", "data-code": s.code },
    el("a", { class: "name", href: `#/s/${encodeURIComponent(s.code)}` }, `${i + 1}. `,
      s.sample ? el("span", { class: "sample-tag" }, t("sample_tag")) : null,
      el("span", { lang: zh ? "zh-CN" : null }, shown)),
    el("div", { class: "meta" }, [distanceText(d), compass(s.bearing_deg, state.lang),
      travelText(d, state.lang)].filter(Boolean).join(" · ")),
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

function renderList() {
  const list = $("list");
  list.replaceChildren(...state.results.map(card));
  list.dataset.codes = state.results.map((s) => s.code).join(",");
  list.dataset.seq = String(state.seq);
  list.dataset.point = `${state.point.lon.toFixed(6)},${state.point.lat.toFixed(6)}`;
  $("sample").hidden = !state.results.some((s) => s.sample);
  const where = state.point && state.point.source === "gps" ? t("here") : t("tapped");
  $("status").textContent = state.results.length ? t("found")(state.results.length, where) : t("none");
}

function renderChips() {
  const box = $("chips");
  box.setAttribute("aria-label", t("filters"));
  box.replaceChildren(...CHIPS.map(([code, zh, en]) => {
    const b = el("button", { type: "button", class: "chip", "data-chip": code,
      "aria-pressed": state.chips[code] ? "true" : "false" }, state.lang === "zh" ? zh : en);
    b.addEventListener("click", () => {
      state.chips[code] = !state.chips[code];
      store.set("geo.chips", state.chips);
      renderChips();
      loadNearest();
    });
    return b;
  }));
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

// --- map ----------------------------------------------------------------------------------

let map = null;
let layer = null;
let basemap = null; // the configured basemap (/app/config.json), once the map started

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

function startMap() {
  if (!mapAsked) {
    mapAsked = Promise.all([getJson("/app/config.json").catch(() => null),
      loadScript(`${LEAFLET}.js`), loadStyle(`${LEAFLET}.css`)])
      .then(([cfg]) => initMap(cfg && cfg.ok ? cfg.body.basemap : null))
      .then(() => { if (state.results.length) drawMap(); })
      .catch(() => {});
  }
  return mapAsked;
}

// Where a WGS-84 position goes on the map, and back. Identity, unless the basemap's tiles
// are drawn in GCJ-02 (Amap, Tencent): then every point is shifted as the tiles are, and a
// tap is shifted back before it is asked about (gcoord, from npm, iterates to ~0.1 m).
let toMap = (lat, lon) => [lat, lon];
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

function drawMap() {
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
      iconSize: [30, 30] }), title: displayName(s).text, alt: displayName(s).text });
    m.on("click", () => { location.hash = `#/s/${encodeURIComponent(s.code)}`; });
    m.addTo(layer);
    pts.push(p);
  });
  // A tap keeps the map where the finger left it; a position or district brings the view.
  if (state.point && state.point.source === "tap") return;
  if (pts.length > 1) map.fitBounds(pts, { padding: [30, 30], maxZoom: 16 });
  else if (pts.length === 1) map.setView(pts[0], 15);
}

async function showAround() {
  // No position: show where stations are, so there is something to tap near.
  await startMap();
  const res = await getJson("/v1/stations?limit=100").catch(() => null);
  if (!res || !res.ok || !map) return;
  const L = window.L;
  const pts = res.body.items.map((s) => toMap(s.lat, s.lon));
  for (const p of pts) L.circleMarker(p, { radius: 4, weight: 1, interactive: false }).addTo(layer);
  if (pts.length) map.fitBounds(pts, { padding: [20, 20] });
}

// --- position -----------------------------------------------------------------------------

function setPoint(point) {
  performance.mark("geo:point");
  state.point = point;
  // Kept on the phone (one point, replaced each time): the station page measures from it.
  store.set("geo.point", point);
  loadNearest();
}

function locate() {
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

async function loadDistricts() {
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
function renderDistricts() {
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

async function pickDistrict(code) {
  if (!code) return;
  // The district's centre as the median of its stations' positions (areas carry no centre).
  const res = await getJson(`/v1/stations?area=${encodeURIComponent(code)}&limit=100`).catch(() => null);
  if (!res || !res.ok || !res.body.items.length) { $("status").textContent = t("none"); return; }
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  setPoint({ lon: med(res.body.items.map((s) => s.lon)), lat: med(res.body.items.map((s) => s.lat)),
    source: "district" });
}

// --- the station page ---------------------------------------------------------------------

function stationCode() {
  const h = location.hash.match(/^#\/s\/([^/?#]+)/);
  if (h) return decodeURIComponent(h[1]);
  const p = location.pathname.match(/^\/app\/s\/([^/?#]+)/);
  return p ? decodeURIComponent(p[1]) : null;
}

function route() {
  const code = stationCode();
  $("home").hidden = Boolean(code);
  $("station").hidden = !code;
  if (code) showStation(code);
  else if (map) setTimeout(() => map.invalidateSize(), 0);
}

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

async function showStation(code) {
  const box = $("st");
  box.replaceChildren(el("p", { class: "status" }, t("loading")));
  const q = AT ? `?${new URLSearchParams({ at: AT })}` : "";
  const res = await getJson(`/v1/stations/${encodeURIComponent(code)}${q}`).catch(() => null);
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

// --- the station page: open line, where from the rider, small map, Baidu's web page -------

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
  const { text: name, zh: nameZh } = displayName(s);
  const parts = [el("h2", { id: "st-name", lang: nameZh ? "zh-CN" : null }, name)];
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
  parts.push(el("ul", { class: "checklist" }, ...TEN_ONES.map(([c, , zh, en]) => el("li",
    { class: have.has(c) ? "yes" : "no" }, `${have.has(c) ? "✓" : "✗"} ${state.lang === "zh" ? zh : en}`))));
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
    ...TEN_ONES.map(([c, , zh, en]) => el("option", { value: c }, state.lang === "zh" ? zh : en)));
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

// --- start --------------------------------------------------------------------------------

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
function afterFirstAnswer() {
  startMap();
  registerWorker();
}

function start() {
  // A return visit with a recent snapshot: load the on-phone half while the position comes.
  if (Date.now() - store.get("geo.snapshot_at", 0) < PROVISIONAL_MAX_AGE_MS) {
    offline().then((off) => off.loadSnapshot()).catch(() => {});
  }
  setTimeout(afterFirstAnswer, 10e3); // a list that never comes must not keep them away
  applyLang();
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    store.set("geo.lang", state.lang);
    applyLang();
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
  loadDistricts();
  if (!stationCode()) locate();
}

// For tests and the curious: what the page holds (never sent anywhere).
window.GEO_APP = { state, get map() { return map; }, toMap: (lat, lon) => toMap(lat, lon) };

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
