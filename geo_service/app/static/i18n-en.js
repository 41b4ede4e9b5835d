// The app's English words, loaded when a rider first picks English (state.js, loadWords):
// most riders read Chinese, so the table stays off the way to the first list. The keys
// are i18n.js's Chinese ones, word for word (tests/app/i18n.test.mjs checks); the station
// page's are in i18n-station.js.

import { WALK_MAX_MIN } from "./i18n.js";

export const EN = {
  title: "Rest stations for outdoor workers", locate: "My location", elsewhere: "Elsewhere",
  district: "District", district_pick: "— district —",
  list_title: "Nearest stations", back: "← Back to the list",
  sample: "SAMPLE data: not real stations",
  foot: "Where the service has roads, walking minutes are by road and e-bike minutes the " +
    "road distance at 15 km/h; otherwise (and offline) " +
    "minutes assume 4.5 km/h walking and 15 km/h by e-bike over the straight " +
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
  walk: "walk", ebike: "e-bike", min: "min", far: "far", road: "by road",
  straight_est: "straight-line estimate", open: "Open now", closed_now: "Closed",
  unknown: "Hours unknown", reported: "⚠ Reported closed",
  open_until: (w) => `Open until ${w}`, closed_opens: (w) => `Closed · opens ${w}`,
  tomorrow: (hm) => `${hm} tomorrow`, locale: "en-GB", colon: ": ", list_sep: ", ",
  confirmed: "Last confirmed", missing: "Missing", all10: "All ten ones",
  stop: "Current stop", leaves: "leaves", sample_tag: "SAMPLE",
  dirs: ["N", "NE", "E", "SE", "S", "SW", "W", "NW"], hours: "Hours", phone: "Phone",
  checklist: "Ten-ones checklist", failed: "Did not work: ", has: "has", lacks: "lacks",
  no_network: "no network",
  lang: "中文", h247: "24 hours, every day", filters: "Filters", map: "Map",
  chip_open_now: "Open now", chip_h24: "24 hours", other_city: "Other",
};
