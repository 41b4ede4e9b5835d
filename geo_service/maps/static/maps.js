/* geo_service maps: the station, compliance and coverage layers.
 *
 * The page embeds one compact payload (columns of plain values, repeated
 * strings as indexes) and this script turns it into Leaflet layers. Markers
 * go through Leaflet.markercluster with chunked loading, so 100,000 stations
 * open in seconds; popups are built when opened, not for every station up
 * front. Coordinates arrive already in the basemap's system.
 *
 * Tests read `window.GEO.maps[kind]` (the cluster group, the markers, the
 * filters) to compare what is drawn with the database.
 */
(function () {
  "use strict";
  var GEO = (window.GEO = window.GEO || { maps: {} });

  function esc(v) {
    return String(v == null ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  GEO.esc = esc;

  /* Ten-ones completeness → colour (ColorBrewer RdYlGn). */
  var TEN_CLASSES = [
    { min: 10, colour: "#1a9850", label: "10/10 十个一齐全 complete" },
    { min: 8, colour: "#91cf60", label: "8-9 / 10" },
    { min: 6, colour: "#fee08b", label: "6-7 / 10" },
    { min: 3, colour: "#fc8d59", label: "3-5 / 10" },
    { min: 0, colour: "#d73027", label: "0-2 / 10" }
  ];
  function tenClass(n) {
    for (var i = 0; i < TEN_CLASSES.length; i++) if (n >= TEN_CLASSES[i].min) return i;
    return TEN_CLASSES.length - 1;
  }
  var LEVELS = { national: "全国 national", provincial: "省级 provincial", city: "市级 city" };

  /* A mobile station's stops, numbered, joined in order; the current one filled. */
  function stopsLayer(P) {
    var c = P.columns, layer = L.layerGroup();
    P.rows.forEach(function (r) {
      var st = r[c.stops];
      if (!st) return;
      L.polyline(st.map(function (s) { return [s.lat, s.lon]; }),
        { color: "#6a1b9a", weight: 2, dashArray: "4 4", interactive: false }).addTo(layer);
      st.forEach(function (s) {
        L.marker([s.lat, s.lon], {
          icon: L.divIcon({ className: "geo-stop" + (s.current ? " current" : ""),
                            html: String(s.seq), iconSize: [16, 16] }),
          title: r[c.name] + " #" + s.seq, keyboard: false
        }).bindTooltip(esc(r[c.name]) + " #" + s.seq + " " + esc(s.name) + " <code>" +
          esc(s.opening_hours) + "</code>" + (s.current ? " ← 现在在此 here now" : ""))
          .addTo(layer);
      });
    });
    return layer;
  }

  function hasBit(mask, bit) { return Math.floor(mask / Math.pow(2, bit)) % 2 === 1; }

  function box(position, html, cls) {
    var C = L.Control.extend({
      onAdd: function () {
        var div = L.DomUtil.create("div", "geo-box " + (cls || ""));
        div.innerHTML = html;
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      }
    });
    return new C({ position: position });
  }

  function titleBox(map, P) {
    var html = "<h1>" + esc(P.title) + "</h1><div class=\"sub\">" + esc(P.subtitle) + "</div>";
    if (P.sample) html += "<div class=\"geo-sample\">" + esc(P.sample_note) + "</div>";
    box("topleft", html, "geo-title").addTo(map);
  }

  /* Icons are shared: one per (host type, colour, status) combination. */
  function iconFactory(P) {
    var cache = {};
    return function (host, colour, status) {
      var key = host + "|" + colour + "|" + status;
      if (!cache[key]) {
        var shape = (P.host_types[host] || ["", "", "circle"])[2];
        cache[key] = L.divIcon({
          className: "geo-pin shape-" + shape + " " + status,
          html: "<i style=\"--c:" + colour + "\"></i>",
          iconSize: [14, 14], iconAnchor: [7, 7], popupAnchor: [0, -6]
        });
      }
      return cache[key];
    };
  }

  function daysBetween(isoDate, atIso) {
    return Math.floor((Date.parse(atIso) - Date.parse(isoDate + "T00:00:00Z")) / 86400000);
  }

  function popupHtml(P, r, extra) {
    var c = P.columns, cat = P.catalogue;
    var mask = r[c.mask], st = P.statuses[r[c.status]], host = P.host_types[P.hosts[r[c.host]]];
    var h = "<div class=\"geo-popup\"><h3>" + esc(r[c.name]) + "</h3>";
    if (r[c.sample]) h += "<div class=\"geo-sample\">示例数据 SAMPLE DATA</div>";
    h += "<div>" + esc(r[c.address] || "") + "</div>";
    h += "<div>" + esc(host[0]) + " · " + esc(host[1]) + " · <code>" + esc(r[c.code]) + "</code></div>";
    var status = P.statuses_list[r[c.status]];
    var now;
    if (status === "open") {
      var o = r[c.open_now];
      now = o === true ? "<span class=\"open\">现在营业 open now</span>"
        : o === false ? "<span class=\"shut\">现在休息 closed now</span>"
        : "<span>营业状态未知 unknown</span>";
    } else {
      now = "<span class=\"shut\">" + esc(st[0]) + " " + esc(st[1]) + "</span>";
    }
    if (r[c.reported_closed]) {
      h += "<div class=\"flag\"><b>⚠ 多名工人报告已关闭 reported closed by workers</b> " +
        "(待核实 awaiting an editor)</div>";
    }
    var hours = P.hours[r[c.hours]];
    h += "<div><b>营业时间 Hours</b>: " + (hours == null
      ? "<span class=\"unknown-hours\">营业时间未知 hours unknown</span>"
      : "<code>" + esc(hours) + "</code>") + "<br>" + now +
      " <small>(" + esc(P.at_label) + ")</small></div>";
    if (r[c.phone]) h += "<div><b>电话 Phone</b>: " + esc(r[c.phone]) + "</div>";
    var have = [], miss = [], extras = [];
    for (var i = 0; i < cat.length; i++) {
      var a = cat[i], on = hasBit(mask, a[1]);
      if (a[4]) (on ? have : miss).push(a);
      else if (on) extras.push(a);
    }
    h += "<div class=\"ten\"><b>十个一 Ten ones: " + have.length + "/10</b><ul>";
    have.forEach(function (a) { h += "<li class=\"ok\">" + esc(a[2]) + "</li>"; });
    miss.forEach(function (a) {
      h += "<li class=\"missing\" title=\"missing\">" + esc(a[2]) + "</li>";
    });
    h += "</ul>";
    if (miss.length) {
      h += "<div class=\"flag\">缺 Missing: " + miss.map(function (a) {
        return esc(a[2]) + " (" + esc(a[3]) + ")";
      }).join("、") + "</div>";
    }
    h += "</div>";
    if (extras.length) {
      h += "<div><b>其他设施 Extras</b>: " + extras.map(function (a) {
        return esc(a[2]) + " " + esc(a[3]);
      }).join("、") + "</div>";
    }
    var aw = r[c.awards];
    if (aw) {
      h += "<div><b>荣誉 Awards</b>: " + aw.map(function (a) {
        return "🏅 " + esc(a.title) + " (" + esc(LEVELS[a.level] || a.level) + " " + esc(a.year) + ")";
      }).join("；") + "</div>";
    }
    var stops = r[c.stops];
    if (stops) {
      h += "<div class=\"stops\"><b>停靠点 Stops</b><ol>";
      stops.forEach(function (s) {
        h += "<li" + (s.current ? " class=\"current\"" : "") + ">" + esc(s.name) + " <code>" +
          esc(s.opening_hours) + "</code>" + (s.current ? " ← 现在在此 here now" : "") + "</li>";
      });
      h += "</ol></div>";
    }
    var v = r[c.verified];
    h += "<div><b>最近核实 Last verified</b>: " +
      (v ? esc(v) + " (" + daysBetween(v, P.at) + " 天前 days ago)" : "<span class=\"flag\">从未 never</span>") +
      "</div>";
    if (r[c.confirmed]) h += "<div><b>工人确认 Last confirmed by a worker</b>: " + esc(r[c.confirmed]) + "</div>";
    if (extra) h += extra;
    return h + "</div>";
  }

  function complianceHtml(P, r) {
    var c = P.columns, why = P.reasons[r[c.reason]], v = r[c.verified];
    var h = "<div class=\"flag\"><b>需跟进 Follow up</b>: " + esc(why[0]) + " " + esc(why[1]) + "<br>";
    if (r[c.overdue]) {
      h += v ? "核实已逾期 inspection overdue: " + daysBetween(v, P.at) + " 天 days (limit " + P.overdue_days + ")"
        : "从未核实 never inspected";
      h += "<br>";
    }
    if (r[c.ten] < P.min_ten_ones) h += "十个一 " + r[c.ten] + "/10 (< " + P.min_ten_ones + ")";
    return h + "</div>";
  }

  function legendHtml(P, classes, withHosts) {
    var h = "<div class=\"geo-legend\"><h2>" + esc(P.legend_title) + "</h2>";
    classes.forEach(function (k) {
      h += "<div class=\"row\"><span class=\"sw geo-pin shape-circle\"><i style=\"--c:" + k.colour +
        "\"></i></span>" + esc(k.label) + "</div>";
    });
    if (withHosts) {
      h += "<div class=\"row\"><span class=\"sw geo-pin shape-circle temporarily_closed\"><i></i></span>" +
        "暂停开放 temporarily closed</div>";
      h += "<div class=\"row\"><span class=\"sw geo-pin shape-circle planned\"><i style=\"--c:#555\"></i></span>" +
        "筹建中 planned</div>";
      h += "<div class=\"row unknown-hours\">营业时间未知 hours unknown: 弹窗注明，营业状态未知 " +
        "(said in the popup; open now: unknown)</div><h2>类型 Host type</h2>";
      Object.keys(P.host_types).forEach(function (k) {
        var t = P.host_types[k];
        h += "<div class=\"row\"><span class=\"sw geo-pin shape-" + t[2] + "\"><i style=\"--c:#607d8b\"></i></span>" +
          esc(t[0]) + " " + esc(t[1]) + "</div>";
      });
    }
    return h + "</div>";
  }

  /* Checkboxes per host type and status: the markers shown are those whose
   * host type and status are both ticked. */
  function filterControl(map, state, P, counts, apply) {
    var h = "<div class=\"geo-filter\"><h2>类型 Host type</h2>";
    Object.keys(P.host_types).forEach(function (k) {
      if (!counts.host[k]) return;
      h += "<label><input type=\"checkbox\" data-host=\"" + k + "\" checked> " +
        esc(P.host_types[k][0]) + " " + esc(P.host_types[k][1]) + " (" + counts.host[k] + ")</label>";
    });
    h += "<h2>状态 Status</h2>";
    P.statuses_list.forEach(function (k) {
      if (!counts.status[k]) return;
      h += "<label><input type=\"checkbox\" data-status=\"" + k + "\" checked> " +
        esc(P.statuses[k][0]) + " " + esc(P.statuses[k][1]) + " (" + counts.status[k] + ")</label>";
    });
    h += "</div>";
    var ctl = box("topright", h, "geo-filter-box");
    ctl.addTo(map);
    ctl.getContainer().addEventListener("change", function (ev) {
      var t = ev.target;
      if (t.dataset.host) state.host[t.dataset.host] = t.checked;
      if (t.dataset.status) state.status[t.dataset.status] = t.checked;
      apply();
    });
    return ctl;
  }

  /* Stations (kind "stations") or follow-up stations (kind "compliance"). */
  GEO.stationsLayer = function (map, P) {
    if (!map.options.maxZoom) map.options.maxZoom = P.max_zoom;
    titleBox(map, P);
    var c = P.columns, rows = P.rows, icon = iconFactory(P);
    var cluster = L.markerClusterGroup({
      chunkedLoading: true, chunkInterval: 100, chunkDelay: 10,
      disableClusteringAtZoom: 17, spiderfyOnMaxZoom: false, showCoverageOnHover: false
    });
    var markers = new Array(rows.length);
    var counts = { host: {}, status: {} };
    var compliance = P.kind === "compliance";
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var host = P.hosts[r[c.host]], status = P.statuses_list[r[c.status]];
      var colour;
      if (compliance) colour = P.reasons[r[c.reason]][2];
      else colour = TEN_CLASSES[tenClass(r[c.ten])].colour;
      var m = L.marker([r[c.lat], r[c.lon]], {
        icon: icon(host, colour, status), title: r[c.name], keyboard: false
      });
      m.geoRow = r;
      m.geoHost = host;
      m.geoStatus = status;
      markers[i] = m;
      counts.host[host] = (counts.host[host] || 0) + 1;
      counts.status[status] = (counts.status[status] || 0) + 1;
    }
    var state = { host: {}, status: {} };
    Object.keys(counts.host).forEach(function (k) { state.host[k] = true; });
    Object.keys(counts.status).forEach(function (k) { state.status[k] = true; });
    function apply() {
      cluster.clearLayers();
      cluster.addLayers(markers.filter(function (m) {
        return state.host[m.geoHost] && state.status[m.geoStatus];
      }));
    }
    var entry = (GEO.maps[P.kind] = {
      map: map, cluster: cluster, markers: markers, state: state, apply: apply,
      loadedMs: null,
      loaded: function () { return entry.loadedMs !== null; },
      marker: function (code) {
        for (var j = 0; j < markers.length; j++) {
          if (markers[j].geoRow[c.code] === code) return markers[j];
        }
        return null;
      },
      openPopup: openPopup
    });
    /* One popup for the whole layer, filled when a marker is clicked: no
     * Popup object per station (100,000 of them would slow the page down). */
    var popup = L.popup({ maxWidth: 340, offset: [0, -4] });
    function openPopup(m) {
      var extra = compliance ? complianceHtml(P, m.geoRow) : "";
      popup.setLatLng(m.getLatLng()).setContent(popupHtml(P, m.geoRow, extra)).openOn(map);
    }
    cluster.on("click", function (e) { openPopup(e.layer); });
    var started = performance.now();
    cluster.options.chunkProgress = function (processed, total) {
      // addTo() reports "0 of 0" before any marker is added: wait for the real batch.
      if (processed === total && total === markers.length && entry.loadedMs === null) {
        entry.loadedMs = performance.now() - started;
      }
    };
    cluster.addTo(map);
    cluster.addLayers(markers);
    if (rows.length === 0) entry.loadedMs = 0;
    filterControl(map, state, P, counts, apply);
    var classes = compliance ? P.reasons.map(function (x) { return { colour: x[2], label: x[0] + " " + x[1] }; })
      : TEN_CLASSES;
    box("bottomright", legendHtml(P, classes, true)).addTo(map);
    entry.stops = stopsLayer(P);
    if (entry.stops.getLayers().length) entry.stops.addTo(map);
    return GEO.maps[P.kind];
  };

  /* Uncovered demand → colour (ColorBrewer YlOrRd), by the payload's breaks. */
  var GAP_COLOURS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];

  function pct(x) { return x == null ? "—" : (100 * x).toFixed(1) + "%"; }

  /* The scorecard by district name, worst first, as the run reports it (total last). */
  /* By road (reach), the straight-line share of the same run stands beside the road's. */
  function scorecardHtml(rows, reach) {
    var h = "<h2>分区覆盖（最差在前） Districts, worst first</h2><table><thead><tr>" +
      "<th scope=\"col\">区 District</th><th scope=\"col\">站点 Stations</th>" +
      (reach ? "<th scope=\"col\">" + esc(reach.straight) + "</th><th scope=\"col\">" +
        esc(reach.covered) + "</th>" : "<th scope=\"col\">覆盖 Covered</th>") +
      "<th scope=\"col\">双重 Twice</th>" +
      "<th scope=\"col\">缺口人数 Gap workers</th></tr></thead><tbody>";
    rows.forEach(function (r) {
      h += "<tr" + (r.total ? " class=\"total\"" : "") + "><th scope=\"row\">" + esc(r.name) +
        (r.total ? "" : " <small>" + esc(r.area) + "</small>") + "</th><td>" + r.stations +
        (reach ? "</td><td>" + pct(r.straight_covered_share) : "") +
        "</td><td>" + pct(r.covered_share) + "</td><td>" + pct(r.doubly_share) + "</td><td>" +
        Math.round(r.uncovered_demand) + "</td></tr>";
    });
    return h + "</tbody></table>";
  }

  GEO.coverageLayer = function (map, P) {
    if (!map.options.maxZoom) map.options.maxZoom = P.max_zoom;
    titleBox(map, P);
    var renderer = L.canvas({ padding: 0.5 });
    var groups = {
      gap: L.featureGroup(), covered: L.featureGroup(), doubly: L.featureGroup()
    };
    var c = P.cell_columns;
    function gapColour(d) {
      for (var i = 0; i < P.breaks.length; i++) if (d <= P.breaks[i]) return GAP_COLOURS[i];
      return GAP_COLOURS[GAP_COLOURS.length - 1];
    }
    P.cells.forEach(function (r) {
      var cls = r[c.doubly] ? "doubly" : r[c.covered] ? "covered" : "gap";
      var style = cls === "gap"
        ? { color: "#7f0000", weight: 0.4, fillColor: gapColour(r[c.demand]), fillOpacity: 0.75 }
        : cls === "covered"
          ? { color: "#238b45", weight: 0.3, fillColor: "#a1d99b", fillOpacity: 0.45 }
          : { color: "#08519c", weight: 0.3, fillColor: "#6baed6", fillOpacity: 0.5 };
      style.renderer = renderer;
      var poly = L.polygon(r[c.ring], style);
      poly.bindTooltip(function () {
        var d = r[c.nearest_m];
        return "<b>" + esc(P.cell_labels[cls]) + "</b><br>需求 demand: " + Math.round(r[c.demand]) +
          " 人 workers<br>" + esc(P.nearest_label || "最近站点 nearest station") + ": " +
          (d == null ? "—" : (d / 1000).toFixed(2) + " km" + (r[c.nearest] ? " (" + esc(r[c.nearest]) + ")" : "")) +
          "<br><small>H3 " + esc(r[c.cell]) + "</small>";
      }, { sticky: true });
      groups[cls].addLayer(poly);
    });
    var overlays = {};
    ["gap", "covered", "doubly"].forEach(function (k) {
      groups[k].addTo(map);
      overlays[P.cell_labels[k] + " (" + groups[k].getLayers().length + ")"] = groups[k];
    });
    var areas = L.featureGroup();
    (P.service_areas || []).forEach(function (a) {
      L.polygon(a[1], {
        color: "#6a51a3", weight: 1.2, fillColor: "#9e9ac8", fillOpacity: 0.12, renderer: renderer
      }).bindTooltip(esc(P.service_area_label) + ": " + esc(a[0]), { sticky: true }).addTo(areas);
    });
    if (areas.getLayers().length) {
      areas.addTo(map);
      overlays[P.service_area_label + " (" + areas.getLayers().length + ")"] = areas;
    }
    var stations = L.featureGroup();
    P.stations.forEach(function (s) {
      L.marker([s[1], s[0]], {
        icon: L.divIcon({ className: "geo-dot", iconSize: [7, 7] }), title: s[2], keyboard: false
      }).bindTooltip(esc(s[2])).addTo(stations);
    });
    stations.addTo(map);
    overlays["站点 stations (" + P.stations.length + ")"] = stations;
    var sites = L.featureGroup();
    P.sites.forEach(function (s) {
      L.marker([s.lat, s.lon], {
        icon: L.divIcon({ className: "geo-site", html: String(s.rank), iconSize: [24, 24] }),
        zIndexOffset: 1000, title: "#" + s.rank
      }).bindPopup("<div class=\"geo-popup\"><h3>建议站点 Recommended site #" + s.rank + "</h3>" +
        "新增覆盖 adds <b>" + Math.round(s.gain) + "</b> 人 workers<br>" +
        "累计覆盖 covered after: " + Math.round(s.covered_after) +
        (P.total_demand ? " (" + (100 * s.covered_after / P.total_demand).toFixed(1) + "%)" : "") +
        (s.district ? "<br>" + esc(s.district) + " " + esc(s.district_code) + " · " + esc(s.street) : "") +
        (s.gcj02 ? "<br>GCJ-02 " + s.gcj02[0].toFixed(6) + ", " + s.gcj02[1].toFixed(6) +
          "<br>BD-09 " + s.bd09[0].toFixed(6) + ", " + s.bd09[1].toFixed(6) : "") +
        "<br><small>" + esc(s.label) + " · WGS-84 " + s.lat.toFixed(5) + ", " + s.lon.toFixed(5) + "</small></div>")
        .addTo(sites);
    });
    sites.addTo(map);
    overlays["建议站点 recommended sites (" + P.sites.length + ")"] = sites;
    L.control.layers(null, overlays, { collapsed: false, position: "topright" }).addTo(map);
    var h = "<div class=\"geo-legend\"><h2>" + esc(P.legend_title) + "</h2>";
    var lo = 0;
    P.breaks.forEach(function (b, i) {
      h += "<div class=\"row\"><span class=\"sw\" style=\"background:" + GAP_COLOURS[i] + "\"></span>" +
        "缺口 gap: " + Math.round(lo) + "–" + Math.round(b) + " 人 workers</div>";
      lo = b;
    });
    h += "<div class=\"row\"><span class=\"sw\" style=\"background:#a1d99b\"></span>" + esc(P.cell_labels.covered) + "</div>";
    h += "<div class=\"row\"><span class=\"sw\" style=\"background:#6baed6\"></span>" + esc(P.cell_labels.doubly) + "</div>";
    h += "<div class=\"row\"><span class=\"sw geo-site\" style=\"font-size:9px;line-height:12px\">1</span>建议站点（按选取顺序） recommended sites, in order of pick</div>";
    if (areas.getLayers().length) {
      h += "<div class=\"row\"><span class=\"sw\" style=\"background:#9e9ac8;border:1px solid #6a51a3\"></span>" + esc(P.service_area_label) + "</div>";
    }
    box("bottomright", h + "</div>").addTo(map);
    if (P.scorecard && P.scorecard.length) box("bottomleft", scorecardHtml(P.scorecard, P.scorecard_reach), "geo-scorecard").addTo(map);
    GEO.maps.coverage = { map: map, groups: groups, sites: sites, stations: stations, areas: areas };
    return GEO.maps.coverage;
  };
})();
