"""The monthly bulletin (每月通报, issue 27): an area's month in figures, charts, PDF and XLSX.

For an admin area (and everything below it) and a calendar month in the service's time
zone: stations built, serving, verified and on the map; inspections done and overdue;
worker reports received and resolved; person-times (check-ins) by worker type, by
district and by day; and the change in coverage between the stored runs at the end of
the month and of the month before. The figures are read by
:mod:`~geo_service.bulletin.service` (SQL in :mod:`~geo_service.bulletin.queries`) into
plain values (:mod:`~geo_service.bulletin.model`); the charts
(:mod:`~geo_service.bulletin.charts`, matplotlib), the PDF
(:mod:`~geo_service.bulletin.render`, WeasyPrint) and the workbook
(:mod:`~geo_service.bulletin.workbook`, openpyxl) are drawn from those values alone, by
the API (``router``), the command line (``cli``) and the console alike.
"""
