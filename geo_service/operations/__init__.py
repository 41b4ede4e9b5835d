"""Station operations (issue 6): mobile stops, inspections, visits, worker reports, awards."""
