"""Importing tabular files (CSV, XLSX, GeoJSON) into any room.

Stations and demand points arrive as the same kinds of file and follow the
same rules: read every row (:mod:`.readers`, within :mod:`.limits`), validate
every row, then write all or nothing in one transaction (:mod:`.run`). What a
row means and how it is written stays in its room (``stations/importer.py``,
``coverage/demand.py``); this package knows files and reports, not stations,
so neither room imports the other to import.
"""
