// The station form's map (console, issue 26): progressive enhancement of plain fields.
// Leaflet comes from this service (/maps/assets/, the project's npm packages); the page's
// policy allows script from this service only, so this is a file, never inline. With no
// tiles configured the map draws the person's area outline and the stations around, so it
// is useful on an office intranet with no internet. A click or a dragged pin asks the
// server (/console/locate) for the point in WGS-84 and GCJ-02 (domain/coords.py, the
// published formulas) and for the district and street containing it, and fills the fields
// in the coordinate system the clerk chose. Typing coordinates moves the pin.
(function () {
  "use strict";
  var dataBlock = document.getElementById("map-data");
  var box = document.getElementById("map");
  if (!dataBlock || !box || typeof L === "undefined") {
    return;
  }
  var data = JSON.parse(dataBlock.textContent);
  var form = box.closest("form");
  var zh = document.documentElement.lang !== "en";
  var fields = form.elements;
  var status = document.createElement("p");
  status.className = "hint";
  status.id = "map-status";
  status.setAttribute("aria-live", "polite");
  box.setAttribute("role", "region");
  box.hidden = false;
  box.insertAdjacentElement("afterend", status);

  var map = L.map(box, { attributionControl: Boolean(data.tiles) });
  if (data.tiles) {
    L.tileLayer(data.tiles.url, {
      attribution: data.tiles.attribution || "",
      subdomains: data.tiles.subdomains || "abc",
      maxZoom: data.tiles.max_zoom || 18,
    }).addTo(map);
  }
  var outline = data.outline ? L.geoJSON(data.outline, {
    interactive: false,
    style: { color: "#8b1a1a", weight: 2, fill: true, fillOpacity: 0.04 },
  }) : null;
  // The view first: Leaflet draws vector layers only on a map that has one.
  if (data.pin) {
    map.setView([data.pin[1], data.pin[0]], 15);
  } else if (outline) {
    map.fitBounds(outline.getBounds());
  } else if (data.stations.length) {
    map.fitBounds(L.latLngBounds(data.stations.map(function (s) {
      return [s.lat, s.lon];
    })));
  } else {
    map.setView([35, 105], 4);
  }
  if (outline) {
    outline.addTo(map);
  }
  data.stations.forEach(function (s) {
    L.circleMarker([s.lat, s.lon], {
      radius: 5, color: "#1f4e8c", weight: 1, fillOpacity: 0.7,
    }).bindTooltip(s.name + " (" + s.code + ")").addTo(map);
  });

  var pin = null;
  function chosenCrs() {
    var checked = form.querySelector("input[name=crs]:checked");
    return checked ? checked.value : "gcj02";
  }
  function choose(select, code) {
    if (!select) {
      return;
    }
    var known = Array.prototype.some.call(select.options, function (o) {
      return o.value === code;
    });
    select.value = code && known ? code : "";
  }
  function say(found) {
    var where = [found.district, found.street].filter(Boolean).join(" ");
    status.textContent = where
      ? (zh ? "坐标所在：" : "The point lies in: ") + where
      : (zh ? "坐标不在已载入的区县范围内。" : "The point is in no loaded district.");
  }
  function place(lat, lon) {
    if (pin) {
      pin.setLatLng([lat, lon]);
      return;
    }
    pin = L.marker([lat, lon], {
      draggable: true, autoPan: true,
      title: zh ? "驿站位置（可拖动）" : "Station location (drag me)",
      alt: zh ? "驿站位置" : "Station location",
    }).addTo(map);
    pin.on("dragend", function () {
      var p = pin.getLatLng();
      lookup(p.lng, p.lat, data.map_crs, true);
    });
  }
  // Ask the server where a point is; fill the fields (from the map) or move the pin
  // (from the fields).
  function lookup(lon, lat, system, fill) {
    var query = "?lon=" + encodeURIComponent(lon) + "&lat=" + encodeURIComponent(lat) +
      "&crs=" + system;
    return fetch(data.locate + query, { credentials: "same-origin" })
      .then(function (r) {
        return r.ok ? r.json() : Promise.reject(new Error(String(r.status)));
      })
      .then(function (found) {
        if (fill) {
          var c = found[chosenCrs()];
          fields.lon.value = c.lon.toFixed(6);
          fields.lat.value = c.lat.toFixed(6);
        } else {
          var m = found[data.map_crs];
          place(m.lat, m.lon);
          map.panTo([m.lat, m.lon]);
        }
        choose(fields.district_code, found.district_code);
        choose(fields.street_code, found.street_code);
        say(found);
        box.dataset.located = String(Number(box.dataset.located || 0) + 1);
      })
      .catch(function () {
        status.textContent = zh ? "无法查询坐标所在区域。" : "Could not look the point up.";
      });
  }

  map.on("click", function (e) {
    place(e.latlng.lat, e.latlng.lng);
    lookup(e.latlng.lng, e.latlng.lat, data.map_crs, true);
  });
  function typed() {
    var lon = Number(fields.lon.value);
    var lat = Number(fields.lat.value);
    if (fields.lon.value && fields.lat.value && isFinite(lon) && isFinite(lat) &&
        Math.abs(lon) <= 180 && Math.abs(lat) <= 90) {
      lookup(lon, lat, chosenCrs(), false);
    }
  }
  fields.lon.addEventListener("change", typed);
  fields.lat.addEventListener("change", typed);
  Array.prototype.forEach.call(form.querySelectorAll("input[name=crs]"), function (radio) {
    radio.addEventListener("change", function () {
      if (pin) {  // the same point, written in the newly chosen system
        var p = pin.getLatLng();
        lookup(p.lng, p.lat, data.map_crs, true);
      }
    });
  });

  if (data.pin) {
    place(data.pin[1], data.pin[0]);
  }
})();
