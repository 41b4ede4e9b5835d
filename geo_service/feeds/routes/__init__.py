"""The feeds room's HTTP routes: the GeoJSON and change feeds, exports, OGC API, tiles."""
