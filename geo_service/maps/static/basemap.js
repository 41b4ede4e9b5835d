/* geo_service street basemap (issue 28): the service's own vector tiles
 * (/tiles/base/{z}/{x}/{y}.mvt: roads, water, districts) drawn under the stations
 * with protomaps-leaflet (npm, served from node_modules like Leaflet), when no tile
 * URL is configured: a street map on an intranet and, from the app's cache, offline.
 *
 * One style for every map: the planners' pages inline this file, the courier app
 * loads it as /app/basemap.js. A plain style for reading names in Chinese: land
 * pale, water blue, roads white with a grey casing (wider by class), paths thin
 * grey, district outlines dashed, road and district names in Chinese (English
 * district names when the page is in English).
 *
 * Tests read `window.GEO.base` (the layer) to see what was painted.
 */
(function () {
  "use strict";
  var GEO = (window.GEO = window.GEO || { maps: {} });

  /* Line width in pixels by road class and zoom: major roads wider, all grow with zoom. */
  var CLASS_WIDTH = { motorway: 3.2, primary: 2.8, secondary: 2.4, tertiary: 2, minor: 1.4, path: 0.8 };
  var CASING = { motorway: "#a8a29a", primary: "#b0aaa2", secondary: "#bbb5ad", tertiary: "#c4beb6",
    minor: "#cfc9c1" };
  var FILL = { motorway: "#f4f0ea", primary: "#ffffff", secondary: "#ffffff", tertiary: "#ffffff",
    minor: "#ffffff" };
  var LAND = "#f2efe9";
  var WATER = "#a9cde6";

  function width(cls, extra) {
    return function (z) {
      var w = CLASS_WIDTH[cls] * Math.pow(1.35, Math.max(0, z - 12));
      return Math.min(w, 24) + extra;
    };
  }

  function isClass(cls) {
    return function (z, f) { return f.props["class"] === cls; };
  }

  function kind(k) {
    return function (z, f) { return f.props.kind === k; };
  }

  /* The paint and label rules: casings under fills, smaller classes first. */
  GEO.baseRules = function (pm, lang) {
    var paint = [{ dataLayer: "water", symbolizer: new pm.PolygonSymbolizer({ fill: WATER }) }];
    var order = ["minor", "tertiary", "secondary", "primary", "motorway"];
    paint.push({ dataLayer: "roads", filter: isClass("path"),
      symbolizer: new pm.LineSymbolizer({ color: "#b5ada3", width: width("path", 0), dash: [3, 2] }) });
    order.forEach(function (cls) {
      paint.push({ dataLayer: "roads", filter: isClass(cls),
        symbolizer: new pm.LineSymbolizer({ color: CASING[cls], width: width(cls, 1.6),
          lineCap: "round", lineJoin: "round" }) });
    });
    order.forEach(function (cls) {
      paint.push({ dataLayer: "roads", filter: isClass(cls),
        symbolizer: new pm.LineSymbolizer({ color: FILL[cls], width: width(cls, 0),
          lineCap: "round", lineJoin: "round" }) });
    });
    paint.push({ dataLayer: "districts", filter: kind("outline"),
      symbolizer: new pm.LineSymbolizer({ color: "#8a6f9e", width: 1.4, dash: [6, 4] }) });
    var names = lang === "en" ? ["name_en", "name"] : ["name"];
    var labels = [
      { dataLayer: "districts", filter: kind("label"),
        symbolizer: new pm.CenteredTextSymbolizer({ labelProps: names, fill: "#5b4a6b",
          stroke: "#ffffff", width: 2.5, fontFamily: "sans-serif", fontSize: 14, fontWeight: 600 }) },
      { dataLayer: "roads", filter: function (z, f) { return f.props["class"] !== "path"; },
        symbolizer: new pm.LineLabelSymbolizer({ labelProps: ["name"], fill: "#4a4a4a",
          stroke: "#ffffff", width: 2, fontFamily: "sans-serif", fontSize: 12 }) },
      { dataLayer: "water", symbolizer: new pm.CenteredTextSymbolizer({ labelProps: ["name"],
        fill: "#2f6690", stroke: "#ffffff", width: 2, fontFamily: "sans-serif", fontSize: 12,
        fontStyle: "italic" }) }
    ];
    return { paint: paint, labels: labels };
  };

  /* Add the basemap to `map` under everything else; null where it cannot be fetched
   * (a page opened from a file has no service to ask: no request is tried). */
  GEO.baseLayer = function (map, P) {
    var pm = window.protomapsL;
    if (!pm || !/^https?:$/.test(window.location.protocol)) return null;
    var rules = GEO.baseRules(pm, P.lang || "zh");
    var layer = pm.leafletLayer({
      url: P.url, paintRules: rules.paint, labelRules: rules.labels, backgroundColor: LAND,
      maxDataZoom: 16, attribution: P.attribution || "© OpenStreetMap contributors",
      pane: "tilePane"
    });
    // Added once the page's script has set the view (folium fits the bounds after the
    // layers): added at once, it would ask for the world's tiles at the first zoom and
    // abort them a moment later.
    setTimeout(function () {
      layer.addTo(map);
      layer.bringToBack();
    }, 0);
    // Land under the tiles too, so a tile fading in shows land, not Leaflet's grey.
    map.getContainer().style.backgroundColor = LAND;
    GEO.base = layer;
    return layer;
  };
})();
