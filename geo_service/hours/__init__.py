"""Opening hours: compile OSM rules, read Chinese forms, write plain text, and the
official calendars (holidays, make-up days) they are evaluated with. Plain values only:
no web framework, no connection pool."""
