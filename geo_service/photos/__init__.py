"""Photos of stations, inspections and worker reports (issue 27).

The map platforms ask for a station's exterior photo (外观图片) and provincial unions
require one to put a station on the map. An upload is made safe (EXIF, GPS and device
data dropped, turned upright, re-encoded, a thumbnail; limits on bytes and pixels:
:mod:`~geo_service.photos.images`), kept by content hash in the photo store
(:mod:`geo_service.infra.photo_store`: a local folder or an S3-compatible bucket),
recorded and attached (:mod:`~geo_service.photos.service`), and served with a year's
caching (``router``). Worker-report photos stay private until a clerk approves them.
"""
