"""Roads (issue 28): an OpenStreetMap extract's walkable and rideable ways as a routable
graph in PostgreSQL with pgRouting (``loader``, ``store``), the same graph in process
(``graph``) and the nearest stations by road over it (``nearest``)."""
