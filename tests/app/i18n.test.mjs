// Unit tests of the app's pure words (geo_service/app/static/i18n.js), run by node's own
// test runner (`node --test tests/app/*.test.mjs`, in `make test`): the module imports
// here as the phone loads it, with no DOM. The page itself is tested in Chromium
// (tests/test_app_browser.py); the server's vocabulary in tests/test_app_browser.py too.
import assert from "node:assert/strict";
import { test } from "node:test";

import { EN } from "../../geo_service/app/static/i18n-en.js";
import { STATION_WORDS } from "../../geo_service/app/static/i18n-station.js";
import {
  T, WALK_MAX_MIN, addWords, amenityBadge, amenityName, compass, displayName, distanceText,
  hoursText, minutes, openText, setVocabulary, stripSample, tenOnes, travelText, whenText,
} from "../../geo_service/app/static/i18n.js";

// English comes in its own module, as the page loads it when a rider picks English, and
// the station page's words with the page, in both languages.
assert.equal(T.en, undefined);
assert.equal(T.zh.address, undefined);
addWords("en", EN);
for (const [lang, words] of Object.entries(STATION_WORDS)) addWords(lang, words);

// The list is for 21:00 China time on Monday 7 December 2026.
const REF = "2026-12-07T21:00:00+08:00";

test("the station page's words are its own, in both languages", () => {
  assert.deepEqual(Object.keys(STATION_WORDS).sort(), ["en", "zh"]);
  assert.deepEqual(Object.keys(STATION_WORDS.en).sort(), Object.keys(STATION_WORDS.zh).sort());
  for (const k of Object.keys(STATION_WORDS.zh)) {
    assert.ok(!(k in EN), `${k}: in i18n-en.js too`);
  }
});

test("both languages have the same words, of the same kinds", () => {
  const zh = Object.keys(T.zh).sort();
  const en = Object.keys(T.en).sort();
  assert.deepEqual(en.filter((k) => !zh.includes(k)), [], "in English only");
  assert.deepEqual(zh.filter((k) => !en.includes(k)), [], "in Chinese only: missing in English");
  for (const k of zh) {
    assert.equal(typeof T.en[k], typeof T.zh[k], k);
    if (typeof T.zh[k] === "function") assert.equal(T.en[k].length, T.zh[k].length, k);
  }
  assert.equal(T.zh.dirs.length, 8);
  assert.equal(T.en.dirs.length, 8);
});

test("the open line: today, after midnight, closed, unknown, in zh and en", () => {
  const open = (next) => ({ open_now: true, next_change: next });
  assert.deepEqual(openText(open("2026-12-07T22:00:00+08:00"), REF, "zh"),
    { state: "open", text: "营业至 22:00" });
  assert.deepEqual(openText(open("2026-12-07T22:00:00+08:00"), REF, "en"),
    { state: "open", text: "Open until 22:00" });
  assert.equal(openText(open("2026-12-08T02:00:00+08:00"), REF, "zh").text, "营业至 明天 02:00");
  assert.equal(openText(open("2026-12-08T02:00:00+08:00"), REF, "en").text,
    "Open until 02:00 tomorrow");
  const closed = { open_now: false, next_change: "2026-12-08T08:00:00+08:00" };
  assert.deepEqual(openText(closed, REF, "zh"),
    { state: "closed", text: "已关门 · 明天 08:00 开门" });
  assert.equal(openText(closed, REF, "en").text, "Closed · opens 08:00 tomorrow");
  assert.equal(openText({ open_now: true, next_change: null }, REF, "zh").text, "营业中");
  assert.equal(openText({ open_now: false, next_change: null }, REF, "en").text, "Closed");
  assert.deepEqual(openText({ open_now: null }, REF, "zh"), { state: "unknown", text: "营业时间不详" });
  assert.equal(openText({ open_now: null }, REF, "en").text, "Hours unknown");
});

test("when: the weekday within a week, the date beyond, on the station's own clock", () => {
  assert.equal(whenText("2026-12-09T08:00:00+08:00", REF, "zh"), "周三 08:00");
  assert.equal(whenText("2026-12-09T08:00:00+08:00", REF, "en"), "Wed 08:00");
  assert.equal(whenText("2026-12-13T08:00:00+08:00", REF, "en"), "Sun 08:00"); // 6 days
  assert.equal(whenText("2026-12-14T08:00:00+08:00", REF, "zh"), "12月14日 08:00"); // 7
  assert.equal(whenText("2026-12-20T08:00:00+08:00", REF, "en"), "20 Dec 08:00");
  // 16:30Z is already the 8th in China: 01:00 that day is today, not tomorrow.
  assert.equal(whenText("2026-12-08T01:00:00+08:00", "2026-12-07T16:30:00Z", "en"), "01:00");
});

test("travel: walk and e-bike minutes, and past the walking limit only the e-bike", () => {
  assert.equal(travelText(1000, "zh"), "步行 17 分钟 · 电动车 5 分钟");
  assert.equal(travelText(1000, "en"), "walk 17 min · e-bike 5 min");
  assert.equal(minutes(2596, 4.5), WALK_MAX_MIN); // at the limit: still a walk
  assert.equal(travelText(2596, "en"), "walk 45 min · e-bike 13 min");
  assert.equal(travelText(2700, "zh"), "较远 · 电动车 14 分钟");
  assert.equal(travelText(3000, "en"), "far · e-bike 16 min");
  assert.equal(minutes(1, 15), 1); // never "0 min"
});

test("travel by road: the road's minutes and metres, not the straight estimate", () => {
  // 400 m straight across a river, 1,640 m round by the bridge (a nearest by=walk leg).
  const road = { mode: "walk", metres: 1640.4, minutes: 21.49, straight_m: 400, snap_m: 12 };
  assert.equal(travelText(400, "zh", road), "步行 21 分钟 · 电动车 7 分钟 · 路程 1.6 km");
  assert.equal(travelText(400, "en", road), "walk 21 min · e-bike 7 min · by road 1.6 km");
  const far = { ...road, metres: 3500, minutes: 46.7 };
  assert.equal(travelText(400, "zh", far), "较远 · 电动车 14 分钟 · 路程 3.5 km");
  assert.equal(travelText(400, "zh", { ...road, metres: 20, minutes: 0.2 }),
    "步行 1 分钟 · 电动车 1 分钟 · 路程 20 m");
  // Offline with roads loaded: the straight estimate, named as one.
  assert.equal(travelText(1000, "zh", null, true), "步行 17 分钟 · 电动车 5 分钟 · 直线估算");
  assert.equal(travelText(1000, "en", null, true),
    "walk 17 min · e-bike 5 min · straight-line estimate");
});

test("compass points and distances", () => {
  assert.equal(compass(0, "zh"), "北");
  assert.equal(compass(44, "zh"), "东北");
  assert.equal(compass(359, "en"), "N");
  assert.equal(compass(-90, "en"), "W");
  assert.equal(compass(180, "en"), "S");
  assert.equal(compass(null, "zh"), "");
  assert.equal(distanceText(999), "999 m");
  assert.equal(distanceText(1549), "1.5 km");
  assert.equal(T.zh.metres(650), "650 米");
  assert.equal(T.en.metres(2400), "2.4 km");
  assert.equal(T.zh.where("东北", "650 米", true), "距您的位置：东北 650 米");
  assert.equal(T.en.where("NE", "650 m", false), "650 m NE of the chosen point");
});

test("the sample tag is cut from a name, once, only at its start", () => {
  assert.equal(stripSample("【示例】三亚湾驿站"), "三亚湾驿站");
  assert.equal(stripSample(" [SAMPLE]  Sanya Bay station"), "Sanya Bay station");
  assert.equal(stripSample("[sample] x"), "x");
  assert.equal(stripSample("三亚湾驿站【示例】"), "三亚湾驿站【示例】");
  assert.deepEqual(displayName({ name: "三亚湾驿站", name_en: "Sanya Bay" }, "en"),
    { text: "Sanya Bay", zh: false });
  assert.deepEqual(displayName({ name: "三亚湾驿站", name_en: null }, "en"),
    { text: "三亚湾驿站", zh: true });
  assert.deepEqual(displayName({ name: "三亚湾驿站", name_en: "Sanya Bay" }, "zh"),
    { text: "三亚湾驿站", zh: true });
});

test("hours and amenities in the server's words once they came, as written before", () => {
  // Before the vocabulary: codes stand in and hours show as written (no copied words).
  assert.equal(hoursText("Mo-Fr 08:00-18:00", "zh"), "Mo-Fr 08:00-18:00");
  assert.equal(amenityName("microwave", "zh"), "microwave");
  assert.deepEqual(tenOnes(), []);
  // A vocabulary of this test's own (the server's is checked against catalogue.py and
  // hours/text.py in tests/test_app_browser.py).
  setVocabulary({
    ten_ones: [{ code: "microwave", zh: "微波炉", en: "Microwave", badge_zh: "微", badge_en: "Mw" },
      { code: "restroom", zh: "卫生间", en: "Restroom", badge_zh: "厕", badge_en: "WC" }],
    hours: { days_zh: { Mo: "周一", Fr: "周五", Sa: "周六", Su: "周日", PH: "法定节假日" },
      to_zh: "至", off_zh: "休息" },
  });
  assert.deepEqual(tenOnes(), ["microwave", "restroom"]);
  assert.equal(amenityName("restroom", "en"), "Restroom");
  assert.equal(amenityBadge("microwave", "zh"), "微");
  assert.equal(amenityBadge("restroom", "en"), "WC");
  assert.equal(amenityName("canteen", "en"), "canteen"); // not sent: the code
  assert.equal(hoursText("Mo-Fr 08:00-18:00; Sa,Su off", "zh"),
    "周一至周五 08:00-18:00；周六、周日 休息");
  assert.equal(hoursText("PH off", "zh"), "法定节假日 休息");
  assert.equal(hoursText("Mo-Fr 08:00-18:00", "en"), "Mo-Fr 08:00-18:00");
  assert.equal(hoursText(" 24/7 ", "zh"), "全天 24 小时");
  assert.equal(hoursText("24/7", "en"), "24 hours, every day");
  assert.equal(hoursText(null, "zh"), "营业时间不详");
  assert.equal(hoursText("", "en"), "Hours unknown");
});
