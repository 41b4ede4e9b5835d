"""Nearest from memory: an exact in-process index of the stations, kept fresh.

Each API process loads every station into compact arrays and answers
``/v1/stations/nearest`` without a database round trip. The SQL path
(``service.nearest``) stays: it answers until the index is loaded, whenever the index
is not provably fresh, and it is the oracle the equality tests compare against.

The package is split by job:

``sphere``
    chord and spheroid geometry the exact walk reasons with;
``open_state``
    the hours compiled by the database, evaluated in Python (open now, next change);
``blobs``
    the compressed store of each station's public JSON, and the splicing of a row;
``index``
    the arrays, the k-d tree and the exact k-nearest walk;
``keeper``
    loading and following the database (LISTEN/NOTIFY), freshness, health;
``state``
    the typed view of what ``app.state`` carries for nearest;
``http``
    nearest over HTTP: the query parameters and the answer, one definition for the
    route and the fast path (the ASGI wrapper, served in front of the FastAPI app, that
    answers from the index without FastAPI and its middleware), and the write notes.
"""
