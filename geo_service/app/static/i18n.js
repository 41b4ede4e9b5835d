// The app's words and how it says numbers, times and hours, in Chinese and English.
// Pure functions of their arguments and of the vocabulary the server sent (no DOM, no
// storage): node's own test runner imports this module as it is (tests/app/).

// Speeds for the minutes shown (also stated in the footnote): on the straight
// distance times a detour factor, since streets are not straight lines.
const WALK_KMH = 4.5;
const EBIKE_KMH = 15;
const DETOUR = 1.3;
// Nobody on a shift walks 140 minutes to a rest: past this many walking minutes (2.6 km
// straight at the speeds above) a card says "far" and gives the e-bike time only.
export const WALK_MAX_MIN = 45;

// The words by language. English is not here: i18n-en.js brings it (addWords) when a
// rider first picks English, so most riders, who read Chinese, do not download it on the
// way to their first list (bench/APP_LOAD.md); nor are the station page's own words.
export const T = {
  zh: {
    title: "附近的户外劳动者驿站", locate: "用我的位置", elsewhere: "看别处",
    district: "选择区县", district_pick: "— 区县 —", list_title: "最近的驿站",
    back: "← 返回列表", sample: "示例数据（SAMPLE）：并非真实站点",
    foot: "有道路数据时，步行分钟按道路计算，电动车按道路路程以 15 公里/小时估算；" +
      "否则（及离线时）步行按 4.5 公里/小时、电动车按 15 公里/小时估算，路程按直线距离 ×1.3 计；" +
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
    walk: "步行", ebike: "电动车", min: "分钟", far: "较远", road: "路程",
    straight_est: "直线估算", open: "营业中", closed_now: "已关门",
    unknown: "营业时间不详", reported: "⚠ 有人报告此站已关闭",
    open_until: (w) => `营业至 ${w}`, closed_opens: (w) => `已关门 · ${w} 开门`,
    tomorrow: (hm) => `明天 ${hm}`, locale: "zh-CN", colon: "：", list_sep: "、",
    confirmed: "最近确认", missing: "缺", all10: "十有齐全", stop: "当前停靠", leaves: "离开时间",
    sample_tag: "示例", dirs: ["北", "东北", "东", "东南", "南", "西南", "西", "西北"],
    hours: "营业时间", phone: "电话", checklist: "“十有”清单", failed: "没有成功：",
    has: "有", lacks: "缺少", lang: "English", no_network: "没有网络",
    h247: "全天 24 小时", filters: "筛选", map: "地图", chip_open_now: "营业中",
    chip_h24: "24小时", other_city: "其他",
  },
};

/** Add words to a language's table (i18n-en.js's, i18n-station.js's): the functions
 * below may be asked for `lang` once its table is whole. */
export function addWords(lang, words) {
  T[lang] = { ...T[lang], ...words };
}

// --- formatting ---------------------------------------------------------------------------

export function distanceText(m) {
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`;
}

export function minutes(m, kmh, detour = DETOUR) {
  return Math.max(1, Math.round((m * detour) / 1000 / kmh * 60));
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
 * the walk passes WALK_MAX_MIN. With `road` (a nearest by=walk row's leg) the walk is the
 * road's minutes, the ride its metres at the e-bike speed, and the road metres are named;
 * else both come from the straight distance `m`, and `estimate` (roads are loaded but this
 * answer was computed on the phone) says so. */
export function travelText(m, lang = "zh", road = null, estimate = false) {
  const L = T[lang];
  const ride = `${L.ebike} ${road ? minutes(road.metres, EBIKE_KMH, 1) : minutes(m, EBIKE_KMH)} ${L.min}`;
  const walk = road ? Math.max(1, Math.round(road.minutes)) : minutes(m, WALK_KMH);
  const line = walk > WALK_MAX_MIN ? `${L.far} · ${ride}` : `${L.walk} ${walk} ${L.min} · ${ride}`;
  if (road) return `${line} · ${L.road} ${distanceText(road.metres)}`;
  return estimate ? `${line} · ${L.straight_est}` : line;
}

// Sample names carry their tag in the data ("【示例】…", "[SAMPLE] …"); the card shows it
// once, as its own unbreakable tag, so it is cut from the name.
const SAMPLE_PREFIX = /^\s*(【示例】|\[SAMPLE\])\s*/i;

/** A sample station's name without its tag, which the card shows once on its own. */
export function stripSample(name) {
  return name.replace(SAMPLE_PREFIX, "");
}

/** The station's name in the page's language (the Chinese one when there is no English
 * one) and whether that name is Chinese text (for `lang`, and the screen reader's voice). */
export function displayName(s, lang) {
  const en = lang === "en" && s.name_en;
  return { text: en ? s.name_en : s.name, zh: !en };
}

// --- the server's vocabulary ---------------------------------------------------------------

// The ten ones' names and short badges and the words of opening hours are the server's
// (GET /v1/app/vocabulary, from geo_service/domain/catalogue.py and hours/text.py): the
// app loads them at start and the service worker keeps them for offline. Until they come
// (or with no network on a first visit) the codes and the hours as written stand in.
const vocab = { tenOnes: [], byCode: new Map(), days: {}, to: "", off: "", dayRange: null };

/** Take the vocabulary the server sent (the body of /v1/app/vocabulary). */
export function setVocabulary(v) {
  vocab.tenOnes = v.ten_ones.map((a) => a.code);
  vocab.byCode = new Map(v.ten_ones.map((a) => [a.code, a]));
  vocab.days = v.hours.days_zh;
  vocab.to = v.hours.to_zh;
  vocab.off = v.hours.off_zh;
  const day = Object.keys(vocab.days).join("|");
  vocab.dayRange = day ? new RegExp(`\\b(${day})(?:-(${day}))?\\b`, "g") : null;
}

/** The ten ones' codes, in the server's order. */
export function tenOnes() {
  return vocab.tenOnes;
}

/** An amenity's name in `lang` (the code when the vocabulary has not come). */
export function amenityName(code, lang) {
  const a = vocab.byCode.get(code);
  return a ? a[lang] : code;
}

/** An amenity's short badge in `lang`: one character in Chinese, two letters in English. */
export function amenityBadge(code, lang) {
  const a = vocab.byCode.get(code);
  return a ? a[`badge_${lang}`] : code;
}

/** Hours in plain words: the simple OSM forms translated, anything else shown as written. */
export function hoursText(expr, lang = "zh") {
  if (!expr) return T[lang].unknown;
  if (expr.trim() === "24/7") return T[lang].h247;
  if (lang !== "zh" || !vocab.dayRange) return expr;
  const { days, to, off } = vocab;
  return expr.replace(vocab.dayRange, (_, a, b) => (b ? `${days[a]}${to}${days[b]}` : days[a]))
    .replace(/\boff\b/g, off).replace(/;\s*/g, "；").replace(/,/g, "、");
}
