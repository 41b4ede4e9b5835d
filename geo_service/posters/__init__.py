"""Printable QR posters: one A4/A5 page per station, a district's stations in one PDF.

Issue 26: the union office prints a poster for each station's wall (its name, a QR
code to its check-in page, the ten ones, its hours, the union's hotline). The
station rows are read (:mod:`~geo_service.posters.service`), the connection given
back, and only then the PDF is drawn (:mod:`~geo_service.posters.render`, WeasyPrint,
with nothing fetched from outside), by the API (``router``) and the command line
(``cli``) alike.
"""
