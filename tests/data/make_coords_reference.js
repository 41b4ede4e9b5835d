#!/usr/bin/env node
/*
 * Regenerates tests/data/coords_reference.json: reference WGS-84 -> GCJ-02 /
 * BD-09 values computed by the npm package `gcoord`, an independent
 * implementation of the same published formulas as geo_service/domain/coords.py.
 * The Python tests only read the JSON, so they run offline without node.
 *
 * Usage (from the repository root; gcoord is installed outside the repo):
 *
 *   mkdir -p /tmp/gcoordref && (cd /tmp/gcoordref && npm init -y && npm install gcoord)
 *   NODE_PATH=/tmp/gcoordref/node_modules node tests/data/make_coords_reference.js \
 *       > tests/data/coords_reference.json
 *
 * Output is deterministic for a given gcoord version (seeded PRNG, fixed
 * named points). Numbers are written with JSON.stringify, i.e. the shortest
 * decimal that round-trips to the same IEEE-754 double, so Python reads back
 * exactly the doubles gcoord computed.
 *
 * Notes on how gcoord (checked against 1.0.7) relates to geo_service/domain/coords.py:
 * - Outside-China rule: gcoord's isInChinaBbox is
 *     lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271
 *   i.e. the same bounding box as our CHINA_BBOX (edges inclusive in both).
 * - BUT gcoord only applies that rule to the WGS-84 <-> GCJ-02 step. Its
 *   GCJ-02 <-> BD-09 step is applied everywhere, so gcoord shifts e.g. Tokyo
 *   or London by ~0.0065 deg when converting WGS-84 -> BD-09, whereas
 *   coords.py treats points outside the box as unshifted in every CRS.
 *   The outside points below therefore record gcoord's bd09 value for
 *   information only; the tests check identity for them instead.
 * - gcoord's GCJ-02 -> WGS-84 inverse stops when the residual is < 1e-6 deg
 *   (~0.1 m); its BD-09 -> GCJ-02 inverse is the closed-form approximation
 *   without refinement. Their results are recorded as
 *   `gcoord_gcj02_to_wgs84` / `gcoord_bd09_to_wgs84` for comparison only.
 * - The random points are drawn well inside the box (lon 73.5..135,
 *   lat 18..53.5) so that neither the WGS-84 point nor its shifted image is
 *   near a box edge, where the in/out decision could flip between the
 *   forward and inverse transform.
 * - Singapore and Seoul lie INSIDE the box although they are not in China;
 *   they are recorded in `inside_box_not_china` to document that the box
 *   rule shifts them (in gcoord and in coords.py alike).
 */
'use strict';

const gcoord = require('gcoord');
const gcoordVersion = require('gcoord/package.json').version;

const SEED = 20240601;
const N_RANDOM = 200;
const LON_RANGE = [73.5, 135.0];
const LAT_RANGE = [18.0, 53.5];

// mulberry32: tiny seeded PRNG so the point list is reproducible.
function mulberry32(seed) {
  let s = seed >>> 0;
  return function next() {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Round to 1e-6 deg so the WGS-84 inputs are readable; outputs are kept at
// full double precision.
function round6(x) {
  return Math.round(x * 1e6) / 1e6;
}

function record(name, lon, lat) {
  // gcoord.transform maps a fresh copy of a position array; pass new arrays
  // each time anyway so no call can see another call's output.
  const gcj = gcoord.transform([lon, lat], gcoord.WGS84, gcoord.GCJ02);
  const bd = gcoord.transform([lon, lat], gcoord.WGS84, gcoord.BD09);
  return {
    name,
    wgs84: [lon, lat],
    gcj02: [gcj[0], gcj[1]],
    bd09: [bd[0], bd[1]],
    gcoord_gcj02_to_wgs84: gcoord.transform([gcj[0], gcj[1]], gcoord.GCJ02, gcoord.WGS84),
    gcoord_bd09_to_wgs84: gcoord.transform([bd[0], bd[1]], gcoord.BD09, gcoord.WGS84),
  };
}

const named = [
  ['Sanya', 109.5119, 18.2528],
  ['Beijing', 116.3975, 39.9087],
  ['Urumqi', 87.6168, 43.8256],
  ['Harbin', 126.5349, 45.8038],
  ['Shanghai', 121.4737, 31.2304],
  ['Guangzhou', 113.2644, 23.1291],
  ['Chengdu', 104.0665, 30.5723],
  ['Lhasa', 91.1409, 29.6456],
  ['Kashgar', 75.9897, 39.4704],
];

const outside = [
  ['Tokyo', 139.6917, 35.6895],
  ['London', -0.1276, 51.5072],
  ['Jakarta', 106.8456, -6.2088],
  ['Moscow', 37.6173, 55.7558],
  ['New York', -74.006, 40.7128],
  ['Sydney', 151.2093, -33.8688],
];

const insideBoxNotChina = [
  ['Singapore', 103.8198, 1.3521],
  ['Seoul', 126.978, 37.5665],
];

const rand = mulberry32(SEED);
const points = named.map(([n, lon, lat]) => record(n, lon, lat));
for (let i = 0; i < N_RANDOM; i += 1) {
  const lon = round6(LON_RANGE[0] + (LON_RANGE[1] - LON_RANGE[0]) * rand());
  const lat = round6(LAT_RANGE[0] + (LAT_RANGE[1] - LAT_RANGE[0]) * rand());
  points.push(record(`random-${i}`, lon, lat));
}

const out = {
  description:
    'Reference WGS-84 -> GCJ-02 / BD-09 coordinates computed by the npm package gcoord; ' +
    'coordinates are [lon, lat] in degrees. Regenerate with tests/data/make_coords_reference.js.',
  generator: 'tests/data/make_coords_reference.js',
  gcoord_version: gcoordVersion,
  node_version: process.version,
  seed: SEED,
  random_lon_range: LON_RANGE,
  random_lat_range: LAT_RANGE,
  china_bbox: [72.004, 0.8293, 137.8347, 55.8271],
  notes: [
    'gcoord uses the same outside-China bounding box as coords.CHINA_BBOX, but applies it only to ' +
      'the WGS-84 <-> GCJ-02 step: its GCJ-02 <-> BD-09 step shifts every point, so the bd09 values ' +
      'of outside_points differ from their wgs84 values. geo_service.domain.coords leaves outside points ' +
      'unshifted in every CRS; tests check identity for outside_points and ignore their gcoord bd09.',
    'gcoord_gcj02_to_wgs84 / gcoord_bd09_to_wgs84 are gcoord\'s own inverses (iteration to 1e-6 deg ' +
      'and closed-form BD-09 inverse respectively), kept for comparison only.',
    'inside_box_not_china: points outside China that the bounding-box rule nevertheless shifts.',
  ],
  points,
  outside_points: outside.map(([n, lon, lat]) => record(n, lon, lat)),
  inside_box_not_china: insideBoxNotChina.map(([n, lon, lat]) => record(n, lon, lat)),
};

// One point per line keeps the file readable and its diffs small.
function format(obj) {
  const entries = Object.entries(obj).map(([key, value]) => {
    const oneItemPerLine = Array.isArray(value) && value.length > 0 && typeof value[0] !== 'number';
    const body = oneItemPerLine
      ? `[\n${value.map((v) => `  ${JSON.stringify(v)}`).join(',\n')}\n ]`
      : JSON.stringify(value);
    return ` ${JSON.stringify(key)}: ${body}`;
  });
  return `{\n${entries.join(',\n')}\n}\n`;
}

process.stdout.write(format(out));
